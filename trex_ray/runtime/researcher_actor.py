"""ResearcherActor: the Researcher and its trial loop as a named, restartable Ray actor.

Named ``researcher-<run_id>`` in namespace ``trex`` so that ``trex status`` finds it. It holds the
pure trial loop (``research/orchestrator.py``) over a ``RayExecutor`` (``runtime/ray_executor.py``:
NodeRunners, the run's evaluator) and adds only Ray glue: the loop runs in one thread while other
calls (progress reports from trials, status queries) are served on others; the pure ``Researcher``
guards its state with a lock that is never held during a planner's LLM call, so a trial's report is
answered at once. If the actor dies, Ray restarts it and it resumes from the store like ``trex
resume`` would.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import GetTimeoutError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from trex_ray.research import Researcher
from trex_ray.research.orchestrator import Orchestrator
from trex_ray.runtime.node_runner import NodeRunner
from trex_ray.runtime.ray_executor import RayExecutor, RaySlots, RunPaths, trial_slots
from trex_ray.runtime.runners import RunnerPool
from trex_ray.spec import Progress, TaskSpec
from trex_ray.store import Store
from trex_ray.tree import Node

log = logging.getLogger(__name__)

NAMESPACE = "trex"

__all__ = ["NAMESPACE", "ResearcherActor", "actor_name", "trial_slots", "wait_ready"]


def actor_name(run_id: str) -> str:
    return f"researcher-{run_id}"


@ray.remote(num_cpus=0, max_concurrency=16, max_restarts=3)
class ResearcherActor:
    def __init__(self, run_dir: str, task: dict[str, Any], run_id: str, storage_path: str, cache_dir: str,
                 pool: Any = None, *, local_dir: str | None = None, evaluator: Any = None) -> None:
        """``run_dir``: where the run is stored (a folder or an object-store URI); ``local_dir``: this
        machine's folder for node work and planner files (default: ``run_dir`` itself); ``evaluator``:
        an Evaluator shared with other runs (``trex bench``), owned and closed by the caller."""
        from trex_ray.runtime.env import apply_to_this_process

        apply_to_this_process()
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
        self.task = TaskSpec.model_validate(task)
        self.slots = RaySlots(self.task.resources, pool, run_id)  # pool: a SlotPool shared with other runs
        # Warm runners for this run's slots, started first: their processes and imports (torch, Ray Train,
        # datasets, transformers: tens of seconds on a busy head) overlap the replay or the data profile
        # below and the driver's first calls, rather than following them. Under `trex bench` (a SlotPool
        # shared by many researchers) none are kept idle, so memory stays bounded by the slots.
        self.runners = RunnerPool(make=self._new_runner)  # warm NodeRunners reused across nodes
        self.runners.fill(0 if pool is not None else trial_slots(self.task.resources))
        self.paths = RunPaths(location=run_dir, local_dir=Path(local_dir or run_dir),
                              storage_path=storage_path, cache_dir=cache_dir)
        self.paths.local_dir.mkdir(parents=True, exist_ok=True)
        store = Store(run_dir)  # a restarted actor resumes from here, like `trex resume`
        profile = None if store.exists else self._profile()
        self.researcher = Researcher.open(self.paths.local_dir, self.task, profile=profile, run_id=run_id,
                                          store=store)
        self.run_id = run_id
        self.shared_evaluator = evaluator
        self.orchestrator: Orchestrator | None = None  # made by run(), which needs this actor's handle
        self.mlflow = self._mlflow(run_id)  # MLflow runs of this search (execute/tracking.py), or None

    def _profile(self) -> dict[str, Any]:
        from trex_ray.execute.profile import profile

        try:
            return profile(self.task)
        except Exception as exc:  # a profile helps planning; its absence must not stop the run
            log.warning("data profile failed: %s", exc)
            return {}

    # --- the loop: the orchestrator's, on Ray -------------------------------------------------
    def run(self) -> dict[str, Any]:
        executor = RayExecutor(self.paths, self.task, self.run_id,
                               researcher=ray.get_runtime_context().current_actor, runners=self.runners,
                               evaluator=self.shared_evaluator)
        self.orchestrator = Orchestrator(self.researcher, executor, self.slots,
                                         observer=_MlflowObserver(self) if self.mlflow is not None else None)
        end = self.orchestrator.run()
        return {"reason": end.reason, "peak_running": end.peak_running}

    @staticmethod
    def _new_runner() -> Any:
        # On this actor's machine (the driver's): a worker machine that dies takes only the trial's
        # training workers with it, never the runner that reports the loss.
        here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)
        return NodeRunner.options(name=None, scheduling_strategy=here).remote()

    # --- experiment tracking: MLflow runs (TensorBoard files are written by the nodes themselves) ----
    def _mlflow(self, run_id: str) -> Any:
        from trex_ray.execute.tracking import mlflow_tracker

        tracking = self.task.tracking
        return mlflow_tracker(tracking.mlflow, tracking.mlflow_experiment or self.task.name, run_id,
                              self.task.model_dump(mode="json"))

    # --- calls from trials and from `trex status` -------------------------------------------
    def report_progress(self, node_id: str, progress: dict[str, Any], attempt: int | None = None) -> str:
        return self.researcher.on_progress(node_id, Progress.model_validate(progress), attempt).value

    def status(self) -> dict[str, Any]:
        from trex_ray.report.text import summary

        peak = self.orchestrator.peak_running if self.orchestrator is not None else 0
        with self.researcher.reading() as tree:  # a consistent snapshot, never behind an LLM call
            return summary(tree, self.task, peak_running=peak)

    def ping(self) -> bool:
        return True


class _MlflowObserver:
    """The orchestrator's records as MLflow runs; a tracking error is one warning, never the run's end."""

    def __init__(self, actor: Any) -> None:
        self.mlflow, self.task, self.researcher = actor.mlflow, actor.task, actor.researcher

    def node_ended(self, node: Node) -> None:
        assert node.result is not None
        _quietly(self.mlflow.node_ended, node.id, node.parent, node.plan, node.result,
                 self.task.metric.name.value)

    def node_tested(self, node_id: str, scored: dict[str, Any]) -> None:
        _quietly(self.mlflow.node_tested, node_id, self.task.metric.name.value, scored)

    def finished(self) -> None:
        from trex_ray.report.text import summary

        _quietly(self.mlflow.finish, summary(self.researcher.tree, self.task))


def _quietly(fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except Exception as exc:  # noqa: BLE001 - tracking never stops a run
        log.warning("MLflow tracking: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def wait_ready(handle: Any, timeout: float = 120.0) -> None:
    try:
        ray.get(handle.ping.remote(), timeout=timeout)
    except GetTimeoutError:
        raise RuntimeError("the Researcher actor did not start in time") from None
