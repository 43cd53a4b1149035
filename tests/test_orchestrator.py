"""The trial loop (``research/orchestrator.py``): slots, failure kinds, timeouts, retries, test scoring.

Pure and fast: the Researcher with the heuristic planner, trials run by the in-process executor over
the synthetic trial of ``factories``, or by the benchmark's simulated executor where a trial must
outlast a timeout on a clock.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

from factories import make_task, synthetic_result

from trex_ray.execute.inprocess import InProcessExecutor
from trex_ray.research import Researcher
from trex_ray.research.orchestrator import FixedSlots, Orchestrator, _Running
from trex_ray.spec import FailureKind, Outcome, Result, TrainMode
from trex_ray.spec.trial import Fault, Trial, TrialOutcome
from trex_ray.tree import EventKind, Node, NodeStatus

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _researcher(tmp_path: Path, *overrides: str) -> Researcher:
    return Researcher.open(tmp_path / "run", make_task(list(overrides)), profile={}, run_id="t")


def _inprocess(researcher: Researcher, run: Any = None, test: Any = None) -> InProcessExecutor:
    return InProcessExecutor(run or (lambda trial, progress: synthetic_result(trial.plan)),
                             progress=researcher.on_progress,
                             test=test or (lambda trial: {"test_metric": 0.5, "test_metrics": {}}))


def _simulated(researcher: Researcher) -> Any:
    """The search benchmark's simulated executor (its trials take minutes of a simulated clock)."""
    sys.path.insert(0, str(BENCH))
    from sim import SimCluster
    from sim_executor import SimExecutor
    from surrogate import CostModel, SurrogateExecutor, SurrogateModel

    model = SurrogateModel.load()
    return SimExecutor(SimCluster(SurrogateExecutor(model, CostModel.from_model(model), 0), 1e9),
                       progress=researcher.on_progress)


class Recorder:
    def __init__(self) -> None:
        self.ended: list[str] = []
        self.tested: list[str] = []
        self.ends = 0

    def node_ended(self, node: Node) -> None:
        self.ended.append(node.id)

    def node_tested(self, node_id: str, scored: dict[str, Any]) -> None:
        self.tested.append(node_id)

    def finished(self) -> None:
        self.ends += 1


def test_an_evaluation_only_node_takes_no_slot(tmp_path: Path) -> None:
    r = _researcher(tmp_path, "budget.max_nodes=3")
    orch = Orchestrator(r, _inprocess(r), FixedSlots(1), score_tests=False)
    orch.step()  # the base model starts and leaves the slot free...
    assert orch.peak_running == 1 and orch.slots_held() == 0
    orch.step()  # ...for the first draft: both run on one slot
    assert orch.peak_running == 2
    held = []
    while orch.step():
        held.append(orch.slots_held())
    assert max(held) <= 1 and r.budget.nodes_used() == 3


def test_a_trial_that_raises_is_an_error_and_is_not_retried(tmp_path: Path) -> None:
    def run(trial: Trial, progress: Any) -> Result:
        if trial.node_id == "n1":
            raise RuntimeError("boom\nsecond line")
        return synthetic_result(trial.plan)

    r = _researcher(tmp_path, "budget.max_nodes=3")
    Orchestrator(r, _inprocess(r, run), FixedSlots(2), score_tests=False).run()
    n1 = r.tree.get("n1")
    assert n1.status is NodeStatus.failed and n1.result is not None
    assert n1.result.failure is FailureKind.error and n1.result.error == "RuntimeError: boom"
    assert n1.result.cost.compute_seconds == 0.0 and n1.attempts == 1


def test_classify_owns_every_failure_kind(tmp_path: Path) -> None:
    r = _researcher(tmp_path, "resources.cpus_per_worker=2", "resources.num_workers=2")
    now = [100.0]
    orch = Orchestrator(r, _inprocess(r), FixedSlots(1), clock=lambda: now[0])
    job = _Running("n1", holds_slot=True, started=90.0)
    lost = orch.classify(job, TrialOutcome(fault=Fault.died, message="the node's worker died"))
    assert (lost.failure, lost.error) == (FailureKind.lost, "the node's worker died")
    assert lost.cost.wall_seconds == 10.0 and lost.cost.compute_seconds == 40.0  # wall x 4 CPUs held
    error = orch.classify(job, TrialOutcome(fault=Fault.raised, message="ValueError: x"))
    assert error.failure is FailureKind.error and error.cost.compute_seconds == 0.0
    failed = Result(outcome=Outcome.failed, failure=FailureKind.error, error="connection refused")
    assert orch.classify(job, TrialOutcome(result=failed)).failure is FailureKind.error
    moved = orch.classify(job, TrialOutcome(result=failed, lost="the run's evaluator was lost"))
    assert moved.failure is FailureKind.lost
    assert moved.error == "the run's evaluator was lost (connection refused)"
    worker = orch.classify(job, TrialOutcome(result=failed, lost="training worker 0 was lost"))
    assert worker.failure is FailureKind.lost
    assert worker.error == "training worker 0 was lost (connection refused)"
    diverged = failed.model_copy(update={"failure": FailureKind.diverged})
    assert orch.classify(job, TrialOutcome(result=diverged, lost="training worker 0 was lost")) == diverged
    for bad in (math.nan, math.inf):
        unscored = Result(outcome=Outcome.finished, metric=bad)
        assert orch.classify(job, TrialOutcome(result=unscored)).metric is None


def test_a_trial_past_its_timeout_is_cancelled_recorded_and_retried(tmp_path: Path) -> None:
    r = _researcher(tmp_path, "budget.max_nodes=2", "budget.trial_timeout_seconds=60",
                    "budget.retry_delay_seconds=0", "budget.max_retries=1")
    sim = _simulated(r)
    # the simulated clock: an epoch takes minutes there, so every trained trial runs past 60 s
    Orchestrator(r, sim, FixedSlots(2), score_tests=False, clock=lambda: sim.cluster.now).run()
    trained = [n for n in r.tree if n.plan.train.mode is not TrainMode.none]
    assert trained and all(n.status is NodeStatus.failed for n in trained)
    for n in trained:
        assert n.result is not None and n.result.failure is FailureKind.timeout
        assert n.result.error == "ran past 60 s" and n.attempts == 2  # retried once, timed out again
    requeued = [e.node_id for e in r.store.events() if e.kind is EventKind.node_requeued]
    assert sorted(requeued) == sorted(n.id for n in trained)
    assert r.tree.root is not None and r.tree.root.status is NodeStatus.finished  # the base is quick
    assert sim.cluster.running == 0  # the cancelled trials left the simulated cluster


def test_the_observer_and_the_test_split(tmp_path: Path) -> None:
    r = _researcher(tmp_path, "budget.max_nodes=4", "search.test_top_k=2")
    seen = Recorder()
    end = Orchestrator(r, _inprocess(r), FixedSlots(2), observer=seen).run()
    done = [n.id for n in r.tree if n.status.done and n.result is not None]
    assert sorted(seen.ended) == sorted(done) and len(set(seen.ended)) == len(seen.ended)
    assert seen.tested[0] == "n0" and len(seen.tested) == 3  # the base, then the two best on validation
    assert all(r.tree.get(i).test is not None for i in seen.tested)
    assert seen.ends == 1 and r.tree.finished_reason == end.reason


def test_in_the_last_stretch_an_idle_slot_scores_the_best_so_far_on_test(tmp_path: Path) -> None:
    """Once no node waits and the node budget is spent, a slot the search can no longer fill scores the
    best on validation so far while the last trials run, instead of after them: one test at a time,
    never while nothing trains (the scores after the search use every CPU), never read by the search."""
    r = _researcher(tmp_path, "budget.max_nodes=5", "search.test_top_k=1", "search.early_stopping=false")
    sim = _simulated(r)
    Orchestrator(r, sim, FixedSlots(2), clock=lambda: sim.cluster.now).run()
    events = list(r.store.events())
    last_end = max(i for i, e in enumerate(events) if e.kind is EventKind.node_finished and e.node_id != "n0")
    tested = [(i, e.node_id) for i, e in enumerate(events) if e.kind is EventKind.node_tested]
    early = [(i, node) for i, node in tested if node != "n0" and i < last_end]
    assert early, [(e.kind.value, e.node_id) for e in events]  # a trained node scored before the last ended
    for i, node in early:  # it was the best on validation when it was scored
        ended = [e for e in events[:i] if e.kind is EventKind.node_finished and e.node_id != "n0"]
        scored = {e.node_id: e.payload["result"]["metric"] for e in ended if e.payload["result"]["metric"]}
        assert node == max(scored, key=scored.__getitem__), (node, scored)
    best = [n for n in r.tree.ranked() if n.parent is not None][0]
    assert best.test is not None  # the best on validation has its test score, early or after the search
    assert len({node for _, node in tested}) == len(tested)  # none scored twice


def test_a_stop_cancels_what_runs_and_finishes_nothing(tmp_path: Path) -> None:
    r = _researcher(tmp_path, "budget.max_nodes=8")
    orch = Orchestrator(r, _inprocess(r), FixedSlots(3), score_tests=False)
    end = orch.run(stop=lambda: orch.results >= 2)
    assert end.reason is None and end.results == 2 and not orch.running
    assert r.tree.finished_reason is None and r.running()  # as after a crash: resumed, they re-run
