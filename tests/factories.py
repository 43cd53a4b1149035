"""Test helpers: tiny tasks, plans, results, hand-built trees, and ``drive``: a search run by the
production trial loop (``research/orchestrator.py``) with the in-process executor over a synthetic trial.

Pure: nothing here imports ray or torch. The synthetic trial is a deterministic function
``plan -> Result`` whose metric peaks near lr 2e-3, gains 0.05 from ``label_noise_filter`` and
diverges at lr >= ``diverge_lr``, so a search over it has a known shape.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from trex_ray.spec import (
    Cost,
    DataOp,
    DataRecipe,
    Decision,
    FailureKind,
    Outcome,
    Plan,
    Progress,
    Result,
    TaskSpec,
    TrainMode,
    TrainRecipe,
    load_task,
)
from trex_ray.spec.trial import Trial
from trex_ray.tree import Event, EventKind, Node, SearchTree

BASE_METRIC = 0.30  # the untrained base model
FRACTIONS = (0.25, 0.5, 0.75, 1.0)

TASK_YAML = """\
name: tiny-sentiment
description: Classify the sentiment of a short review.
model: {id: "builtin:tiny-llama"}
data:
  train: [{id: "builtin:sentiment", split: train}]
  eval: {id: "builtin:sentiment", split: eval}
metric: {name: accuracy}
budget: {max_nodes: 8}
"""


# --- tasks -------------------------------------------------------------------------------
def task_dict(**sections: Any) -> dict[str, Any]:
    """A tiny valid task as a dict; keyword arguments replace (or add) top-level sections."""
    d: dict[str, Any] = {
        "name": "tiny-sentiment",
        "description": "Classify the sentiment of a short review.",
        "model": {"id": "builtin:tiny-llama"},
        "data": {
            "train": [{"id": "builtin:sentiment", "split": "train"}],
            "eval": {"id": "builtin:sentiment", "split": "eval"},
        },
        "metric": {"name": "accuracy"},
        "budget": {"max_nodes": 8},
    }
    d.update(copy.deepcopy(sections))
    return d


def counted(tree: SearchTree) -> int:
    """The nodes that count against ``max_nodes``, plus the root: all but the trials stopped early."""
    return sum(1 for n in tree if n.status.value != "stopped")


def make_task(overrides: Iterable[str] = (), **sections: Any) -> TaskSpec:
    return load_task(task_dict(**sections), list(overrides))


# --- plans -------------------------------------------------------------------------------
def make_plan(
    lr: float = 2e-3,
    *,
    mode: TrainMode | str = TrainMode.full,
    ops: Iterable[str] = (),
    seed: int = 0,
    rationale: str = "",
    **train: Any,
) -> Plan:
    return Plan(
        data=DataRecipe(ops=[DataOp(op=o) for o in ops]),
        train=TrainRecipe(mode=TrainMode(mode), learning_rate=lr, **train),
        seed=seed,
        rationale=rationale,
    )


# --- results -----------------------------------------------------------------------------
def curve(val_losses: Iterable[float], fractions: Iterable[float] = FRACTIONS) -> list[Progress]:
    return [
        Progress(fraction=f, step=int(100 * f), train_loss=v * 0.9, val_loss=v)
        for f, v in zip(fractions, val_losses, strict=False)
    ]


def finished(
    metric: float, val_losses: Iterable[float] = (1.6, 1.2, 1.0, 0.99), compute: float = 10.0
) -> Result:
    return Result(
        outcome=Outcome.finished,
        metric=metric,
        metrics={"accuracy": metric},
        curve=curve(val_losses),
        checkpoint="ckpt/x",
        cost=Cost(wall_seconds=compute, compute_seconds=compute, train_steps=100, train_tokens=6400),
    )


def diverged(at_fraction: float = 0.5, compute: float = 5.0) -> Result:
    """A failed, diverged run: its curve ends in NaN losses (as a real one does)."""
    nan = float("nan")
    return Result(
        outcome=Outcome.failed,
        failure=FailureKind.diverged,
        error=f"loss became NaN at {at_fraction:.0%} of training",
        curve=[
            Progress(fraction=0.25, step=25, train_loss=2.5, val_loss=2.6),
            Progress(fraction=at_fraction, step=int(100 * at_fraction), train_loss=nan, val_loss=nan),
        ],
        cost=Cost(wall_seconds=compute, compute_seconds=compute, train_steps=int(100 * at_fraction)),
    )


def lost(compute: float = 5.0) -> Result:
    """A failed run whose worker died: not a candidate for repair."""
    return Result(outcome=Outcome.failed, failure=FailureKind.lost, error="the node's worker died",
                  cost=Cost(wall_seconds=compute, compute_seconds=compute))


def stopped(val_losses: Iterable[float] = (1.6, 1.4), compute: float = 5.0) -> Result:
    losses = list(val_losses)
    return Result(
        outcome=Outcome.stopped,
        curve=curve(losses),
        cost=Cost(wall_seconds=compute, compute_seconds=compute, train_steps=25 * len(losses)),
    )


# --- hand-built trees --------------------------------------------------------------------
class TreeBuilder:
    """Builds a SearchTree through events only, the way the Researcher and a replay do."""

    def __init__(self) -> None:
        self.tree = SearchTree()
        self.events: list[Event] = []

    def emit(self, kind: EventKind, node_id: str | None = None, **payload: Any) -> Node | None:
        event = Event(kind=kind, node_id=node_id, payload=payload, seq=len(self.events))
        self.events.append(event)
        return self.tree.apply(event)

    def add(self, parent: str | None = None, plan: Plan | None = None, node_id: str | None = None) -> str:
        node_id = node_id or self.tree.next_id()
        plan = plan or make_plan(lr=1e-3 * (1 + len(self.tree)))  # distinct by default
        self.emit(EventKind.node_added, node_id, parent=parent, plan=plan.model_dump(mode="json"))
        return node_id

    def start(self, node_id: str) -> str:
        self.emit(EventKind.node_started, node_id, attempt=self.tree.get(node_id).attempts + 1)
        return node_id

    def finish(self, node_id: str, result: Result | float) -> str:
        result = finished(result) if isinstance(result, (int, float)) else result
        self.start(node_id)
        self.emit(EventKind.node_finished, node_id, result=result.model_dump(mode="json"))
        return node_id

    def child(self, parent: str, result: Result | float | None = None, plan: Plan | None = None) -> str:
        """Add a child of ``parent``; finish it with ``result`` (a metric or a Result) if given."""
        node_id = self.add(parent, plan)
        if result is not None:
            self.finish(node_id, result)
        return node_id

    def root(self, metric: float | None = BASE_METRIC) -> str:
        node_id = self.add(None, make_plan(mode=TrainMode.none), node_id="n0")
        if metric is not None:
            self.finish(node_id, metric)
        return node_id


# --- the synthetic executor --------------------------------------------------------------
def synthetic_metric(plan: Plan) -> float:
    t = plan.train
    if t.mode is TrainMode.none:
        return BASE_METRIC
    x = math.log10(t.learning_rate / 2e-3)
    m = 0.80 - 0.10 * x * x
    m += 0.05 if plan.data.has("label_noise_filter") else 0.0
    m += 0.01 if plan.data.has("dedup") else 0.0
    m -= 0.03 if t.mode is TrainMode.lora else 0.0
    m += 0.01 if t.warm_start else 0.0
    m += 0.01 if plan.data.template == "instruct" else 0.0
    m += 0.005 if t.weight_decay > 0 else 0.0
    return round(max(0.0, min(1.0, m)), 4)


def synthetic_result(plan: Plan, diverge_lr: float = 1e-2) -> Result:
    """What 'training' this plan gives: deterministic, pure, shaped like a real result."""
    t = plan.train
    if t.mode is not TrainMode.none and t.learning_rate >= diverge_lr:
        return diverged(compute=5.0 * t.epochs)
    metric = synthetic_metric(plan)
    base = 1.5 - metric  # lower loss for better plans
    if t.epochs < 1.5:
        shape = (1.6, 1.3, 1.1, 1.0)  # still falling: under-fit
    elif t.epochs >= 3:
        shape = (1.3, 1.0, 1.05, 1.1)  # rose after its minimum: over-fit
    else:
        shape = (1.6, 1.2, 1.0, 0.99)  # converged
    compute = 1.0 if t.mode is TrainMode.none else 10.0 * t.epochs
    result = finished(metric, [base * s for s in shape], compute=compute)
    return result.model_copy(update={"checkpoint": f"ckpt/{plan.hash}"})


Executor = Callable[[Plan], Result]


@dataclass
class DriveLog:
    reason: str | None  # why the search stopped; None when drive() was told to stop early
    running: list[str] = field(default_factory=list)  # nodes still running when drive() returned
    results: int = 0
    early_stops: int = 0
    dispatched: list[str] = field(default_factory=list)


def run_with_progress(progress: Callable[[Progress], Decision], result: Result) -> tuple[Result, bool]:
    """Report the result's curve point by point; a STOP turns it into a stopped result."""
    for i, p in enumerate(result.curve):
        if progress(p) is Decision.STOP:
            part = result.curve[: i + 1]
            cost = result.cost.model_copy(
                update={"compute_seconds": result.cost.compute_seconds * p.fraction}
            )
            return Result(outcome=Outcome.stopped, curve=part, cost=cost), True
    return result, False


def drive(
    researcher: Any,
    executor: Executor = synthetic_result,
    slots: int = 3,
    seed: int = 0,
    max_results: int | None = None,
    report_progress: bool = True,
    max_steps: int = 1000,
    running: Iterable[str] = (),
    run_trial: Callable[[Trial], Result] | None = None,
) -> DriveLog:
    """Run a Researcher through the production trial loop (``research/orchestrator.py``) with the
    in-process executor over the synthetic ``executor`` and ``slots`` trial slots.

    The in-process executor ends one waiting trial per poll, drawn at random (seeded), so results
    arrive out of dispatch order, as they do on a cluster. ``running``: nodes the caller started
    already (they get results like the others). ``max_results``: stop (as a crash would) after that
    many results, leaving the rest running. No test-split scoring (the synthetic executor has none).
    ``run_trial``: a trial's result from the whole trial (its node id too) instead of ``executor(plan)``.
    """
    from trex_ray.execute.inprocess import InProcessExecutor
    from trex_ray.research.orchestrator import FixedSlots, Orchestrator
    from trex_ray.research.search import trial_of

    log = DriveLog(reason=None)

    def run(trial: Trial, progress: Callable[[Progress], Decision]) -> Result:
        result = run_trial(trial) if run_trial is not None else executor(trial.plan)
        if report_progress:
            result, was_stopped = run_with_progress(progress, result)
            log.early_stops += was_stopped
        return result

    inproc = InProcessExecutor(run, progress=researcher.on_progress, seed=seed)
    orch = Orchestrator(researcher, inproc, FixedSlots(slots), score_tests=False, sleep=_no_sleep)
    submit = orch.submit

    def submitted(trial: Trial) -> None:
        log.dispatched.append(trial.node_id)
        submit(trial)
        assert orch.slots_held() <= slots, f"more than {slots} trials hold a slot"

    orch.submit = submitted  # type: ignore[method-assign]
    for node_id in running:
        submit(trial_of(researcher.tree, researcher.tree.get(node_id)))
    steps = iter(range(max_steps))

    def stop() -> bool:
        if max_results is not None and orch.results >= max_results:
            log.running = [job.node_id for job in orch.running.values()]
            return True
        if next(steps, None) is None:
            raise AssertionError(f"the search did not finish in {max_steps} steps")
        return False

    end = orch.run(stop=stop)
    assert end.reason is None or end.from_researcher, (
        "nothing running and nothing to start, but no stop reason: a driver would spin"
    )
    log.reason, log.results = end.reason, end.results
    return log


def _no_sleep(seconds: float) -> None:
    raise AssertionError("the loop waited for a slot or a retry: the synthetic search never should")
