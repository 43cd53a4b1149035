"""Where a run lives: its durable location (a directory or an object-store URI) and local scratch.

* ``storage_path`` local (the default, ``runs/``): the run is ``<storage>/<run_id>`` — journal,
  snapshot, node checkpoints; the cache of prepared data and built models is ``<storage>/cache``.
  On a multi-machine cluster this folder must be shared (NFS).
* ``storage_path`` a URI (``s3://bucket/trex``): the journal, the checkpoints and the cache live
  in the bucket (``<storage>/<run_id>/...``, ``<storage>/cache/...``); each machine keeps a local
  scratch copy (``TREX_SCRATCH``, default ``<tmp>/trex``), so any machine can resume any run.

Example::

    paths = RunPaths.for_run(task, None)     # a new run: <storage>/<task>-<time>-<rand>
    paths = RunPaths.for_run(task, "s3://bucket/trex/sentiment-20260101-120000-ab12")
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from trex_ray.spec import TaskSpec
from trex_ray.store.files import basename, is_remote, join


def scratch_root() -> Path:
    """This machine's scratch folder for runs stored in a bucket (same path on every machine)."""
    return Path(os.environ.get("TREX_SCRATCH") or Path(tempfile.gettempdir()) / "trex").absolute()


@dataclass(frozen=True)
class RunPaths:
    location: str  # durable: a local directory (absolute) or a URI
    run_dir: Path  # local: the run folder itself, or this machine's scratch copy of a stored run
    cache_dir: Path  # local cache of built models and prepared data
    storage_path: str  # the root runs are stored under (a directory or a URI)

    @property
    def run_id(self) -> str:
        return basename(self.location)

    @property
    def remote(self) -> bool:
        return is_remote(self.location)

    @classmethod
    def for_run(cls, task: TaskSpec, run_dir: str | Path | None) -> RunPaths:
        if run_dir is None:
            storage = task.storage_path or "runs"
            run_id = f"{task.name}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
            run_dir = join(storage if is_remote(storage) else str(Path(storage).absolute()), run_id)
        if is_remote(run_dir):
            location = str(run_dir).rstrip("/")
            storage = task.storage_path if is_remote(task.storage_path) else location.rsplit("/", 1)[0]
            local = scratch_root() / basename(location)
            cache = Path(os.environ.get("TREX_CACHE_DIR") or scratch_root() / "cache").absolute()
            return cls(location=location, run_dir=local, cache_dir=cache, storage_path=str(storage))
        local = Path(run_dir).absolute()
        storage_dir = local.parent
        if task.storage_path and not is_remote(task.storage_path):
            storage_dir = Path(task.storage_path).absolute()
        cache = Path(os.environ.get("TREX_CACHE_DIR") or storage_dir / "cache").absolute()
        return cls(location=str(local), run_dir=local, cache_dir=cache, storage_path=str(storage_dir))
