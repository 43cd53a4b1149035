"""The in-process executor (``spec/trial.py``'s contract): trials run in this process, one per poll.

A submitted trial waits; ``poll`` runs one of the waiting trials to its end and returns its outcome.
Which one is drawn at random (seeded), so that results arrive out of submission order as they do on
a cluster; ``seed=None`` runs them in submission order. ``run`` is what a trial does: by default
``plan_runner`` (``run_plan`` with the ``InProcessLauncher``); the fast tests give a synthetic
function of the plan. Its progress reports go to ``progress`` (the Researcher's ``on_progress``).

Example::

    executor = InProcessExecutor(plan_runner(task, run_dir, cache_dir), progress=researcher.on_progress,
                                 test=scorer(task, run_dir, cache_dir))
    Orchestrator(researcher, executor, FixedSlots(1)).run()
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trex_ray.execute.context import ProgressFn, RunContext
from trex_ray.spec import Decision, Progress, Result, TaskSpec
from trex_ray.spec.trial import Fault, Trial, TrialKind, TrialOutcome

log = logging.getLogger(__name__)

TrialFn = Callable[[Trial, ProgressFn], Result]  # a train trial: the plan run, reporting progress
TestFn = Callable[[Trial], dict[str, Any]]  # a test trial: the node's scores on the test split
ProgressSink = Callable[[str, Progress, int | None], Decision]  # (node, report, attempt) -> decision


class InProcessExecutor:
    def __init__(self, run: TrialFn, progress: ProgressSink, test: TestFn | None = None,
                 seed: int | None = 0) -> None:
        self.run, self.progress, self.test = run, progress, test
        self.rng = random.Random(seed) if seed is not None else None
        self.waiting: dict[int, Trial] = {}
        self._ids = itertools.count()

    def submit(self, trial: Trial) -> int:
        handle = next(self._ids)
        self.waiting[handle] = trial
        return handle

    def poll(self, timeout: float) -> list[tuple[int, TrialOutcome]]:
        if not self.waiting:
            return []
        handles = list(self.waiting)
        handle = handles[self.rng.randrange(len(handles))] if self.rng else handles[0]
        trial = self.waiting.pop(handle)
        return [(handle, self._run(trial))]

    def cancel(self, handle: Any) -> None:
        self.waiting.pop(handle, None)

    def close(self) -> None:
        self.waiting.clear()

    def _run(self, trial: Trial) -> TrialOutcome:
        try:
            if trial.kind is TrialKind.test:
                if self.test is None:
                    return TrialOutcome(fault=Fault.raised, message="this executor scores no test split")
                return TrialOutcome(scores=self.test(trial))
            def report(p: Progress) -> Decision:
                return self.progress(trial.node_id, p, trial.attempt)

            return TrialOutcome(result=self.run(trial, report))
        except Exception as exc:  # noqa: BLE001 - the trial's crash is an outcome, classified by the loop
            log.warning("%s: the trial raised: %s", trial.node_id, exc, exc_info=True)
            text = str(exc).strip().splitlines()
            reason = f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__
            return TrialOutcome(fault=Fault.raised, message=reason)


def _context(task: TaskSpec, run_dir: Path, cache_dir: Path, trial: Trial) -> RunContext:
    from trex_ray.execute.launch import InProcessLauncher

    return RunContext(task=task, node_id=trial.node_id, work_dir=Path(run_dir) / "nodes" / trial.node_id,
                      cache_dir=Path(cache_dir), launcher=InProcessLauncher(),
                      parent_checkpoint=trial.parent_checkpoint, parent_adapter=trial.parent_adapter)


def plan_runner(task: TaskSpec, run_dir: Path, cache_dir: Path) -> TrialFn:
    """A trial as ``run_plan`` here: data, training (a world of one), evaluation."""

    def run(trial: Trial, progress: ProgressFn) -> Result:
        from trex_ray.execute.run_plan import run_plan

        ctx = _context(task, run_dir, cache_dir, trial)
        ctx.on_progress = progress
        return run_plan(trial.plan, ctx)

    return run


def scorer(task: TaskSpec, run_dir: Path, cache_dir: Path) -> TestFn:
    """A test trial as ``score_test`` here; a failure is recorded as ``{"error": ...}``."""

    def score(trial: Trial) -> dict[str, Any]:
        from trex_ray.execute.run_plan import score_test

        return score_test(trial.plan, _context(task, run_dir, cache_dir, trial), trial.parent_checkpoint,
                          trial.parent_adapter)

    return score
