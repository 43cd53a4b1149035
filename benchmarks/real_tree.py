"""trex on real trials for ``real_check.py``: its production trial loop, not a loop of the benchmark's.

``run_tree`` runs the ``TreeSearch``'s Researcher through ``Orchestrator`` with the in-process executor:
each trial is ``run_plan`` here, one at a time (one slot; the base model's evaluation takes none, as in
a real run, but trials still run one after the other). Compute is the trials' own seconds; the loop
stops once it reaches the budget, and a trial still running then is stopped at its next report, as
``RealEngine.run`` does for the peers. The pick is the best measured validation metric.

Example::

    out = run_tree(RealEngine(budget, work, seed), trex(seed))
    engine.score_pick(out, "trex")
"""

from __future__ import annotations

import math
import time
from typing import Any

from real_check import RealEngine, RealOutcome, _brief, _last_val
from strategies import TreeSearch

from trex_ray.spec import Decision, Outcome, Progress, Result, TrainMode
from trex_ray.spec.trial import Trial


def run_tree(engine: RealEngine, strategy: TreeSearch) -> RealOutcome:
    from trex_ray.execute.inprocess import InProcessExecutor
    from trex_ray.research.orchestrator import FixedSlots, Orchestrator

    out, best = RealOutcome(), [-math.inf]

    def run(trial: Trial, progress: Any) -> Result:
        spent, t0 = out.compute, time.perf_counter()

        def report(p: Progress) -> Decision:
            if spent + time.perf_counter() - t0 >= engine.budget:
                return Decision.STOP  # the budget ran out during this trial
            return progress(p)

        result = _run_plan(engine, strategy.name, trial, report)
        out.trials += 1
        out.compute += result.cost.compute_seconds
        out.stopped += result.outcome is Outcome.stopped
        _log(out, strategy.name, trial, result)
        if result.outcome is Outcome.finished and result.metric is not None and result.metric > best[0]:
            best[0] = result.metric
            out.observed.append((out.compute, result.metric))
            out.pick = {"plan": trial.plan, "checkpoint": result.checkpoint, "metric": result.metric,
                        "compute": out.compute, "adapter": trial.plan.train.mode is TrainMode.lora}
        return result

    executor = InProcessExecutor(run, progress=strategy.researcher.on_progress, seed=None)
    loop = Orchestrator(strategy.researcher, executor, FixedSlots(1), score_tests=False)
    loop.run(stop=lambda: out.compute >= engine.budget)
    return out


def _run_plan(engine: RealEngine, name: str, trial: Trial, progress: Any) -> Result:
    from trex_ray.execute.context import RunContext
    from trex_ray.execute.launch import InProcessLauncher
    from trex_ray.execute.run_plan import run_plan

    attempt = f"{trial.node_id}.a{trial.attempt}"
    ctx = RunContext(task=engine.task, node_id=f"{name}-{attempt}", work_dir=engine.work / name / attempt,
                     cache_dir=engine.work / "cache", launcher=InProcessLauncher(engine.threads),
                     parent_checkpoint=trial.parent_checkpoint, parent_adapter=trial.parent_adapter,
                     on_progress=progress)
    plan = trial.plan
    return run_plan(plan.model_copy(update={"eval": plan.eval.model_copy(update={"backend": "hf"})}), ctx)


def _log(out: RealOutcome, name: str, trial: Trial, result: Result) -> None:
    row = {
        "job": len(out.log), "tag": trial.node_id, "plan": _brief(trial.plan),
        "outcome": result.outcome.value, "metric": result.metric, "val_loss": _last_val(result),
        "seconds": round(result.cost.compute_seconds, 1), "uncharged_s": 0.0,
        "timings": result.provenance.get("timings", {}), "compute": round(out.compute, 1),
        "warm": trial.parent_checkpoint is not None, **({"error": result.error} if result.error else {}),
    }
    out.log.append(row)
    print(name, row, flush=True)
