"""An event-driven simulated cluster: ``slots`` trials at once, a simulated clock, one compute budget.

Every strategy runs here on the same surrogate executor, through trex's production trial loop
(``Orchestrator`` over ``sim_executor.SimExecutor``; a peer ``Strategy`` through ``peers.PeerSearcher``).
A trial is a ``JobSpec`` run as a surrogate ``Simulation`` whose reports arrive at simulated times
(start-up, training to each report fraction, evaluations); everything stops when the compute used
(busy slots x time) reaches the budget. Every measured metric is a point of the best-score-vs-compute
curve.

Example::

    out = peers.simulate(RandomSearch(space, seed=0), surrogate, slots=4, budget=3000.0)
    out.curve                                            # [(compute_seconds, best test score), ...]
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from surrogate import Simulation, State, SurrogateExecutor

from trex_ray.spec import Plan


class Action(str, Enum):
    CONTINUE = "continue"
    STOP = "stop"


@dataclass
class JobSpec:
    tag: Any  # the strategy's own handle (node id, trial id)
    plan: Plan
    parent: State | None = None
    fractions: tuple[float, ...] = (1.0,)
    evaluate_at: tuple[float, ...] = (1.0,)  # fractions where the metric is measured (costs eval_s)
    same_run: bool = False  # continues the parent's run (PBT between perturbations): keeps its noise
    pays_start: bool = True
    # the strategy picks its model by validation loss and evaluates nothing (PBT): the checkpoint with the
    # lowest validation loss reported so far is its pick, scored without charge
    select_by_val: bool = False


@dataclass
class Report:
    fraction: float
    epochs: float
    val_loss: float
    train_loss: float
    metric: float | None  # measured here (evaluate_at), else None
    final: bool
    diverged: bool


@dataclass
class Job:
    spec: JobSpec
    sim: Simulation
    started: float
    index: int = 0
    evals: int = 0
    id: int = 0

    def time_of(self, k: int) -> float:
        f = self.spec.fractions[k]
        evals = sum(1 for g in self.spec.evaluate_at if g <= f + 1e-9)
        start = self.sim.costs.start_s if self.spec.pays_start else 0.0
        return self.started + start + self.sim.train_seconds(f) + evals * self.sim.costs.eval_s

    def report(self, k: int) -> Report:
        f = self.spec.fractions[k]
        point = min(self.sim.points, key=lambda p: abs(p.fraction - f)) if self.sim.points else None
        diverged = self.sim.diverged_at is not None and f >= self.sim.diverged_at
        measured = any(abs(g - f) < 1e-9 for g in self.spec.evaluate_at) and not diverged
        return Report(
            f,
            self.sim.epochs * f,
            point.val_loss if point else math.nan,
            point.train_loss if point else math.nan,
            self.sim.metric_at(f) if measured else None,
            final=diverged or k == len(self.spec.fractions) - 1,
            diverged=diverged,
        )


class Strategy(Protocol):
    name: str

    def next_jobs(self, free: int) -> list[JobSpec]:
        """Up to ``free`` trials to start now ([] when it has nothing to start)."""
        ...

    def on_report(self, job: Job, report: Report) -> Action | JobSpec:
        """A report of a running trial: go on, stop it, or replace it by another (PBT's exploit)."""
        ...

    def on_end(self, job: Job, last: Report | None, stopped: bool) -> None:
        """The trial ended: finished (last.final), stopped by the strategy, or cut by the budget."""
        ...


@dataclass
class Outcome:
    """``curve``: (compute, test score of the selected model) each time the selection changes: the model
    with the best *measured* metric so far is selected (the lowest validation loss for ``select_by_val``
    jobs), and scored by its noise-free metric (a test set's view); ``observed``: (compute, best measured
    metric)."""

    curve: list[tuple[float, float]] = field(default_factory=list)
    observed: list[tuple[float, float]] = field(default_factory=list)
    trials: int = 0
    stopped: int = 0
    compute: float = 0.0
    sim_time: float = 0.0
    best_metric: float = -math.inf
    best_val: float = math.inf  # the lowest validation loss reported (select_by_val jobs)
    best_true: float | None = None  # the noise-free metric of the selected model


class SimCluster:
    """The simulated clock: trials started at ``now``, their reports as events in time order, compute as
    busy trials x time, and the cut when it reaches ``budget`` (every trial still running ends unreported).
    ``sim_executor.SimExecutor`` puts it behind the executor contract of trex's trial loop."""

    def __init__(self, executor: SurrogateExecutor, budget: float) -> None:
        self.executor, self.budget = executor, budget
        self.out = Outcome()
        self.heap: list[tuple[float, int, Job]] = []
        self.now, self.seq, self.running = 0.0, 0, 0
        self.cut: list[Job] | None = None  # the trials the budget cut, once it has run out

    def start(self, spec: JobSpec) -> Job:
        sim = self.executor.simulate(spec.plan, spec.parent, spec.fractions, same_run=spec.same_run)
        job = Job(spec, sim, started=self.now, id=self.seq)
        self.seq += 1
        self.running += 1
        self.out.trials += 1
        heapq.heappush(self.heap, (job.time_of(0), job.id, job))
        return job

    def next_report(self) -> tuple[Job, Report] | None:
        """The next report of a running trial (recorded on the curve), or None: no trial is running, or
        the budget ran out before the next report (``cut`` then lists the trials it cut)."""
        if not self.heap:
            return None
        t, _, job = heapq.heappop(self.heap)
        out = self.out
        used = out.compute + (t - self.now) * self.running
        if used >= self.budget:  # the budget runs out before this event: cut every running trial
            self.now += (self.budget - out.compute) / self.running
            out.compute = self.budget
            self.cut = [job, *(cut for _, _, cut in self.heap)]
            self.heap.clear()
            out.sim_time = self.now
            return None
        out.compute, self.now = used, t
        out.sim_time = self.now
        report = job.report(job.index)
        _record(out, report, job)
        return job, report

    def go_on(self, job: Job) -> None:
        """The trial runs on to its next report."""
        job.index += 1
        heapq.heappush(self.heap, (job.time_of(job.index), job.id, job))

    def end(self, job: Job, stopped: bool) -> None:
        """The trial ended at its last report: finished, or stopped there (``stopped``)."""
        self.running -= 1
        self.out.stopped += stopped

    def cancel(self, job: Job) -> None:
        """End a trial between reports (nothing reported); a no-op for one the budget cut."""
        if any(queued is job for _, _, queued in self.heap):
            self.heap = [entry for entry in self.heap if entry[2] is not job]
            heapq.heapify(self.heap)
            self.running -= 1

def _record(out: Outcome, report: Report, job: Job) -> None:
    if job.spec.select_by_val:
        if report.diverged or not math.isfinite(report.val_loss) or report.val_loss >= out.best_val:
            return
        out.best_val = report.val_loss
    else:
        if report.metric is None or report.metric <= out.best_metric:
            return
        out.best_metric = report.metric
        out.observed.append((out.compute, report.metric))
    out.best_true = job.sim.true_metric_at(report.fraction)
    out.curve.append((out.compute, out.best_true))


def best_at(curve: list[tuple[float, float]], compute: float) -> float | None:
    """The curve's value with at most ``compute`` spent (the selected model's score)."""
    best = None
    for c, m in curve:
        if c <= compute:
            best = m
    return best


def compute_to(curve: list[tuple[float, float]], target: float) -> float:
    """Compute spent when the curve first reached ``target`` (inf if never)."""
    for c, m in curve:
        if m >= target - 1e-12:
            return c
    return math.inf
