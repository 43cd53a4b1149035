"""trex's trials on the simulated cluster: the executor contract (``trex_ray/spec/trial.py``) on its clock.

The search benchmark runs trex through its production trial loop (``trex_ray/research/orchestrator.py``):
the orchestrator submits each node's ``Trial``; this executor runs it as a surrogate ``Simulation`` on
the simulated clock, delivers its reports to the Researcher's ``on_progress`` (a STOP ends it there)
and returns its ``Result`` at the end. When the compute budget runs out, ``exhausted`` says so and the
loop stops, cancelling what still runs (those trials end unreported).

Example::

    sim = SimExecutor(SimCluster(surrogate, budget), progress=researcher.on_progress)
    Orchestrator(researcher, sim, FixedSlots(4), score_tests=False).run(stop=lambda: sim.exhausted)
    sim.cluster.out          # the best-score-vs-compute curve
"""

from __future__ import annotations

import math
from collections.abc import Callable

from sim import Job, JobSpec, Report, SimCluster
from surrogate import Simulation, State

from trex_ray.spec import Cost, Decision, FailureKind, Outcome, Plan, Progress, Result, TrainMode
from trex_ray.spec.trial import Trial, TrialKind, TrialOutcome

ProgressSink = Callable[[str, Progress, "int | None"], Decision]


class SimExecutor:
    def __init__(self, cluster: SimCluster, progress: ProgressSink,
                 states: dict[str, State] | None = None,
                 specs: Callable[[Trial], JobSpec] | None = None) -> None:
        self.cluster, self.progress = cluster, progress
        self.specs = specs  # a trial's simulated job, when another searcher than trex's wrote it (peers.py)
        self.seen: dict[str, tuple[Job, Report]] = {}  # trial -> its job and latest report (``latest``)
        self.states = states if states is not None else {}  # node -> its checkpoint's state (warm starts)
        self.jobs: dict[int, tuple[Trial, Job]] = {}
        self.ended: dict[str, Simulation] = {}  # node -> its finished trial (what a test scoring scores)
        self.tests: dict[int, Trial] = {}  # test scorings: free and instant, returned at the next poll

    @property
    def exhausted(self) -> bool:
        return self.cluster.cut is not None

    def submit(self, trial: Trial) -> int:
        if trial.kind is TrialKind.test:
            handle, self.cluster.seq = self.cluster.seq, self.cluster.seq + 1  # job ids and test ids apart
            self.tests[handle] = trial
            return handle
        spec = self.specs(trial) if self.specs else job_spec(trial.node_id, trial.plan, trial.parent_id,
                                                             self.states)
        job = self.cluster.start(spec)
        self.jobs[job.id] = (trial, job)
        return job.id

    def poll(self, timeout: float) -> list[tuple[int, TrialOutcome]]:
        """Advance the clock to the next report; the trial's outcome if it ended there. A test scoring
        takes no time: the noise-free metric of the node's checkpoint (a large test set's view)."""
        if self.tests:
            handle, trial = self.tests.popitem()
            sim = self.ended.get(trial.node_id) or self.cluster.executor.simulate(trial.plan)
            scores = {"test_metric": sim.true_metric_at(1.0), "test_metrics": {}}
            return [(handle, TrialOutcome(scores=scores))]
        event = self.cluster.next_report()
        if event is None:
            return []
        job, report = event
        trial, _ = self.jobs[job.id]
        self.seen[trial.node_id] = (job, report)
        stop = False
        if not report.final and trial.plan.train.mode is not TrainMode.none:
            stop = self.progress(trial.node_id, progress_of(report, job), trial.attempt) is Decision.STOP
        if not (report.final or stop):
            self.cluster.go_on(job)
            return []
        self.cluster.end(job, stopped=stop)
        del self.jobs[job.id]
        result = result_of(job, report, stopped=stop)
        if result.outcome is Outcome.finished:
            self.states[trial.node_id] = job.sim.end_state
            self.ended[trial.node_id] = job.sim
        return [(job.id, TrialOutcome(result=result))]

    def latest(self, trial_id: str) -> tuple[Job, Report]:
        """A trial's job and its latest report (what a peer strategy reads: ``peers.PeerSearcher``)."""
        return self.seen[trial_id]

    def cancel(self, handle: object) -> None:
        self.tests.pop(handle, None)  # type: ignore[call-overload]
        entry = self.jobs.pop(handle, None)  # type: ignore[call-overload]
        if entry is not None:
            self.cluster.cancel(entry[1])

    def close(self) -> None:
        self.jobs.clear()
        self.tests.clear()


def job_spec(node_id: str, plan: Plan, parent_id: str | None, states: dict[str, State]) -> JobSpec:
    """A node's plan as a simulated trial: reports every ``eval_every_fraction``; a warm start goes on
    from its parent's simulated checkpoint."""
    parent = states.get(parent_id) if parent_id and plan.train.warm_start else None
    every = plan.train.eval_every_fraction
    fractions = tuple(min(1.0, k * every) for k in range(1, math.ceil(1 / every - 1e-9) + 1))
    return JobSpec(tag=node_id, plan=plan, parent=parent,
                   fractions=fractions if plan.train.mode is not TrainMode.none else (1.0,))


def progress_of(report: Report, job: Job) -> Progress:
    val = report.val_loss if math.isfinite(report.val_loss) else None
    return Progress(
        fraction=report.fraction,
        step=max(1, int(100 * report.epochs)),
        train_loss=report.train_loss if math.isfinite(report.train_loss) else 1e30,
        val_loss=val,
    )


def result_of(job: Job, last: Report, stopped: bool) -> Result:
    """The Result of a simulated trial that ended at its report ``last``: diverged, stopped or finished."""
    k = job.index
    cost = job.time_of(k) - job.started
    curve = [progress_of(job.report(i), job) for i in range(k + 1) if not job.report(i).diverged]
    result_cost = Cost(wall_seconds=cost, compute_seconds=cost, train_steps=int(100 * last.epochs))
    if last.diverged:
        return Result(outcome=Outcome.failed, failure=FailureKind.diverged, curve=curve, cost=result_cost,
                      error="loss diverged")
    if stopped:
        return Result(outcome=Outcome.stopped, curve=curve, cost=result_cost)
    return Result(outcome=Outcome.finished, metric=last.metric, metrics={"accuracy": last.metric or 0.0},
                  curve=curve, cost=result_cost, checkpoint=f"sim:{job.spec.tag}")
