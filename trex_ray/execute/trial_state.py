"""A running trial's state as a checkpoint: DeepSpeed's own (weights, optimizer, lr schedule, per rank)
plus the loop's counters, so that a trial whose worker died goes on where the last one left it.

``save`` is collective (every rank calls ``engine.save_checkpoint``; rank 0 adds ``trex_state.json``)
and hands each rank's folder to the ``TrialCheckpointer`` (``execute/context.py``), which keeps them
(Ray Train merges the ranks' folders into one checkpoint); ``load`` reads one back.

Example::

    save(engine, rank=0, counters={"step": 40, ...}, checkpointer=ckpt)
    counters = load(engine, ckpt.restore())
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

STATE_FILE = "trex_state.json"
TAG = "state"


def save(engine: Any, rank: int, counters: dict[str, Any], checkpointer: Any) -> None:
    folder = tempfile.mkdtemp(prefix="trex-state-")
    try:
        engine.save_checkpoint(folder, tag=TAG)
        if rank == 0:
            Path(folder, STATE_FILE).write_text(json.dumps(counters))
        checkpointer.save(folder, int(counters["step"]))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def load(engine: Any, folder: str) -> dict[str, Any]:
    """Weights, optimizer and lr schedule into ``engine``; returns the loop's counters."""
    path, _ = engine.load_checkpoint(folder, tag=TAG, load_optimizer_states=True,
                                     load_lr_scheduler_states=True)
    if path is None:
        raise RuntimeError(f"{folder}: no DeepSpeed checkpoint {TAG!r} to resume from")
    counters: dict[str, Any] = json.loads(Path(folder, STATE_FILE).read_text())
    return counters
