"""Test-only fault injection for trials: inert unless ``TREX_TEST_FAULTS`` is set.

``TREX_TEST_FAULTS`` lists ``node=fault[@attempts]`` items, comma-separated::

    TREX_TEST_FAULTS="n2=raise,n3=nan,n4=hang@1"

* ``raise`` — the training loop raises ``RuntimeError`` on every worker (→ ``FailureKind.error``);
* ``nan``   — the loop trains a copy of the base model whose weights are NaN, so its loss is NaN
  and the loop's own divergence check stops it (→ ``FailureKind.diverged``);
* ``hang``  — the loop sleeps past any timeout (→ ``FailureKind.timeout`` once the Researcher
  kills it);
* ``kill``  — rank 0's process kills itself (SIGKILL) at its report at 3/4 of training, unless it is
  a worker group Ray Train restarted from a checkpoint (→ the trial goes on from its last checkpoint
  with ``resources.max_worker_failures``, else ``FailureKind.lost``).

``@1`` limits a fault to the first attempt (``@1-2``: attempts 1 and 2), so that a retry can
succeed; without it every attempt of that node fails. The faults happen inside the Ray Train
workers, so they take the same path as real ones. Chaos tests and ``benchmarks/chaos.py`` use
this; nothing else should.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ENV = "TREX_TEST_FAULTS"
KINDS = ("raise", "nan", "hang", "kill")
KILL_AT = 0.75  # fraction of training at whose report ``kill`` strikes


def parse(text: str) -> dict[str, tuple[str, range | None]]:
    """``"n2=raise,n4=hang@1"`` -> ``{"n2": ("raise", None), "n4": ("hang", range(1, 2))}``."""
    faults: dict[str, tuple[str, range | None]] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        node, _, spec = item.partition("=")
        kind, _, attempts = spec.partition("@")
        if kind not in KINDS or not node:
            raise ValueError(f"{ENV}: bad item {item!r}; write node=raise|nan|hang|kill[@attempts], "
                             "e.g. n2=hang@1")
        window = None
        if attempts:
            low, _, high = attempts.partition("-")
            window = range(int(low), int(high or low) + 1)
        faults[node.strip()] = (kind, window)
    return faults


def planned(node_id: str, attempt: int, env: dict[str, str] | None = None) -> str | None:
    """The fault to inject into this attempt of this node, or None (always None when unset)."""
    text = (env if env is not None else os.environ).get(ENV, "")
    if not text:
        return None
    kind, window = parse(text).get(node_id, (None, None))
    if kind is None or (window is not None and attempt not in window):
        return None
    return kind


def inject(kind: str, node_id: str, config: dict[str, Any]) -> dict[str, Any]:
    """Runs on a training worker before the loop: raise, hang, or hand the loop a NaN model."""
    log.warning("%s: injecting test fault %r (%s is set)", node_id, kind, ENV)
    if kind == "raise":
        raise RuntimeError(f"injected fault: {node_id} raises ({ENV})")
    if kind == "hang":
        while True:  # until the Researcher's trial timeout kills this trial
            time.sleep(60)
    if kind == "nan":
        return {**config, "base_dir": str(nan_copy(config["base_dir"]))}
    if kind == "kill":
        import ray.train

        if ray.train.get_checkpoint() is not None:  # restarted from a checkpoint: let it live
            return config
        return {**config, "progress": _KillAt(config.get("progress"))}
    raise ValueError(f"unknown fault {kind!r}")


@dataclass
class _KillAt:
    """A progress callback that kills this process at the report at ``KILL_AT`` of training."""

    inner: Any

    def __call__(self, progress: Any) -> Any:
        if progress.fraction >= KILL_AT:
            log.warning("injected fault: killing training worker %d at step %d", os.getpid(), progress.step)
            os.kill(os.getpid(), signal.SIGKILL)
        from trex_ray.spec import Decision

        return self.inner(progress) if self.inner is not None else Decision.CONTINUE


def nan_copy(model_dir: str | Path) -> Path:
    """A copy of a saved model with every floating-point weight set to NaN."""
    import torch
    from safetensors.torch import load_file, save_file

    out = Path(tempfile.mkdtemp(prefix="trex-nan-model-"))
    shutil.copytree(model_dir, out, dirs_exist_ok=True)
    weights = list(out.glob("*.safetensors"))
    if not weights:
        raise FileNotFoundError(f"{model_dir}: no .safetensors weights to corrupt")
    for path in weights:
        tensors = load_file(str(path))
        poisoned = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                    for k, v in tensors.items()}
        save_file(poisoned, str(path), metadata={"format": "pt"})
    return out
