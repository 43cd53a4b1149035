"""The simulation checked against reality: trex, TPE + ASHA and PBT on real trials, same compute budget.

The three strategies of ``strategies.py`` — the same objects the simulation runs — run their trials
here through ``run_plan`` in this process (the embedded real model on ``tweet_sentiment``, CPU, one
trial at a time), not on the surrogate: trex through its production trial loop (``Orchestrator`` with
the in-process executor), the peers through ``RealEngine.run``. Compute is the trials' own seconds
(``Result.cost``); when it reaches ``--budget`` the running trial is stopped and the strategy ends. A
stopped trial keeps no checkpoint; a warm start continues its parent's checkpoint (``JobSpec.parent.key``
carries the path for the peers; trex's loop passes the parent's).

Each strategy's pick — the best measured validation metric (trex, TPE + ASHA), or the lowest
validation loss at a checkpoint (PBT, which measures nothing else) — is then scored on the 320 test
rows (not charged). The result file's name says ``real``: ``results/real_check-<budget>.json``.

    python benchmarks/real_check.py --budget 1800 --seed 0 [--strategies trex tune-tpe-asha tune-pbt]
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import RESULTS, emit, machine  # also puts benchmarks/ and the repo on sys.path
from sim import Action, JobSpec, Report
from strategies import STRATEGIES, TreeSearch, sentiment_task
from surrogate import State

from trex_ray.spec import Decision, Outcome, Plan, Progress, Result, TrainMode
from trex_ray.spec.trial import Trial


@dataclass
class RealRun:
    """What the strategies read off a running trial (``sim.Simulation``'s part they use)."""

    plan: Plan
    start: State
    end_state: State = field(default_factory=State)

    def state_at(self, fraction: float) -> State:
        """A checkpoint exists only at a trial's end; before it, the one the trial started from."""
        return self.end_state if fraction >= 1.0 and self.end_state.key != "base" else self.start


@dataclass
class RealJob:
    spec: JobSpec
    sim: RealRun
    started: float
    id: int
    index: int = 0
    elapsed: float = 0.0
    reports: list[Report] = field(default_factory=list)

    def time_of(self, k: int) -> float:
        return self.started + self.elapsed

    def report(self, k: int) -> Report:
        return self.reports[k]


@dataclass
class RealOutcome:
    trials: int = 0
    stopped: int = 0
    compute: float = 0.0
    observed: list[tuple[float, float]] = field(default_factory=list)  # (compute, best measured metric)
    pick: dict[str, Any] = field(default_factory=dict)
    log: list[dict[str, Any]] = field(default_factory=list)


class RealEngine:
    """One trial at a time through ``run_plan``; the budget counts the trials' compute-seconds."""

    def __init__(self, budget: float, work: Path, seed: int, threads: int = 1) -> None:
        self.budget, self.work, self.seed, self.threads = budget, work, seed, threads
        self.task = sentiment_task(seed)

    def run(self, strategy: Any) -> RealOutcome:
        out, queue, best_val, best_metric = RealOutcome(), [], math.inf, -math.inf
        while out.compute < self.budget:
            # a new trial first (PBT: until its population is out), then the continuations in turn
            fresh = strategy.next_jobs(1)
            if not fresh and not queue:
                break
            spec = fresh[0] if fresh else queue.pop(0)
            job = RealJob(spec, RealRun(spec.plan, spec.parent or State()), out.compute, out.trials)
            out.trials += 1
            result, replacement, cut = self._run(job, strategy, out.compute)
            out.compute += job.elapsed
            ok = result.outcome is Outcome.finished
            diverged = result.failure is not None and result.failure.value == "diverged"
            if ok and spec.plan.train.mode is not TrainMode.none:
                job.sim.end_state = State(key=result.checkpoint or "base")
            final = Report(
                1.0,
                spec.plan.train.epochs,
                _last_val(result),
                math.nan,
                result.metric if ok and spec.evaluate_at else None,
                final=True,
                diverged=diverged,
            )
            row = {
                "job": job.id,
                "tag": str(spec.tag),
                "plan": _brief(spec.plan),
                "outcome": result.outcome.value,
                "metric": result.metric,
                "val_loss": final.val_loss,
                "seconds": round(job.elapsed, 1),
                "compute": round(out.compute, 1),
                "warm": spec.parent is not None,
            }
            out.log.append(row)
            print(strategy.name, row, flush=True)
            if cut or replacement is not None or not (ok or diverged):
                out.stopped += 1
                strategy.on_end(
                    job, None if cut else (job.reports[-1] if job.reports else None), stopped=True
                )
                queue += [replacement] if replacement is not None else []
                continue
            job.reports.append(final)
            job.index = len(job.reports) - 1
            action = strategy.on_report(job, final)
            if isinstance(action, JobSpec):  # PBT: the member goes on (or is exploited) in a new chunk
                queue.append(action)
            strategy.on_end(job, final, stopped=False)
            if final.metric is not None and final.metric > best_metric:
                best_metric = final.metric
                out.observed.append((out.compute, final.metric))
                out.pick = {
                    "plan": spec.plan,
                    "checkpoint": result.checkpoint,
                    "metric": final.metric,
                    "compute": out.compute,
                    "adapter": spec.plan.train.mode is TrainMode.lora,
                }
            if spec.select_by_val and ok and math.isfinite(final.val_loss) and final.val_loss < best_val:
                best_val = final.val_loss
                out.pick = {
                    "plan": spec.plan,
                    "checkpoint": result.checkpoint,
                    "val_loss": best_val,
                    "compute": out.compute,
                    "adapter": spec.plan.train.mode is TrainMode.lora,
                }
        return out

    def run_tree(self, strategy: TreeSearch) -> RealOutcome:
        """trex (or greedy) through its production trial loop (``Orchestrator``): the in-process executor
        runs each trial here, one at a time; the budget ends the loop, and a trial still running when it
        runs out is stopped at its next report (as the peers' are)."""
        from trex_ray.execute.inprocess import InProcessExecutor
        from trex_ray.research.orchestrator import FixedSlots, Orchestrator

        out, best = RealOutcome(), [-math.inf]

        def run(trial: Trial, progress: Any) -> Result:
            spent, t0 = out.compute, time.perf_counter()

            def report(p: Progress) -> Decision:
                if spent + time.perf_counter() - t0 >= self.budget:
                    return Decision.STOP
                return progress(p)

            name = f"{trial.node_id}.a{trial.attempt}"
            result = self._run_plan(trial.plan, f"{strategy.name}-{name}", self.work / strategy.name / name,
                                    trial.parent_checkpoint, trial.parent_adapter, report)
            out.trials += 1
            out.compute += result.cost.compute_seconds
            out.stopped += result.outcome is Outcome.stopped
            self._log(out, strategy.name, trial.node_id, trial.plan, result, warm=trial.parent_checkpoint)
            if result.outcome is Outcome.finished and result.metric is not None and result.metric > best[0]:
                best[0] = result.metric
                out.observed.append((out.compute, result.metric))
                out.pick = {"plan": trial.plan, "checkpoint": result.checkpoint, "metric": result.metric,
                            "compute": out.compute, "adapter": trial.plan.train.mode is TrainMode.lora}
            return result

        executor = InProcessExecutor(run, progress=strategy.researcher.on_progress, seed=None)
        loop = Orchestrator(strategy.researcher, executor, FixedSlots(1), score_tests=False)
        loop.run(stop=lambda: out.compute >= self.budget)
        return out

    def _run_plan(self, plan: Plan, node_id: str, work_dir: Path, parent: str | None, adapter: bool,
                  progress: Any) -> Result:
        from trex_ray.execute.context import RunContext
        from trex_ray.execute.launch import InProcessLauncher
        from trex_ray.execute.run_plan import run_plan

        ctx = RunContext(task=self.task, node_id=node_id, work_dir=work_dir, cache_dir=self.work / "cache",
                         launcher=InProcessLauncher(self.threads), parent_checkpoint=parent,
                         parent_adapter=adapter, on_progress=progress)
        return run_plan(plan.model_copy(update={"eval": plan.eval.model_copy(update={"backend": "hf"})}), ctx)

    @staticmethod
    def _log(out: RealOutcome, name: str, tag: Any, plan: Plan, result: Result, warm: Any) -> None:
        row = {"job": len(out.log), "tag": str(tag), "plan": _brief(plan), "outcome": result.outcome.value,
               "metric": result.metric, "val_loss": _last_val(result),
               "seconds": round(result.cost.compute_seconds, 1), "compute": round(out.compute, 1),
               "warm": warm is not None}
        out.log.append(row)
        print(name, row, flush=True)

    def _run(self, job: RealJob, strategy: Any, spent: float) -> tuple[Any, JobSpec | None, bool]:
        from trex_ray.execute.context import RunContext
        from trex_ray.execute.launch import InProcessLauncher
        from trex_ray.execute.run_plan import run_plan

        t0, state = time.perf_counter(), {"replacement": None, "cut": False}

        def progress(p: Progress) -> Decision:
            if spent + time.perf_counter() - t0 >= self.budget:
                state["cut"] = True
                return Decision.STOP
            report = Report(
                p.fraction,
                job.spec.plan.train.epochs * p.fraction,
                p.val_loss if p.val_loss is not None else math.nan,
                p.train_loss,
                None,
                final=False,
                diverged=False,
            )
            job.reports.append(report)
            job.index = len(job.reports) - 1
            action = strategy.on_report(job, report)
            if isinstance(action, JobSpec):
                state["replacement"] = action
            return Decision.STOP if action is not Action.CONTINUE else Decision.CONTINUE

        parent = (
            job.spec.parent.key if job.spec.parent is not None and job.spec.parent.key != "base" else None
        )
        ctx = RunContext(
            task=self.task,
            node_id=f"{strategy.name}-{job.id}",
            work_dir=self.work / strategy.name / str(job.id),
            cache_dir=self.work / "cache",
            launcher=InProcessLauncher(self.threads),
            parent_checkpoint=parent,
            parent_adapter=job.spec.plan.train.mode is TrainMode.lora,
            on_progress=progress,
        )
        result = run_plan(
            job.spec.plan.model_copy(
                update={"eval": job.spec.plan.eval.model_copy(update={"backend": "hf"})}
            ),
            ctx,
        )
        job.elapsed = result.cost.compute_seconds
        return result, state["replacement"], bool(state["cut"])

    def score_pick(self, out: RealOutcome, name: str) -> dict[str, Any]:
        """The pick's validation metric (if not measured) and test score: not charged."""
        from trex_ray.execute.context import RunContext
        from trex_ray.execute.launch import InProcessLauncher
        from trex_ray.execute.run_plan import score_test

        if not out.pick:
            return {}
        ctx = RunContext(
            task=self.task,
            node_id=f"{name}-test",
            work_dir=self.work / name / "test",
            cache_dir=self.work / "cache",
            launcher=InProcessLauncher(self.threads),
        )
        plan = out.pick["plan"].model_copy(
            update={"eval": out.pick["plan"].eval.model_copy(update={"backend": "hf"})}
        )
        scored = score_test(plan, ctx, out.pick["checkpoint"], out.pick["adapter"])
        return {
            "plan": _brief(out.pick["plan"]),
            "val_metric": out.pick.get("metric"),
            "val_loss": out.pick.get("val_loss"),
            "found_at_compute": round(out.pick["compute"], 1),
            "test_metric": scored["test_metric"],
            "test_rows": scored["rows"],
        }


def _device() -> str:
    import torch

    return f"cuda: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "cpu"


def _last_val(result: Any) -> float:
    vals = [p.val_loss for p in result.curve if p.val_loss is not None]
    return vals[-1] if vals else math.nan


def _brief(plan: Plan) -> str:
    t = plan.train
    ops = "+".join(o.op for o in plan.data.ops)
    return (
        f"{t.mode.value} lr {t.learning_rate:.3g} ep {t.epochs:g}{' warm' if t.warm_start else ''}"
        f" {plan.data.template}{' ' + ops if ops else ''}{' wd' if t.weight_decay else ''}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=1800.0, help="compute-seconds per strategy")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--strategies", nargs="*", default=["trex", "tune-tpe-asha", "tune-pbt"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", type=Path, default=Path("/tmp/trex-real-check"))
    ap.add_argument("--results-dir", type=Path, default=RESULTS)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--tag", default="cpu", help="where it ran, in the file name (cpu, h200)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for name in ("trex_ray", "ray", "ray.tune"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    t0, rows = time.perf_counter(), {}
    for name in args.strategies:
        engine = RealEngine(args.budget, args.work / f"seed{args.seed}", args.seed, args.threads)
        strategy = STRATEGIES[name](args.seed)
        try:
            out = engine.run_tree(strategy) if isinstance(strategy, TreeSearch) else engine.run(strategy)
        finally:
            if isinstance(strategy, TreeSearch):
                strategy.close()
        rows[name] = {
            "trials": out.trials,
            "stopped": out.stopped,
            "compute_s": round(out.compute, 1),
            "observed": out.observed,
            "pick": engine.score_pick(out, name),
            "trials_log": out.log,
        }
    ranking = sorted(rows, key=lambda n: -(rows[n]["pick"].get("test_metric") or 0.0))
    summary = {
        "benchmark": "real_check",
        "simulated": False,
        "task": "tweet_sentiment",
        "model": "builtin:smollm2-135m",
        "seed": args.seed,
        "budget_compute_s": args.budget,
        "slots": 1,
        "threads": args.threads,
        "strategies": rows,
        "ranking_by_test": ranking,
        "wall_s": round(time.perf_counter() - t0, 1),
        "machine": machine(),
    }
    summary["device"] = _device()
    emit(
        summary,
        args.json,
        f"real_check-{args.tag}-seed{args.seed}-budget{args.budget:.0f}.json",
        args.results_dir,
    )


if __name__ == "__main__":
    main()
