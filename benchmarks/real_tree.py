"""trex on real trials for ``real_check.py``: its production trial loop, not a loop of the benchmark's.

``run_tree`` runs the ``TreeSearch``'s Researcher through ``Orchestrator`` with the in-process executor:
each trial is ``run_plan`` here, one at a time (one slot; the base model's evaluation takes none, as in
a real run, but trials still run one after the other). Compute is the trials' own seconds; the loop
stops once it reaches the budget, and a trial still running then is stopped at its next report, as
``real_peers.run_peer`` does for the peers. The pick is the best measured validation metric.

Example::

    out = run_tree(RealEngine(budget, work, seed), trex(seed))
    engine.score_pick(out, "trex")
"""

from __future__ import annotations

import math
import time

from real_check import RealEngine, RealOutcome, log_trial, pick
from strategies import TreeSearch

from trex_ray.execute.context import ProgressFn
from trex_ray.spec import Decision, Outcome, Progress, Result
from trex_ray.spec.trial import Trial


def run_tree(engine: RealEngine, strategy: TreeSearch) -> RealOutcome:
    from trex_ray.execute.inprocess import InProcessExecutor
    from trex_ray.research.orchestrator import FixedSlots, Orchestrator

    out, best = RealOutcome(), [-math.inf]

    def run(trial: Trial, progress: ProgressFn) -> Result:
        spent, t0 = out.compute, time.perf_counter()

        def report(p: Progress) -> Decision:
            if spent + time.perf_counter() - t0 >= engine.budget:
                return Decision.STOP  # the budget ran out during this trial
            return progress(p)

        result = engine.run_trial(strategy.name, f"{trial.node_id}.a{trial.attempt}", trial.plan, report,
                                  trial.parent_checkpoint, trial.parent_adapter)
        out.trials += 1
        out.compute += result.cost.compute_seconds
        out.stopped += result.outcome is Outcome.stopped
        warm = trial.parent_checkpoint is not None
        log_trial(out, strategy.name, trial.node_id, trial.plan, result, 0.0, warm)
        if result.outcome is Outcome.finished and result.metric is not None and result.metric > best[0]:
            best[0] = result.metric
            out.observed.append((out.compute, result.metric))
            pick(out, trial.plan, result, metric=result.metric)
        return result

    executor = InProcessExecutor(run, progress=strategy.researcher.on_progress, seed=None)
    loop = Orchestrator(strategy.researcher, executor, FixedSlots(1), score_tests=False)
    loop.run(stop=lambda: out.compute >= engine.budget)
    return out
