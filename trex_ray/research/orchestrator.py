"""The trial loop: one pure object that owns every trial's lifecycle, whatever runs the trials.

``Orchestrator.run`` asks a searcher (``research/search.py``: what to try next — the ``Researcher``'s
tree search through ``TreeSearcher``, or a benchmark peer) for trials as trial slots free up,
submits each to an executor (``spec/trial.py``: in-process ``execute/inprocess.py``, simulated
``benchmarks/sim_executor.py``, Ray ``runtime/ray_executor.py``), polls for endings, kills a trial
that runs past ``budget.trial_timeout_seconds``, turns every ending into the ``Result`` the searcher
records (it alone classifies failures: ``timeout``, ``lost``, ``error``; ``diverged`` comes from the
trial's own result), and lets the searcher retry. What a running trial's reports decide (go on,
stop) is the scheduler's, asked by the executor. An evaluation-only node (the base model) takes no
trial slot. The base model is scored on the test split in a slot the search leaves idle; after the
search, the best nodes on validation are, as many at once as there are slots. No Ray, no torch.

Example::

    orch = Orchestrator(researcher, InProcessExecutor(runner, progress=researcher.on_progress), FixedSlots(2))
    end = orch.run()          # RunEnd(reason="node budget spent (...)", peak_running=2)
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from trex_ray.research.researcher import Researcher
from trex_ray.research.search import Observer, Searcher, TreeSearcher
from trex_ray.spec import Cost, FailureKind, Outcome, Plan, Resources, Result, TrainMode
from trex_ray.spec.trial import Executor, Fault, Handle, Trial, TrialKind, TrialOutcome

log = logging.getLogger(__name__)

POLL_S = 1.0  # how long one poll waits for an ending; how long the loop waits for a slot or a retry
NOTHING_LEFT = "nothing left to try"


class Slots(Protocol):
    """Trial slots: the run's own, or shared with other runs (``runtime/pool.py``)."""

    shared: bool  # other runs' trials share the machines (a bench sweep)

    def capacity(self) -> int: ...  # trials this run may hold at once

    def acquire(self, want: int, holding: int) -> int: ...  # slots granted now (0..want)

    def release(self, n: int) -> None: ...

    def leave(self) -> None: ...


@dataclass
class FixedSlots:
    """``n`` slots of this run's own."""

    n: int
    shared: bool = False

    def capacity(self) -> int:
        return self.n

    def acquire(self, want: int, holding: int) -> int:
        return max(0, want)

    def release(self, n: int) -> None:
        pass

    def leave(self) -> None:
        pass


@dataclass
class RunEnd:
    reason: str | None  # why the search ended; None when ``stop`` ended the loop first
    peak_running: int = 0
    results: int = 0
    from_researcher: bool = True  # the reason is the searcher's stop reason (else NOTHING_LEFT or None)


@dataclass
class _Running:
    node_id: str
    holds_slot: bool  # it trains; a node that only evaluates (the base model) takes no trial slot
    started: float
    kind: TrialKind = TrialKind.train


@dataclass
class Orchestrator:
    searcher: Searcher | Researcher  # a Researcher is run as a ``TreeSearcher`` (with ``observer``)
    executor: Executor
    slots: Slots
    observer: Observer | None = None
    score_tests: bool = True  # score the base and the best nodes on the test split (a TreeSearcher's)
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    running: dict[Handle, _Running] = field(default_factory=dict)
    peak_running: int = 0
    results: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.searcher, Researcher):
            self.searcher = TreeSearcher(self.searcher, self.observer)
        elif self.observer is not None:
            raise ValueError("Orchestrator: observer= is for a Researcher; give it to the TreeSearcher")
        if self.score_tests and not isinstance(self.searcher, TreeSearcher):
            raise ValueError("Orchestrator: score_tests needs a TreeSearcher; pass score_tests=False")

    @property
    def search(self) -> Searcher:
        assert not isinstance(self.searcher, Researcher)  # wrapped in __post_init__
        return self.searcher

    @property
    def tests(self) -> TreeSearcher:
        assert isinstance(self.searcher, TreeSearcher)
        return self.searcher

    # --- the loop -----------------------------------------------------------------------
    def run(self, stop: Callable[[], bool] | None = None) -> RunEnd:
        """Run the search to its end. ``stop``: asked before each step; when it says so, every trial in
        flight is cancelled, nothing more is recorded and the run is not finished (``reason`` None)."""
        while True:
            if stop is not None and stop():
                for handle in list(self.running):
                    self.executor.cancel(handle)
                    self.running.pop(handle)
                return RunEnd(None, self.peak_running, self.results, from_researcher=False)
            if not self.step():
                break
        return self.finish()

    def step(self) -> bool:
        """Top the slots up, then wait for one poll's endings. False: nothing runs and nothing will."""
        capacity = self.slots.capacity()
        want = capacity - self.slots_held()
        free = self.slots.acquire(want, self.slots_held())
        trials = self.search.next_trials(free)
        trains = sum(_trains(trial.plan) for trial in trials)
        self.slots.release(free - trains)
        for trial in trials:
            self.submit(trial)
        self.peak_running = max(self.peak_running, self._trials())
        if trains < len(trials):
            return True  # an evaluation-only node left its slot free: fill it now
        if self.score_tests and self.slots_held() < capacity:
            self._test_early()  # a slot the search cannot fill now: a test score in it
        if not self._trials():  # (a test scoring in flight is collected at the end)
            waiting = free < want or self.search.retry_wait() is not None
            if waiting and self.search.stop_reason() is None:
                self.sleep(POLL_S)  # work left, but no slot is ours yet, or a retry waits its delay
                return True
            return False
        self._collect_ready(POLL_S)
        self.enforce_timeouts()
        return True

    def finish(self) -> RunEnd:
        stop_reason = self.search.stop_reason()
        reason = stop_reason or NOTHING_LEFT
        if self.score_tests:
            self._score_tests()
        self.search.finish(reason)
        self.executor.close()
        self.slots.leave()
        return RunEnd(reason, self.peak_running, self.results, from_researcher=stop_reason is not None)

    def submit(self, trial: Trial) -> None:
        """Hand a started trial to the executor."""
        handle = self.executor.submit(trial)
        self.running[handle] = _Running(trial.node_id, _trains(trial.plan), self.clock())
        log.info("%s started (parent %s): %s", trial.node_id, trial.parent_id, trial.plan.rationale)

    def slots_held(self) -> int:
        return sum(r.holds_slot for r in self.running.values())

    def _trials(self) -> int:
        return sum(r.kind is TrialKind.train for r in self.running.values())

    # --- endings ------------------------------------------------------------------------
    def _collect_ready(self, timeout: float) -> None:
        for handle, outcome in self.executor.poll(timeout):
            job = self.running.pop(handle, None)
            if job is None:
                continue  # cancelled meanwhile
            if job.kind is TrialKind.test:
                self._tested(job.node_id, _scores(outcome))
            else:
                self._record(job, self.classify(job, outcome))

    def classify(self, job: _Running, outcome: TrialOutcome) -> Result:
        """The Result to record for a trial's ending: the only place a failure gets its kind."""
        held = _held(self.search.task.resources)
        if outcome.fault is Fault.died:
            return self._failed(FailureKind.lost, outcome.message, job, held)
        if outcome.fault is Fault.raised:
            return self._failed(FailureKind.error, outcome.message, job)
        result = outcome.result
        assert result is not None
        if result.metric is not None and not math.isfinite(result.metric):  # NaN or inf: no score
            result = result.model_copy(update={"metric": None})
        if result.failure is FailureKind.error and outcome.lost:  # a worker, a machine or the evaluator died
            result = result.model_copy(update={"failure": FailureKind.lost,
                                               "error": f"{outcome.lost} ({result.error})"})
        return result

    def enforce_timeouts(self) -> None:
        limit = self.search.task.budget.trial_timeout_seconds
        for handle, job in list(self.running.items()):
            if self.clock() - job.started <= limit:
                continue
            log.warning("%s ran past %.0f s: killed", job.node_id, limit)
            self.executor.cancel(handle)
            self.running.pop(handle)
            if job.kind is TrialKind.test:
                self._tested(job.node_id, {"error": f"timeout: ran past {limit:.0f} s"})
            else:
                held = _held(self.search.task.resources)
                self._record(job, self._failed(FailureKind.timeout, f"ran past {limit:.0f} s", job, held))

    def _record(self, job: _Running, result: Result) -> None:
        self.slots.release(int(job.holds_slot))
        self.search.on_result(job.node_id, result)
        self.results += 1
        log.info("%s %s metric=%s", job.node_id, result.outcome.value, result.metric)

    def _failed(self, kind: FailureKind, message: str, job: _Running, held: float = 0.0) -> Result:
        """A result for a trial that returned none; ``held``: the resources it held."""
        wall = self.clock() - job.started
        return Result(outcome=Outcome.failed, failure=kind, error=message,
                      cost=Cost(wall_seconds=wall, compute_seconds=wall * held))

    # --- the test split -----------------------------------------------------------------
    def _test_early(self) -> None:
        """Test scores that do not depend on what the search does next (the base model's; in the last
        stretch the best so far): one at a time, in a slot that the search leaves idle, rather than at
        the end (the search never reads them)."""
        if not self._trials() or any(r.kind is TrialKind.test for r in self.running.values()):
            return  # with no trial left, the scores after the search use every CPU instead
        for trial in self.tests.to_test(early=True)[:1]:
            self._start_test(trial)

    def _start_test(self, trial: Trial, threads: int | None = None) -> None:
        handle = self.executor.submit(replace(trial, threads=threads))
        self.running[handle] = _Running(trial.node_id, False, self.clock(), TrialKind.test)
        log.info("%s: scoring on the test split", trial.node_id)

    def _tested(self, node_id: str, scored: dict[str, Any]) -> None:
        self.tests.on_test(node_id, scored)

    def _score_tests(self) -> None:
        """After the search: the base model (unless scored already while a slot was idle) and the best
        nodes on validation, as many at once as there are trial slots (a resumed run scores only those
        still missing)."""
        self._drain()
        pending = self.tests.to_test(early=False)
        slots = self.slots.capacity()
        while pending:
            wave, pending = pending[:slots], pending[slots:]
            for trial in wave:
                self._start_test(trial, self._test_threads(slots, len(wave)))
            self._drain()

    def _drain(self) -> None:
        while self.running:
            self._collect_ready(POLL_S)
            self.enforce_timeouts()

    def _test_threads(self, slots: int, tests: int) -> int | None:
        """CPU threads for each of the search's last test scores: the trial slots' CPUs on this machine
        are free by then, so a lone test score (the usual case: the base was scored during the search)
        uses them all rather than one. None (as trials have it) with shared slots, whose other runs may
        still be training, and on GPUs."""
        r = self.search.task.resources
        if self.slots.shared or r.gpus_per_worker:
            return None
        cpus = min(os.cpu_count() or 1, int(slots * r.num_workers * r.cpus_per_worker))
        return max(1, cpus // max(1, tests))


def _trains(plan: Plan) -> bool:
    return plan.train.mode is not TrainMode.none


def _held(r: Resources) -> float:
    """CPU- or GPU-count a trial holds (as ``run_plan`` counts compute)."""
    return r.num_workers * (r.gpus_per_worker if r.gpus_per_worker else r.cpus_per_worker)


def _scores(outcome: TrialOutcome) -> dict[str, Any]:
    if outcome.scores is not None:
        return outcome.scores
    return {"error": outcome.message or (outcome.fault.value if outcome.fault else "no scores")}
