"""The peers on real trials for ``real_check.py``: trex's production trial loop, as trex's (``real_tree.py``).

``run_peer`` runs a ``sim.Strategy`` (Tune's TPE + ASHA, Tune's PBT) through ``Orchestrator`` with the
in-process executor, the strategy adapted by ``peers.PeerSearcher`` as searcher and scheduler. One slot:
trials run one after the other, a new trial first (PBT: until its population is out), then those the
strategy asked for at a report (PBT's continuations and exploits) in turn. Each trial is
``RealEngine.run_trial``; ``RealView`` shows the strategy its job and reports, built from the trial's
``Progress`` and ``Result`` (a checkpoint exists only at a trial's end: before it, PBT's ``state_at`` is
the one the trial started from). Compute is the trials' own seconds, less the validation scoring a
strategy that reads no metric would not run (PBT: ``uncharged_s``); the loop stops once it reaches the
budget, and a trial still running then is cut at its next report (the strategy sees no report of it).
The pick: the best measured validation metric (TPE + ASHA), or the lowest final validation loss of a
finished trial (PBT's ``select_by_val``).

Example::

    engine = RealEngine(budget, work, seed)
    out = run_peer(engine, tune_pbt(seed))          # a RealOutcome
    engine.score_pick(out, "tune-pbt")
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from peers import PeerSearcher
from real_check import RealEngine, RealOutcome, _last_val, log_trial, pick
from sim import JobSpec, Report, Strategy
from surrogate import State

from trex_ray.execute.context import ProgressFn
from trex_ray.spec import Decision, FailureKind, Outcome, Plan, Progress, Result, TrainMode
from trex_ray.spec.trial import Trial


@dataclass
class RealRun:
    """What a strategy reads off a real trial's run (``surrogate.Simulation``'s part it uses)."""

    plan: Plan
    start: State
    end_state: State = field(default_factory=State)

    def state_at(self, fraction: float) -> State:
        """A checkpoint exists only at a trial's end; before it, the one the trial started from."""
        return self.end_state if fraction >= 1.0 and self.end_state.key != "base" else self.start


@dataclass
class RealJob:
    """A real trial as a strategy sees it (``sim.Job``'s part it uses)."""

    spec: JobSpec
    sim: RealRun
    started: float  # compute spent when it started
    id: int
    index: int = 0
    elapsed: float = 0.0  # compute-seconds charged
    reports: list[Report] = field(default_factory=list)

    def time_of(self, k: int) -> float:
        return self.started + self.elapsed

    def report(self, k: int) -> Report:
        return self.reports[k]


class RealView:
    """``peers.JobView`` over real trials: each trial's job and latest report (None once the budget cut
    it, or before its first report)."""

    def __init__(self) -> None:
        self.jobs: dict[str, RealJob] = {}
        self.cut: set[str] = set()

    def latest(self, trial_id: str) -> tuple[RealJob, Report | None]:
        job = self.jobs[trial_id]
        cut = trial_id in self.cut or not job.reports
        return job, None if cut else job.reports[-1]

    def add(self, job: RealJob, report: Report) -> None:
        job.reports.append(report)
        job.index = len(job.reports) - 1


def run_peer(engine: RealEngine, strategy: Strategy) -> RealOutcome:
    from trex_ray.execute.inprocess import InProcessExecutor
    from trex_ray.research.orchestrator import FixedSlots, Orchestrator

    out, view = RealOutcome(), RealView()
    peer = PeerSearcher(strategy, engine.task, fresh_first=True)
    peer.view = view
    best = {"metric": -math.inf, "val_loss": math.inf}

    def run(trial: Trial, progress: ProgressFn) -> Result:
        spec = peer.spec_of(trial)
        job = view.jobs[trial.node_id] = RealJob(spec, RealRun(spec.plan, spec.parent or State()),
                                                 out.compute, out.trials)
        out.trials += 1
        spent, t0 = out.compute, time.perf_counter()

        def report(p: Progress) -> Decision:
            if spent + time.perf_counter() - t0 >= engine.budget:
                view.cut.add(trial.node_id)  # the budget ran out during this trial
                return Decision.STOP
            val = p.val_loss if p.val_loss is not None else math.nan
            epochs = spec.plan.train.epochs
            view.add(job, Report(p.fraction, epochs * p.fraction, val, p.train_loss, None, final=False,
                                 diverged=False))
            return progress(p)

        parent = spec.parent.key if spec.parent is not None and spec.parent.key != "base" else None
        result = engine.run_trial(strategy.name, str(job.id), spec.plan, report, parent,
                                  spec.plan.train.mode is TrainMode.lora)
        uncharged = engine.uncharged(result, bool(spec.evaluate_at))
        job.elapsed = result.cost.compute_seconds - uncharged
        out.compute += job.elapsed
        _ended(view, out, job, result, best)
        log_trial(out, strategy.name, str(spec.tag), spec.plan, result, uncharged, spec.parent is not None)
        return result

    executor = InProcessExecutor(run, progress=peer.on_progress, seed=None)
    Orchestrator(peer, executor, FixedSlots(1), score_tests=False).run(
        stop=lambda: out.compute >= engine.budget
    )
    return out


def _ended(view: RealView, out: RealOutcome, job: RealJob, result: Result, best: dict[str, float]) -> None:
    """What the trial's end shows the strategy — its checkpoint and, had it run out (finished or
    diverged), its final report — and the pick it may become."""
    spec = job.spec
    ok = result.outcome is Outcome.finished
    diverged = result.failure is FailureKind.diverged
    if ok and spec.plan.train.mode is not TrainMode.none:
        job.sim.end_state = State(key=result.checkpoint or "base")
    if not (ok or diverged):
        out.stopped += 1  # stopped by the strategy, cut by the budget, or failed
        return
    metric = result.metric if ok and spec.evaluate_at else None
    final = Report(1.0, spec.plan.train.epochs, _last_val(result), math.nan, metric, final=True,
                   diverged=diverged)
    view.add(job, final)
    if metric is not None and metric > best["metric"]:
        best["metric"] = metric
        out.observed.append((out.compute, metric))
        pick(out, spec.plan, result, metric=metric)
    if spec.select_by_val and ok and math.isfinite(final.val_loss) and final.val_loss < best["val_loss"]:
        best["val_loss"] = final.val_loss
        pick(out, spec.plan, result, val_loss=final.val_loss)
