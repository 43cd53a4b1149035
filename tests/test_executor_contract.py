"""One contract suite over every executor (``trex_ray/spec/trial.py``): in-process, simulated and Ray.

Each harness gives an executor whose trials' progress reports go to a sink the test controls, and
plans it can run: the in-process executor runs the synthetic trial of ``factories`` (its real
``run_plan`` path is the fast tests' and ``test_train_eval``'s), the simulated one the benchmark's
surrogate, the Ray one real ``NodeRunner`` actors training the tiny model (marked ``ray``, ``slow``).
The last tests run the production trial loop (``Orchestrator``) over each.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from factories import make_plan, make_task, run_with_progress, synthetic_metric, synthetic_result

from trex_ray.execute.inprocess import InProcessExecutor
from trex_ray.research import Researcher
from trex_ray.research.orchestrator import FixedSlots, Orchestrator
from trex_ray.spec import Decision, Outcome, Plan, Progress, TrainMode
from trex_ray.spec.trial import Executor, Fault, Trial, TrialKind, TrialOutcome
from trex_ray.tree import NodeStatus

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
# A smaller sentiment task for real trials: each takes seconds; evaluation by HF
FAST = ["data.train.0.limit=600", "data.eval.limit=40", "eval.backend=hf", "budget.max_nodes=1"]


class Sink:
    """Progress reports as the Researcher's ``on_progress`` takes them; says STOP when told to."""

    def __init__(self) -> None:
        self.reports: list[tuple[str, Progress, int | None]] = []
        self.stop = False

    def __call__(self, node_id: str, progress: Progress, attempt: int | None = None) -> Decision:
        self.reports.append((node_id, progress, attempt))
        return Decision.STOP if self.stop else Decision.CONTINUE


def inprocess_executor(progress: Any) -> Executor:
    def run(trial: Trial, report: Any) -> Any:
        return run_with_progress(report, synthetic_result(trial.plan))[0]

    def test(trial: Trial) -> dict[str, Any]:
        return {"test_metric": synthetic_metric(trial.plan), "test_metrics": {}}

    return InProcessExecutor(run, progress=progress, test=test)


def sim_executor(progress: Any) -> Executor:
    sys.path.insert(0, str(BENCH))
    from sim import SimCluster
    from sim_executor import SimExecutor
    from surrogate import CostModel, SurrogateExecutor, SurrogateModel

    model = SurrogateModel.load()
    surrogate = SurrogateExecutor(model, CostModel.from_model(model), seed=0)
    return SimExecutor(SimCluster(surrogate, budget=1e9), progress=progress)


class Harness:
    """An executor whose trials report to a ``Sink``."""

    def __init__(self, make: Any) -> None:
        self.sink = Sink()
        self.executor: Executor = make(self.sink)

    def reports(self) -> list[tuple[str, Progress, int | None]]:
        return self.sink.reports

    def stop_all(self) -> None:
        self.sink.stop = True

    def close(self) -> None:
        self.executor.close()


class RayHarness(Harness):
    """Real NodeRunners; their trials report to a sink actor (the Researcher actor's place)."""

    def __init__(self, tmp_path: Path, cache: Path) -> None:
        import ray

        from trex_ray.runtime.node_runner import NodeRunner
        from trex_ray.runtime.ray_executor import RayExecutor, RunPaths
        from trex_ray.runtime.runners import RunnerPool

        @ray.remote(num_cpus=0)
        class SinkActor:  # self-contained: Ray pickles it by value
            def __init__(self) -> None:
                self.reports: list[tuple[str, dict[str, Any], int | None]] = []
                self.stop = False

            def report_progress(self, node_id: str, progress: dict[str, Any], attempt: int | None) -> str:
                self.reports.append((node_id, progress, attempt))
                return "stop" if self.stop else "continue"  # Decision values

            def stop_all(self) -> None:
                self.stop = True

            def seen(self) -> list[tuple[str, dict[str, Any], int | None]]:
                return self.reports

        self.ray, self.sink_actor = ray, SinkActor.remote()
        run = tmp_path / "run"
        paths = RunPaths(location=str(run), local_dir=run, storage_path=str(tmp_path), cache_dir=str(cache))
        self.executor = RayExecutor(paths, make_task(FAST), "contract", researcher=self.sink_actor,
                                    runners=RunnerPool(make=lambda: NodeRunner.remote(), size=2))

    def reports(self) -> list[tuple[str, Progress, int | None]]:
        seen = self.ray.get(self.sink_actor.seen.remote())
        return [(node, Progress.model_validate(p), attempt) for node, p, attempt in seen]

    def stop_all(self) -> None:
        self.ray.get(self.sink_actor.stop_all.remote())


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    from trex_ray.runtime.env import driver_runtime_env

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, namespace="trex",
             runtime_env=driver_runtime_env())
    yield
    ray.shutdown()


@pytest.fixture(params=["inprocess", "sim", pytest.param("ray", marks=[pytest.mark.ray, pytest.mark.slow])])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")
        h: Harness = RayHarness(tmp_path, request.getfixturevalue("shared_cache"))
    else:
        h = Harness({"inprocess": inprocess_executor, "sim": sim_executor}[request.param])
    yield h
    h.close()


def _wait(executor: Executor, n: int, limit_s: float = 600.0) -> list[tuple[Any, TrialOutcome]]:
    """Poll until ``n`` outcomes came (the simulated clock needs polls to advance, not seconds)."""
    got: list[tuple[Any, TrialOutcome]] = []
    deadline = time.monotonic() + limit_s
    while len(got) < n:
        assert time.monotonic() < deadline, f"only {len(got)} of {n} trials ended"
        got += executor.poll(1.0)
    return got


def _trial(node_id: str, plan: Plan, kind: TrialKind = TrialKind.train) -> Trial:
    return Trial(node_id=node_id, attempt=1, plan=plan, kind=kind)


BASE = make_plan(mode=TrainMode.none)


# --- the contract ----------------------------------------------------------------------------
def test_a_trial_ends_once_with_its_result(harness: Harness) -> None:
    handle = harness.executor.submit(_trial("n0", BASE))
    [(ended, outcome)] = _wait(harness.executor, 1)
    assert ended == handle
    assert outcome.fault is None and outcome.result is not None
    assert outcome.result.outcome is Outcome.finished and outcome.result.metric is not None
    assert harness.executor.poll(0.1) == []  # once


def test_every_trial_ends_exactly_once_and_a_cancelled_one_never(harness: Harness) -> None:
    keep = [harness.executor.submit(_trial(f"n{i}", BASE)) for i in range(2)]
    dropped = harness.executor.submit(_trial("n9", BASE))
    harness.executor.cancel(dropped)
    got = _wait(harness.executor, 2)
    assert len(got) == 2 and {h for h, _ in got} == set(keep)  # handles are hashable, not ordered
    assert all(o.result is not None and o.result.outcome is Outcome.finished for _, o in got)
    assert harness.executor.poll(0.5) == []


def test_progress_reaches_the_sink_and_a_stop_ends_the_trial(harness: Harness) -> None:
    harness.stop_all()
    plan = make_plan(1e-4, epochs=2)  # no divergence anywhere (the surrogate's 135 M model too)
    handle = harness.executor.submit(Trial(node_id="n1", attempt=3, plan=plan))
    [(ended, outcome)] = _wait(harness.executor, 1)
    assert ended == handle and outcome.result is not None
    assert outcome.result.outcome is Outcome.stopped
    reports = harness.reports()
    assert reports and {(node, attempt) for node, _, attempt in reports} == {("n1", 3)}
    assert reports[0][1].fraction < 1.0


def test_a_test_trial_returns_scores(harness: Harness) -> None:
    handle = harness.executor.submit(_trial("n0", BASE, TrialKind.test))
    [(ended, outcome)] = _wait(harness.executor, 1)
    assert ended == handle and outcome.scores is not None and outcome.result is None
    assert 0.0 <= outcome.scores["test_metric"] <= 1.0


@pytest.mark.parametrize("make", [inprocess_executor, sim_executor], ids=["inprocess", "sim"])
def test_the_production_loop_runs_a_search_over_it(make: Any, tmp_path: Path) -> None:
    """(The Ray executor's loop is ``ResearcherActor``'s: ``tests/test_loop_ray.py``.)"""
    researcher = Researcher.open(tmp_path / "search", make_task(FAST), profile={}, run_id="contract")
    end = Orchestrator(researcher, make(researcher.on_progress), FixedSlots(2)).run()
    tree = researcher.tree
    assert end.reason is not None and end.from_researcher and tree.finished_reason == end.reason
    assert not tree.with_status(NodeStatus.running) and len(tree) >= 2
    assert tree.root is not None and tree.root.test is not None  # the base scored on the test split


# --- Ray only: what a cluster adds -----------------------------------------------------------
@pytest.mark.ray
@pytest.mark.slow
def test_a_ray_runner_that_dies_is_a_died_fault(ray_cluster: None, tmp_path: Path,
                                                shared_cache: Path) -> None:
    import ray

    h = RayHarness(tmp_path, shared_cache)
    handle = h.executor.submit(_trial("n1", make_plan(2e-3)))
    time.sleep(2.0)
    ray.kill(h.executor.refs[handle][1])  # type: ignore[attr-defined]
    [(ended, outcome)] = _wait(h.executor, 1)
    assert ended == handle and outcome.fault is Fault.died and "died" in outcome.message
    h.close()


# --- the in-process executor's own trial: run_plan here ---------------------------------------
@pytest.mark.slow
def test_the_inprocess_executor_runs_run_plan_and_score_test(tmp_path: Path, shared_cache: Path) -> None:
    from trex_ray.execute.inprocess import plan_runner, scorer

    task, sink = make_task(FAST), Sink()
    executor = InProcessExecutor(plan_runner(task, tmp_path, shared_cache), progress=sink,
                                 test=scorer(task, tmp_path, shared_cache))
    trained = executor.submit(_trial("n1", make_plan(1e-4, epochs=2)))
    base_test = executor.submit(_trial("n0", BASE, TrialKind.test))
    got = dict(_wait(executor, 2))
    result, scores = got[trained].result, got[base_test].scores
    assert result is not None and result.outcome is Outcome.finished and result.metric is not None
    assert result.checkpoint and Path(result.checkpoint).is_dir() and result.curve
    assert sink.reports and {node for node, _, _ in sink.reports} == {"n1"}  # run_plan's reports, here
    assert scores is not None and 0.0 <= scores["test_metric"] <= 1.0
