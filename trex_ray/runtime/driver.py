"""The driver: connect to Ray, start (or find) the Researcher actor, show progress, return the tree.

The driver holds the run's lease (``store/lease.py``) for its whole life: a second ``trex run/resume``
of the same run fails at once, before Ray starts. Locally ``ray.init`` starts an embedded cluster;
under ``ray job submit`` (``RAY_ADDRESS`` set) it joins the existing one. The driver reserves no
resources itself. If the Researcher actor dies (its machine, a kill), Ray restarts it
(``max_restarts``), it resumes from the store, and the driver asks the new incarnation to run on.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import ActorUnavailableError, GetTimeoutError, RayActorError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from trex_ray.runtime.auth import align_auth_mode
from trex_ray.runtime.display import ProgressDisplay
from trex_ray.runtime.env import apply_to_this_process, driver_runtime_env
from trex_ray.runtime.live import ADDRESS_HINT
from trex_ray.runtime.paths import RunPaths
from trex_ray.runtime.researcher_actor import NAMESPACE, ResearcherActor, actor_name, wait_ready
from trex_ray.spec import TaskSpec
from trex_ray.store import read_tree
from trex_ray.store.lease import Lease, acquire_lease
from trex_ray.tree import SearchTree

log = logging.getLogger(__name__)

__all__ = ["RunPaths", "connect", "run"]

RESTART_WAIT_S = 300.0


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
        "runtime_env": driver_runtime_env(),
    }
    if address:
        align_auth_mode()  # an explicit address never turns token auth on by itself
        ray.init(address=address, **common)
    else:
        # address="local": never join a stale cluster recorded in a temp dir.
        gpus = os.environ.get("TREX_LOCAL_NUM_GPUS")  # logical GPUs, for tests on CPU machines
        ray.init(address="local", num_cpus=os.cpu_count(), num_gpus=int(gpus) if gpus else None,
                 include_dashboard=False, **common)


def run(task: TaskSpec, run_dir: str | Path | None = None, address: str | None = None,
        live: bool = True) -> tuple[SearchTree, Path | str]:
    """Run (or, if ``run_dir`` holds a journal, resume) a search and wait for it to end.

    ``run_dir``: a local folder or a stored run's URI; returns the tree and where the run lives.
    """
    paths = RunPaths.for_run(task, run_dir)
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    lease = acquire_lease(paths.location)  # one writer per run: LeaseHeld before Ray even starts
    try:
        _drive(task, paths, address, live, lease)
    finally:
        lease.release()
    return read_tree(paths.location), (paths.location if paths.remote else paths.run_dir)


def _drive(task: TaskSpec, paths: RunPaths, address: str | None, live: bool, lease: Lease) -> None:
    connect(address)
    _write_address_hint(paths.run_dir)
    # On the driver's machine (the head under `ray job submit`), never on a worker that may go
    # away: if this machine dies the driver dies with it, and `trex resume` continues the run.
    here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)
    actor = ResearcherActor.options(name=actor_name(paths.run_id), namespace=NAMESPACE, get_if_exists=True,
                                    scheduling_strategy=here).remote(
        paths.location, task.model_dump(mode="json"), paths.run_id, paths.storage_path, str(paths.cache_dir),
        local_dir=str(paths.run_dir),
    )
    wait_ready(actor)
    try:
        with ProgressDisplay(task, Path(paths.run_dir), live=live) as display:
            _wait_for(actor, display, lease)
    finally:
        ray.kill(actor)
        (paths.run_dir / ADDRESS_HINT).unlink(missing_ok=True)  # nothing live to find any more


def _wait_for(actor: Any, display: ProgressDisplay, lease: Lease) -> None:
    """Until the search ends; a Researcher restarted by Ray (it resumed from the store) runs on. A lease
    taken from this driver (a bucket lease it could not renew in time) ends the run here."""
    done_ref = actor.run.remote()
    while True:
        if lease.lost is not None:
            raise RuntimeError(f"{lease.lost}; this driver stopped writing the run")
        ready, _ = ray.wait([done_ref], timeout=1.0)
        if ready:
            try:
                ray.get(done_ref)
                return
            except RayActorError as exc:
                log.warning("the Researcher actor died (%s); waiting for Ray to restart it",
                            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
                await_restart(actor)
                done_ref = actor.run.remote()
                continue
        try:
            display.update(ray.get(actor.status.remote(), timeout=10))
        except Exception as exc:  # the display is best effort; the run goes on
            log.debug("status unavailable: %s", exc)


def await_restart(actor: Any, timeout: float = RESTART_WAIT_S) -> None:
    """Until a restarted actor answers; raises once Ray gave up on it (its restarts are spent)."""
    deadline = time.time() + timeout
    while True:
        try:
            ray.get(actor.ping.remote(), timeout=30)
            return
        except (ActorUnavailableError, GetTimeoutError):  # still restarting
            if time.time() > deadline:
                raise RuntimeError(f"the Researcher actor did not come back in {timeout:.0f} s") from None
            time.sleep(1.0)


def _write_address_hint(run_dir: Path) -> None:
    try:
        (run_dir / ADDRESS_HINT).write_text(ray.get_runtime_context().gcs_address)
    except Exception as exc:  # a hint only: `trex status` falls back to reading the store
        log.debug("no address hint: %s", exc)
