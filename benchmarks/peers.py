"""The search benchmark's peers in trex's production trial loop: a ``sim.Strategy`` as Searcher + Scheduler.

A peer (random search, Tune's TPE + ASHA, Tune's PBT: ``strategies.py``) hands out ``JobSpec``s and
answers reports; ``PeerSearcher`` turns it into the two contracts of ``trex_ray/research/search.py``,
so that ``Orchestrator`` (``trex_ray/research/orchestrator.py``) runs it over the same executor as trex
(``sim_executor.SimExecutor``): *what next* (``next_trials``: the strategy's own trials, and first the
ones it asked for at a report — PBT's exploit, or its member's next chunk), *what to do with a running
trial* (``on_progress``: the strategy's ``on_report``; a replacement is a STOP and the next trial) and
*what came of it* (``on_result``: the last report, then ``on_end``). The executor's view of a trial
(``latest``: its ``Job`` and last ``Report``) is what a strategy reads. ``fresh_first``: a new trial of
the strategy's before the ones it asked for (the real-trial check's order, ``real_peers.py``).

Example::

    out = simulate(RandomSearch(space, seed=0), surrogate, slots=4, budget=3000.0)   # sim.Outcome
"""

from __future__ import annotations

from typing import Protocol

from sim import Action, Job, JobSpec, Outcome, Report, SimCluster, Strategy
from sim_executor import SimExecutor
from surrogate import SurrogateExecutor

from trex_ray.spec import Decision, FailureKind, Progress, Result, TaskSpec
from trex_ray.spec import Outcome as TrialEnd
from trex_ray.spec.trial import Trial


class JobView(Protocol):
    """What an executor shows of a peer's trial: its job and its latest report (None: it ended before
    a report the strategy may read, as a trial the budget cut)."""

    def latest(self, trial_id: str) -> tuple[Job, Report | None]: ...


class PeerSearcher:
    """A ``Strategy`` as the trial loop's ``Searcher`` and ``Scheduler`` (``view``: set by the runner)."""

    def __init__(self, strategy: Strategy, task: TaskSpec, fresh_first: bool = False) -> None:
        self.strategy, self.task, self.fresh_first = strategy, task, fresh_first
        self.view: JobView | None = None
        self.specs: dict[str, JobSpec] = {}  # trial id -> the strategy's job (the executor runs it)
        self.queue: list[JobSpec] = []  # trials the strategy asked for at a report
        self.count = 0

    # --- Searcher ---------------------------------------------------------------------------
    def next_trials(self, slots: int) -> list[Trial]:
        """Up to ``slots`` trials: those the strategy asked for at a report first (or, ``fresh_first``,
        its new ones first), then the others."""
        if slots <= 0:
            return []
        if self.fresh_first:
            specs = self.strategy.next_jobs(slots)
            k = slots - len(specs)
            specs, self.queue = specs + self.queue[:k], self.queue[k:]
        else:
            specs, self.queue = self.queue[:slots], self.queue[slots:]
            if len(specs) < slots:
                specs += self.strategy.next_jobs(slots - len(specs))
        return [self._trial(spec) for spec in specs]

    def on_result(self, trial_id: str, result: Result) -> None:
        """The trial ended at its last report: finished or diverged (the strategy reads that report, and
        may continue it), or ended early — stopped there by the strategy's own answer, cut by the budget
        (no report), or failed otherwise."""
        job, report = self._latest(trial_id)
        ran_out = result.outcome is TrialEnd.finished or result.failure is FailureKind.diverged
        if ran_out and report is not None:
            self._ask(job, report)
        self.strategy.on_end(job, report, stopped=not ran_out)
        del self.specs[trial_id]

    def stop_reason(self) -> str | None:
        return None  # a peer runs until the budget is spent or it has nothing to start

    def retry_wait(self) -> float | None:
        return None

    def finish(self, reason: str) -> None:
        pass

    # --- Scheduler ----------------------------------------------------------------------------
    def on_progress(self, trial_id: str, progress: Progress, attempt: int | None = None) -> Decision:
        job, report = self._latest(trial_id)
        assert report is not None, "PeerSearcher: a progress report the executor did not show"
        return Decision.CONTINUE if self._ask(job, report) is Action.CONTINUE else Decision.STOP

    # --- glue -----------------------------------------------------------------------------------
    def spec_of(self, trial: Trial) -> JobSpec:
        return self.specs[trial.node_id]

    def _ask(self, job: Job, report: Report) -> Action | JobSpec:
        action = self.strategy.on_report(job, report)
        if isinstance(action, JobSpec):  # this trial ends here; the strategy's next one takes its slot
            self.queue.append(action)
        return action

    def _trial(self, spec: JobSpec) -> Trial:
        trial_id = f"j{self.count}"
        self.count += 1
        self.specs[trial_id] = spec
        return Trial(node_id=trial_id, attempt=1, plan=spec.plan)

    def _latest(self, trial_id: str) -> tuple[Job, Report | None]:
        assert self.view is not None, "PeerSearcher: no executor view set"
        return self.view.latest(trial_id)


def simulate(strategy: Strategy, surrogate: SurrogateExecutor, slots: int, budget: float,
             task: TaskSpec | None = None) -> Outcome:
    """A peer on the simulated cluster through the production trial loop: best score vs compute."""
    from strategies import sentiment_task

    from trex_ray.research.orchestrator import FixedSlots, Orchestrator

    peer = PeerSearcher(strategy, task or sentiment_task(getattr(strategy, "seed", 0)))
    sim = SimExecutor(SimCluster(surrogate, budget), peer.on_progress, specs=peer.spec_of)
    peer.view = sim
    Orchestrator(peer, sim, FixedSlots(slots), score_tests=False).run(stop=lambda: sim.exhausted)
    return sim.cluster.out


