"""The driver: connect to Ray, start (or find) the Researcher actor, show progress, return the tree.

Locally ``ray.init`` starts an embedded cluster; under ``ray job submit`` (``RAY_ADDRESS`` set)
it joins the existing one. The driver reserves no resources itself.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray

from trex_ray.runtime.env import apply_to_this_process, worker_env
from trex_ray.runtime.researcher_actor import NAMESPACE, ResearcherActor, actor_name, wait_ready
from trex_ray.runtime.display import ProgressDisplay
from trex_ray.spec import TaskSpec
from trex_ray.store import read_tree
from trex_ray.tree import SearchTree

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunPaths:
    run_dir: Path
    cache_dir: Path
    storage_path: Path

    @classmethod
    def for_run(cls, task: TaskSpec, run_dir: str | Path | None) -> RunPaths:
        if run_dir is None:
            storage = Path(task.storage_path or "runs").absolute()
            run_id = f"{task.name}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
            run_dir = storage / run_id
        run_dir = Path(run_dir).absolute()
        storage = Path(task.storage_path).absolute() if task.storage_path else run_dir.parent
        cache = Path(os.environ.get("TREX_CACHE_DIR", storage / "cache")).absolute()
        return cls(run_dir=run_dir, cache_dir=cache, storage_path=storage)


def connect(address: str | None = None) -> None:
    """Join the cluster at ``address``/``RAY_ADDRESS``, or start a fresh local one."""
    if ray.is_initialized():
        return
    apply_to_this_process()
    address = address or os.environ.get("RAY_ADDRESS")
    common: dict[str, Any] = {
        "namespace": NAMESPACE,
        "log_to_driver": False,
        "logging_level": logging.WARNING,
        "runtime_env": {"env_vars": worker_env()},
    }
    if address:
        ray.init(address=address, **common)
    else:
        # address="local": never join a stale cluster recorded in a temp dir.
        gpus = os.environ.get("TREX_LOCAL_NUM_GPUS")  # logical GPUs, for tests on CPU machines
        ray.init(address="local", num_cpus=os.cpu_count(), num_gpus=int(gpus) if gpus else None,
                 include_dashboard=False, **common)


def run(task: TaskSpec, run_dir: str | Path | None = None, address: str | None = None,
        live: bool = True) -> tuple[SearchTree, Path]:
    """Run (or, if ``run_dir`` holds a journal, resume) a search and wait for it to end."""
    paths = RunPaths.for_run(task, run_dir)
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    connect(address)
    run_id = paths.run_dir.name
    actor = ResearcherActor.options(name=actor_name(run_id), namespace=NAMESPACE, get_if_exists=True).remote(
        str(paths.run_dir), task.model_dump(mode="json"), run_id, str(paths.storage_path), str(paths.cache_dir)
    )
    wait_ready(actor)
    done_ref = actor.run.remote()
    with ProgressDisplay(task, paths.run_dir, live=live) as display:
        while True:
            ready, _ = ray.wait([done_ref], timeout=1.0)
            if ready:
                break
            try:
                display.update(ray.get(actor.status.remote(), timeout=10))
            except Exception as exc:  # the display is best effort; the run goes on
                log.debug("status unavailable: %s", exc)
    ray.get(done_ref)
    ray.kill(actor)
    return read_tree(paths.run_dir), paths.run_dir


def task_of(run_dir: str | Path) -> TaskSpec:
    """The task a run directory was started with (from its journal)."""
    if not (Path(run_dir) / "journal.jsonl").is_file():
        raise FileNotFoundError(f"{run_dir}: not a trex run directory (no journal); give the folder `trex run` printed")
    tree = read_tree(run_dir)
    return TaskSpec.model_validate(tree.meta["task"])
