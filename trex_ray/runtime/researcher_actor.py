"""ResearcherActor: the Researcher as a named, restartable Ray actor that dispatches NodeRunners.

Named ``researcher-<run_id>`` in namespace ``trex`` so that ``trex status`` finds it. It runs
the search loop in one thread while other calls (progress reports from trials, status
queries) are served on others; the pure ``Researcher`` guards its state with a lock that is never
held during a planner's LLM call, so a trial's report is answered at once. If the
actor dies, Ray restarts it and it resumes from the store like ``trex resume`` would.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayError, RayTaskError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from trex_ray.research import Researcher
from trex_ray.runtime.node_runner import NodeJob, NodeRunner
from trex_ray.runtime.runners import RunnerPool
from trex_ray.spec import Cost, FailureKind, Outcome, Progress, Resources, Result, TaskSpec, TrainMode
from trex_ray.store import Store
from trex_ray.store.files import join
from trex_ray.tree import Node

log = logging.getLogger(__name__)

NAMESPACE = "trex"
POOL_POLL_S = 1.0


def actor_name(run_id: str) -> str:
    return f"researcher-{run_id}"


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
class _Running:
    node_id: str
    runner: Any
    holds_slot: bool = True  # it trains; a node that only evaluates (the base model) takes no trial slot
    started: float = field(default_factory=time.time)


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
        self.pool = pool  # optional SlotPool (runtime/pool.py) shared with other researchers
        # Warm runners for this run's slots, started first: their processes and imports (torch, Ray Train,
        # datasets, transformers: tens of seconds on a busy head) overlap the replay or the data profile
        # below and the driver's first calls, rather than following them. Under `trex bench` (a SlotPool
        # shared by many researchers) none are kept idle, so memory stays bounded by the slots.
        self.runners = RunnerPool(make=self._new_runner)  # warm NodeRunners reused across nodes
        self.runners.fill(0 if pool is not None else trial_slots(self.task.resources))
        self.location = run_dir
        self.run_dir = Path(local_dir or run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.storage_path = storage_path
        self.cache_dir = cache_dir
        store = Store(run_dir)  # a restarted actor resumes from here, like `trex resume`
        profile = None if store.exists else self._profile()
        self.researcher = Researcher.open(self.run_dir, self.task, profile=profile, run_id=run_id,
                                          store=store)
        self.running: dict[Any, _Running] = {}
        self.testing: dict[Any, tuple[str, Any]] = {}  # test-split scorings in flight: ref -> (node, runner)
        self.peak_running = 0
        self.run_id = run_id
        # The run's Evaluator (runtime/evaluator.py), made at the first dispatch; or one shared with
        # other runs, which the caller closes.
        self.evaluator: Any = evaluator
        self._owns_evaluator = False
        self._evaluator_after = 0.0  # no new evaluator before this time (after one died)
        self.mlflow = self._mlflow(run_id)  # MLflow runs of this search (execute/tracking.py), or None

    def _profile(self) -> dict[str, Any]:
        from trex_ray.execute.profile import profile

        try:
            return profile(self.task)
        except Exception as exc:  # a profile helps planning; its absence must not stop the run
            log.warning("data profile failed: %s", exc)
            return {}

    # --- the loop -----------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        self_handle = ray.get_runtime_context().current_actor
        for node in list(self.researcher.tree):  # a resumed run: nodes that ended before, logged once
            self._track_node(node.id)
        while True:
            want = trial_slots(self.task.resources) - self._slots_held()
            free = self._acquire(want)
            nodes = self.researcher.next_nodes(free)
            trains = sum(_trains(node) for node in nodes)
            self._release(free - trains)
            for node in nodes:
                self._dispatch(node, self_handle)
            self.peak_running = max(self.peak_running, len(self.running))
            if trains < len(nodes):
                continue  # an evaluation-only node left its slot free: fill it now
            if self._slots_held() < trial_slots(self.task.resources):
                self._test_early()  # a slot the search cannot fill now: score the base on test in it
            if not self.running:
                waiting = free < want or self.researcher.retry_wait() is not None
                if waiting and self.researcher.stop_reason() is None:
                    # work left, but the shared pool has no slot for us yet, or a retry waits its delay
                    time.sleep(POOL_POLL_S)
                    continue
                break
            ready, _ = ray.wait([*self.running, *self.testing], num_returns=1, timeout=1.0)
            for ref in ready:
                if ref in self.testing:
                    self._collect_test(ref)
                else:
                    self._collect(ref)
            self._enforce_timeouts()
        reason = self.researcher.stop_reason() or "nothing left to try"
        self._score_tests()
        self.researcher.finish(reason)
        if self.mlflow is not None:
            from trex_ray.report.text import summary

            self._tracking(self.mlflow.finish, summary(self.researcher.tree, self.task))
        self.runners.close()
        self._close_evaluator()
        if self.pool is not None:
            self.pool.leave.remote(self.run_id)
        return {"reason": reason, "peak_running": self.peak_running}

    def _test_early(self) -> None:
        """The base model's test score does not depend on the search: take it in a slot that the search
        leaves idle, rather than at the end (the search never reads it)."""
        if self.testing:
            return
        for node in self.researcher.to_test_early():
            self._start_test(node)

    def _start_test(self, node: Node, threads: int | None = None) -> None:
        runner = self.runners.take()
        checkpoint = node.result.checkpoint if node.parent is not None and node.result else None
        adapter = node.plan.train.mode is TrainMode.lora
        ref = runner.test.remote(self._job(node), checkpoint, adapter, self._evaluator(), threads)
        self.testing[ref] = (node.id, runner)
        log.info("%s: scoring on the test split", node.id)

    def _collect_test(self, ref: Any) -> None:
        node_id, runner = self.testing.pop(ref)
        try:
            scored = ray.get(ref, timeout=self.task.budget.trial_timeout_seconds)
        except Exception as exc:  # noqa: BLE001 - a lost runner: recorded, the run still ends
            scored = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300]}
        self.runners.give_back(runner, healthy="error" not in scored)
        self.researcher.on_test(node_id, scored)
        if self.mlflow is not None:
            self._tracking(self.mlflow.node_tested, node_id, self.task.metric.name.value, scored)

    def _score_tests(self) -> None:
        """After the search: the base model (unless scored already while a slot was idle) and the best
        nodes on validation, scored on the test split, as many at once as there are trial slots, on the
        run's warm runners (a resumed run scores only those still missing)."""
        for ref in list(self.testing):
            self._collect_test(ref)
        pending = self.researcher.to_test()
        slots = trial_slots(self.task.resources)
        while pending:
            wave, pending = pending[:slots], pending[slots:]
            for node in wave:
                self._start_test(node, self._test_threads(slots, len(wave)))
            for ref in list(self.testing):
                self._collect_test(ref)

    def _test_threads(self, slots: int, tests: int) -> int | None:
        """CPU threads for each of the search's last test scores: the trial slots' CPUs on this machine
        are free by then, so a lone test score (the usual case: the base was scored during the search)
        uses them all rather than one. None (as trials have it) under a bench, whose other tasks may
        still be training, and on GPUs."""
        r = self.task.resources
        if self.pool is not None or r.gpus_per_worker:
            return None
        cpus = min(os.cpu_count() or 1, int(slots * r.num_workers * r.cpus_per_worker))
        return max(1, cpus // max(1, tests))

    def _dispatch(self, node: Node, self_handle: Any) -> None:
        job = self._job(node)
        runner = self.runners.take()
        ref = runner.run.remote(job, self_handle, self._evaluator())
        self.running[ref] = _Running(node.id, runner, holds_slot=_trains(node))
        log.info("%s started (parent %s): %s", node.id, node.parent, node.plan.rationale)

    def _job(self, node: Node) -> NodeJob:
        parent = self.researcher.tree.get(node.parent) if node.parent else None
        warm = node.plan.train.warm_start and parent is not None and parent.result is not None
        return NodeJob(
            node_id=node.id,
            plan=node.plan.model_dump(mode="json"),
            task=self.task.model_dump(mode="json"),
            work_dir=str(self.run_dir / "nodes" / node.id),
            cache_dir=self.cache_dir,
            storage_path=self.storage_path,
            parent_checkpoint=parent.result.checkpoint if warm and parent and parent.result else None,
            parent_adapter=bool(warm and parent and parent.plan.train.mode is TrainMode.lora),
            attempt=node.attempts,
            checkpoint_location=join(self.location, "nodes", node.id, "checkpoint"),
            tensorboard_dir=self._tensorboard_dir(node),
            ray_train_path=join(self.location, "ray_train"),
        )

    def _tensorboard_dir(self, node: Node) -> str | None:
        """``RUN_DIR/tensorboard/<node>`` (``<node>.a<k>`` for a retry: its curves apart from the first's)."""
        if not self.task.tracking.tensorboard:
            return None
        name = node.id if node.attempts <= 1 else f"{node.id}.a{node.attempts}"
        return str(self.run_dir / "tensorboard" / name)

    @staticmethod
    def _new_runner() -> Any:
        # On this actor's machine (the driver's): a worker machine that dies takes only the trial's
        # training workers with it, never the runner that reports the loss.
        here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)
        return NodeRunner.options(name=None, scheduling_strategy=here).remote()

    def _collect(self, ref: Any) -> None:
        job = self.running.pop(ref)
        held = _held(self.task.resources)
        try:
            result = Result.model_validate(ray.get(ref))
        except RayActorError as exc:
            result = _failed(FailureKind.lost, f"the node's worker died: {exc}".splitlines()[0], job, held)
        except RayTaskError as exc:
            result = _failed(FailureKind.error, str(exc).strip().splitlines()[-1], job)
        except RayError as exc:  # its object or owner was lost with a machine: the cluster's fault
            result = _failed(FailureKind.lost, f"{type(exc).__name__}: {exc}".splitlines()[0], job, held)
        if result.failure is FailureKind.error and not self._evaluator_alive():  # its machine died
            result = result.model_copy(update={"failure": FailureKind.lost,
                                               "error": f"the run's evaluator was lost ({result.error})"})
        # a runner whose trial failed in any way is not trusted with the next node
        self.runners.give_back(job.runner, healthy=result.failure is None)
        self._release(int(job.holds_slot))
        self.researcher.on_result(job.node_id, result)
        self._track_node(job.node_id)
        log.info("%s %s metric=%s", job.node_id, result.outcome.value, result.metric)

    def _enforce_timeouts(self) -> None:
        limit = self.task.budget.trial_timeout_seconds
        for ref, job in list(self.running.items()):
            if time.time() - job.started > limit:
                log.warning("%s ran past %.0f s: killed", job.node_id, limit)
                self.runners.discard(job.runner)
                self.running.pop(ref)
                self._release(int(job.holds_slot))
                held = _held(self.task.resources)
                self.researcher.on_result(job.node_id,
                                          _failed(FailureKind.timeout, f"ran past {limit:.0f} s", job, held))
                self._track_node(job.node_id)

    # --- experiment tracking: MLflow runs (TensorBoard files are written by the nodes themselves) ----
    def _mlflow(self, run_id: str) -> Any:
        from trex_ray.execute.tracking import mlflow_tracker

        tracking = self.task.tracking
        return mlflow_tracker(tracking.mlflow, tracking.mlflow_experiment or self.task.name, run_id,
                              self.task.model_dump(mode="json"))

    def _track_node(self, node_id: str) -> None:
        node = self.researcher.tree.get(node_id)
        if self.mlflow is not None and node.status.done and node.result is not None:
            self._tracking(self.mlflow.node_ended, node.id, node.parent, node.plan, node.result,
                           self.task.metric.name.value)

    @staticmethod
    def _tracking(fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - tracking never stops a run
            log.warning("MLflow tracking: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)

    # --- the run's evaluator: one vLLM engine per base model, shared by every node -----------
    def _evaluator(self) -> Any:
        from trex_ray.runtime.evaluator import evaluator_for

        if self.evaluator is None and time.time() >= self._evaluator_after:
            try:
                self.evaluator = evaluator_for(self.task, self.run_id, self.cache_dir)
                self._owns_evaluator = self.evaluator is not None
            except Exception as exc:  # nodes then evaluate by themselves (HF generate)
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
        except Exception:  # busy or slow: alive
            pass
        return True

    def _close_evaluator(self) -> None:
        from trex_ray.runtime.evaluator import close_evaluator

        if self._owns_evaluator:
            close_evaluator(self.evaluator)
        self.evaluator, self._owns_evaluator = None, False

    # --- the shared slot pool (a no-op without one) -----------------------------------------
    def _acquire(self, want: int) -> int:
        if self.pool is None:
            return want
        try:
            return int(ray.get(self.pool.acquire.remote(self.run_id, want, self._slots_held()), timeout=30))
        except Exception as exc:  # a lost pool must not stall the search: fall back to own slots
            log.warning("slot pool unavailable (%s); using this run's own slots", exc)
            return want

    def _slots_held(self) -> int:
        return sum(job.holds_slot for job in self.running.values())

    def _release(self, n: int) -> None:
        if self.pool is not None and n > 0:
            self.pool.release.remote(self.run_id, n)

    # --- calls from trials and from `trex status` -------------------------------------------
    def report_progress(self, node_id: str, progress: dict[str, Any], attempt: int | None = None) -> str:
        return self.researcher.on_progress(node_id, Progress.model_validate(progress), attempt).value

    def status(self) -> dict[str, Any]:
        from trex_ray.report.text import summary

        with self.researcher.reading() as tree:  # a consistent snapshot, never behind an LLM call
            return summary(tree, self.task, peak_running=self.peak_running)

    def ping(self) -> bool:
        return True


def _trains(node: Node) -> bool:
    return node.plan.train.mode is not TrainMode.none


def _failed(kind: FailureKind, message: str, job: _Running, held: float = 0.0) -> Result:
    """A result the runtime makes for a trial that returned none; ``held``: resources it held."""
    wall = time.time() - job.started
    return Result(outcome=Outcome.failed, failure=kind, error=message,
                  cost=Cost(wall_seconds=wall, compute_seconds=wall * held))


def _held(r: Resources) -> float:
    """CPU- or GPU-count a trial holds (as ``run_plan`` counts compute)."""
    return r.num_workers * (r.gpus_per_worker if r.gpus_per_worker else r.cpus_per_worker)


def wait_ready(handle: Any, timeout: float = 120.0) -> None:
    try:
        ray.get(handle.ping.remote(), timeout=timeout)
    except GetTimeoutError:
        raise RuntimeError("the Researcher actor did not start in time") from None
