"""The executor contract (``spec/trial.py``) on Ray, and the run's trial slots on the cluster.

``RayExecutor`` runs each trial on a warm ``NodeRunner`` actor (``runtime/runners.py``): a train trial
as ``NodeRunner.run`` (its progress goes to the Researcher actor's ``report_progress``), a test trial
as ``NodeRunner.test``. It turns what Ray says into facts for the orchestrator, which classifies them:
a dead runner or an object lost with its machine is ``Fault.died``, a raised task ``Fault.raised``, a
trial error while one of its training workers (``NodeRunner``'s ``lost``) or the run's evaluator died
carries ``lost``. A runner whose trial failed in any
way is not reused. It owns the run's evaluator (``runtime/evaluator.py``), made at the first submit.
``RaySlots``: the cluster's trial slots, or a share of a ``SlotPool`` (``runtime/pool.py``).

Example::

    executor = RayExecutor(RunPaths(...), task, run_id, researcher=actor_handle, runners=RunnerPool(make))
    Orchestrator(researcher, executor, RaySlots(task.resources)).run()
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayActorError, RayError, RayTaskError

from trex_ray.runtime.node_runner import NodeJob
from trex_ray.runtime.runners import RunnerPool
from trex_ray.spec import FailureKind, Resources, Result, TaskSpec
from trex_ray.spec.trial import Fault, Trial, TrialKind, TrialOutcome
from trex_ray.store.files import join

log = logging.getLogger(__name__)


def trial_slots(resources: Resources) -> int:
    """How many trials fit on the cluster at once, from its total CPUs and GPUs."""
    total = ray.cluster_resources()
    slots = math.floor(total.get("CPU", 0) / (resources.cpus_per_worker * resources.num_workers) + 1e-9)
    if resources.gpus_per_worker:
        gpus = total.get("GPU", 0) / (resources.gpus_per_worker * resources.num_workers)
        slots = min(slots, math.floor(gpus + 1e-9))
    if resources.memory_gb_per_worker:
        memory = total.get("memory", 0) / (resources.memory_gb_per_worker * 2**30 * resources.num_workers)
        slots = min(slots, math.floor(memory + 1e-9))
    if resources.max_concurrent_trials:
        slots = min(slots, resources.max_concurrent_trials)
    return max(1, slots)


@dataclass
class RaySlots:
    """The ``Slots`` of a run on Ray: ``trial_slots`` of the cluster; with ``pool``, granted by a shared
    ``SlotPool`` (a lost pool must not stall the search: then the run's own slots)."""

    resources: Resources
    pool: Any = None  # a SlotPool actor handle
    member: str = ""  # this run's name in the pool

    @property
    def shared(self) -> bool:
        return self.pool is not None

    def capacity(self) -> int:
        return trial_slots(self.resources)

    def acquire(self, want: int, holding: int) -> int:
        if self.pool is None:
            return want
        try:
            return int(ray.get(self.pool.acquire.remote(self.member, want, holding), timeout=30))
        except Exception as exc:  # noqa: BLE001
            log.warning("slot pool unavailable (%s); using this run's own slots", exc)
            return want

    def release(self, n: int) -> None:
        if self.pool is not None and n > 0:
            self.pool.release.remote(self.member, n)

    def leave(self) -> None:
        if self.pool is not None:
            self.pool.leave.remote(self.member)


@dataclass(frozen=True)
class RunPaths:
    location: str  # where the run is stored (a folder or an object-store URI)
    local_dir: Path  # this machine's folder for node work
    storage_path: str
    cache_dir: str


class RayExecutor:
    def __init__(self, paths: RunPaths, task: TaskSpec, run_id: str, researcher: Any, runners: RunnerPool,
                 evaluator: Any = None) -> None:
        """``researcher``: the Researcher actor's handle (trials report progress to it); ``evaluator``: one
        shared with other runs (``trex bench``), owned and closed by the caller."""
        self.paths, self.task, self.run_id = paths, task, run_id
        self.researcher, self.runners = researcher, runners
        self.evaluator: Any = evaluator
        self._owns_evaluator = False
        self._evaluator_after = 0.0  # no new evaluator before this time (after one died)
        self.refs: dict[Any, tuple[Trial, Any]] = {}  # in flight: ref -> (trial, runner)

    # --- the contract -------------------------------------------------------------------
    def submit(self, trial: Trial) -> Any:
        runner = self.runners.take()
        job = self._job(trial)
        if trial.kind is TrialKind.test:
            ref = runner.test.remote(job, trial.parent_checkpoint, trial.parent_adapter, self._evaluator(),
                                     trial.threads)
        else:
            ref = runner.run.remote(job, self.researcher, self._evaluator())
        self.refs[ref] = (trial, runner)
        return ref

    def poll(self, timeout: float) -> list[tuple[Any, TrialOutcome]]:
        if not self.refs:
            return []
        ready, _ = ray.wait(list(self.refs), num_returns=1, timeout=timeout)
        return [(ref, self._outcome(ref)) for ref in ready]

    def cancel(self, handle: Any) -> None:
        entry = self.refs.pop(handle, None)
        if entry is not None:
            self.runners.discard(entry[1])

    def close(self) -> None:
        for ref in list(self.refs):
            self.cancel(ref)
        self.runners.close()
        self._close_evaluator()

    # --- inside -------------------------------------------------------------------------
    def _outcome(self, ref: Any) -> TrialOutcome:
        trial, runner = self.refs.pop(ref)
        if trial.kind is TrialKind.test:
            try:
                scored = ray.get(ref, timeout=self.task.budget.trial_timeout_seconds)
            except Exception as exc:  # noqa: BLE001 - a lost runner: recorded, the run still ends
                scored = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300]}
            self.runners.give_back(runner, healthy="error" not in scored)
            return TrialOutcome(scores=scored)
        try:
            reply = ray.get(ref)
            result = Result.model_validate(reply["result"])
        except RayActorError as exc:
            outcome = TrialOutcome(fault=Fault.died, message=f"the node's worker died: {exc}".splitlines()[0])
        except RayTaskError as exc:
            outcome = TrialOutcome(fault=Fault.raised, message=str(exc).strip().splitlines()[-1])
        except RayError as exc:  # its object or owner was lost with a machine: the cluster's fault
            outcome = TrialOutcome(fault=Fault.died, message=f"{type(exc).__name__}: {exc}".splitlines()[0])
        else:
            lost = reply.get("lost")
            if lost is None and result.failure is FailureKind.error and not self._evaluator_alive():
                lost = "the run's evaluator was lost"
            outcome = TrialOutcome(result=result, lost=lost)
        # a runner whose trial failed in any way is not trusted with the next node
        healthy = outcome.result is not None and outcome.result.failure is None
        self.runners.give_back(runner, healthy=healthy)
        return outcome

    def _job(self, trial: Trial) -> NodeJob:
        location, node = self.paths.location, trial.node_id
        train = trial.kind is TrialKind.train
        return NodeJob(
            node_id=node,
            plan=trial.plan.model_dump(mode="json"),
            task=self.task.model_dump(mode="json"),
            work_dir=str(self.paths.local_dir / "nodes" / node),
            cache_dir=self.paths.cache_dir,
            storage_path=self.paths.storage_path,
            parent_checkpoint=trial.parent_checkpoint if train else None,
            parent_adapter=trial.parent_adapter if train else False,
            attempt=trial.attempt,
            checkpoint_location=join(location, "nodes", node, "checkpoint"),
            tensorboard_dir=self._tensorboard_dir(trial),
            ray_train_path=join(location, "ray_train"),
        )

    def _tensorboard_dir(self, trial: Trial) -> str | None:
        """``RUN_DIR/tensorboard/<node>`` (``<node>.a<k>`` for a retry: its curves apart from the first's)."""
        if not self.task.tracking.tensorboard:
            return None
        name = trial.node_id if trial.attempt <= 1 else f"{trial.node_id}.a{trial.attempt}"
        return str(self.paths.local_dir / "tensorboard" / name)

    # --- the run's evaluator: one vLLM engine per base model, shared by every node -----------
    def _evaluator(self) -> Any:
        from trex_ray.runtime.evaluator import evaluator_for

        if self.evaluator is None and time.time() >= self._evaluator_after:
            try:
                self.evaluator = evaluator_for(self.task, self.run_id, self.paths.cache_dir)
                self._owns_evaluator = self.evaluator is not None
            except Exception as exc:  # noqa: BLE001 - nodes then evaluate by themselves (HF generate)
                log.warning("no evaluator for this run (%s); nodes evaluate by themselves", exc)
        return self.evaluator

    def _evaluator_alive(self) -> bool:
        """False (and forgotten, so the next node makes a new one) when the evaluator actor died."""
        if self.evaluator is None:
            return True
        try:
            ray.get(self.evaluator.stats.remote(), timeout=10)
        except RayActorError:
            log.warning("the run's evaluator died; nodes evaluate by themselves, then a new one serves them")
            self.evaluator, self._owns_evaluator = None, False
            # not at once: a new actor placed before Ray notices a dead machine may land on it
            self._evaluator_after = time.time() + self.task.budget.retry_delay_seconds
            return False
        except Exception:  # noqa: BLE001 - busy or slow: alive
            pass
        return True

    def _close_evaluator(self) -> None:
        from trex_ray.runtime.evaluator import close_evaluator

        if self._owns_evaluator:
            close_evaluator(self.evaluator)
        self.evaluator, self._owns_evaluator = None, False
