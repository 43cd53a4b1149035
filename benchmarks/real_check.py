"""The simulation checked against reality: trex, TPE + ASHA and PBT on real trials, same compute budget.

The three strategies of ``strategies.py`` — the same objects the simulation runs — hand out their
trials here to ``run_plan`` in this process (the embedded real model on ``tweet_sentiment``, CPU, one
trial at a time), not to the surrogate, each through trex's production trial loop (``Orchestrator``
with the in-process executor): trex's Researcher in ``real_tree.py``, a peer in ``real_peers.py``.
Compute is the trials' own seconds (``Result.cost``); when it reaches ``--budget`` the running trial is
stopped and the strategy ends. A stopped trial keeps no
checkpoint; a warm start continues its parent's checkpoint (``JobSpec.parent.key`` carries the path).

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
from space import plan_from_config
from strategies import STRATEGIES, TreeSearch, sentiment_task

from trex_ray.execute.context import ProgressFn
from trex_ray.spec import Outcome, Plan, Result, TaskSpec, TrainMode


@dataclass
class RealOutcome:
    trials: int = 0
    stopped: int = 0
    compute: float = 0.0
    observed: list[tuple[float, float]] = field(default_factory=list)  # (compute, best measured metric)
    pick: dict[str, Any] = field(default_factory=dict)
    log: list[dict[str, Any]] = field(default_factory=list)


def check_task(seed: int, test_rows: int | None = None, model: str | None = None) -> TaskSpec:
    """The simulation's task (``strategies.sentiment_task``: 128 train, 128 validation rows), with more
    test rows if asked (scoring the picks only: no strategy sees them) or another model (a smoke test
    with ``builtin:tiny-llama``)."""
    task = sentiment_task(seed)
    data = task.data
    if test_rows:
        data = data.model_copy(update={"eval": data.eval.model_copy(update={"limit": test_rows})})
    spec = task.model.model_copy(update={"id": model}) if model else task.model
    return task.model_copy(update={"data": data, "model": spec})


class RealEngine:
    """Real trials through ``run_plan``, one at a time, and the pick's test score; the budget counts the
    trials' compute-seconds. The strategies' trial loop is the production one (``real_tree.run_tree``,
    ``real_peers.run_peer``)."""

    def __init__(
        self, budget: float, work: Path, seed: int, threads: int = 1, task: TaskSpec | None = None
    ) -> None:
        self.budget, self.work, self.seed, self.threads = budget, work, seed, threads
        self.task = task or sentiment_task(seed)

    def run_trial(self, name: str, key: str, plan: Plan, progress: ProgressFn,
                  parent_checkpoint: str | None = None, parent_adapter: bool = False) -> Result:
        """One real trial: ``run_plan`` here (evaluation on ``hf``), its reports to ``progress``; its files
        under ``work/<name>/<key>``."""
        from trex_ray.execute.context import RunContext
        from trex_ray.execute.launch import InProcessLauncher
        from trex_ray.execute.run_plan import run_plan

        ctx = RunContext(
            task=self.task,
            node_id=f"{name}-{key}",
            work_dir=self.work / name / key,
            cache_dir=self.work / "cache",
            launcher=InProcessLauncher(self.threads),
            parent_checkpoint=parent_checkpoint,
            parent_adapter=parent_adapter,
            on_progress=progress,
        )
        return run_plan(plan.model_copy(update={"eval": plan.eval.model_copy(update={"backend": "hf"})}), ctx)

    @staticmethod
    def uncharged(result: Result, evaluated: bool) -> float:
        """Compute-seconds not charged: ``run_plan`` scores every finished trial on the validation rows; a
        strategy that reads no metric (PBT: ``evaluate_at=()``) would not run that evaluation (as
        simulated)."""
        if evaluated:
            return 0.0
        unused = float(result.provenance.get("timings", {}).get("eval_s", 0.0))
        return unused * result.cost.compute_seconds / max(result.cost.wall_seconds, 1e-9)

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


def log_trial(out: RealOutcome, name: str, tag: str, plan: Plan, result: Result, uncharged: float,
              warm: bool) -> None:
    """The trial's row of the result file (``trials_log``), after ``out.compute`` counted it."""
    row = {
        "job": len(out.log),
        "tag": tag,
        "plan": _brief(plan),
        "outcome": result.outcome.value,
        "metric": result.metric,
        "val_loss": _last_val(result),
        "seconds": round(result.cost.compute_seconds - uncharged, 1),
        "uncharged_s": round(uncharged, 1),
        "timings": result.provenance.get("timings", {}),
        "compute": round(out.compute, 1),
        "warm": warm,
        **({"error": result.error} if result.error else {}),
    }
    out.log.append(row)
    print(name, row, flush=True)


def pick(out: RealOutcome, plan: Plan, result: Result, **measured: float) -> None:
    """The strategy's pick is now this trial's checkpoint (``measured``: ``metric`` or ``val_loss``)."""
    out.pick = {"plan": plan, "checkpoint": result.checkpoint, **measured, "compute": out.compute,
                "adapter": plan.train.mode is TrainMode.lora}


def _brief(plan: Plan) -> str:
    t = plan.train
    ops = "+".join(o.op for o in plan.data.ops)
    return (
        f"{t.mode.value} lr {t.learning_rate:.3g} ep {t.epochs:g}{' warm' if t.warm_start else ''}"
        f" {plan.data.template}{' ' + ops if ops else ''}{' wd' if t.weight_decay else ''}"
    )


UNIT = {"mode": "full", "lr": 3e-4, "epochs": 1, "template": "auto"}  # one one-epoch trial, evaluated


def calibrate(engine: RealEngine, repeats: int = 2) -> dict[str, Any]:
    """The compute-seconds of one one-epoch trial with its evaluation — the simulation's budget unit
    (start + epoch + evaluation) — measured here: the last of ``repeats`` runs (the first also pays the
    model's conversion, the data's preparation and the device's warm-up). Not charged to a strategy."""
    from trex_ray.execute.context import RunContext
    from trex_ray.execute.launch import InProcessLauncher
    from trex_ray.execute.run_plan import run_plan

    plan = plan_from_config(UNIT, engine.seed, backend="hf")
    runs = []
    for k in range(repeats):
        ctx = RunContext(
            task=engine.task,
            node_id=f"unit-{k}",
            work_dir=engine.work / "unit" / str(k),
            cache_dir=engine.work / "cache",
            launcher=InProcessLauncher(engine.threads),
        )
        result = run_plan(plan, ctx)
        if result.outcome is not Outcome.finished:
            raise RuntimeError(f"the calibration trial failed: {result.error}")
        runs.append(
            {"compute_s": round(result.cost.compute_seconds, 2), "metric": result.metric,
             "timings": result.provenance.get("timings", {})}
        )
        print("unit", runs[-1], flush=True)
    return {"plan": _brief(plan), "runs": runs, "unit_s": runs[-1]["compute_s"]}


def nccl_world_of_one() -> None:
    """Make this process's group a world of one on NCCL (``InProcessLauncher`` keeps a group it finds
    made; its own is gloo)."""
    import torch.distributed as dist

    from trex_ray.execute.launch import _patched_env, _world_of_one

    if not dist.is_initialized():
        with _patched_env(_world_of_one()):
            dist.init_process_group("nccl", rank=0, world_size=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=1800.0, help="compute-seconds per strategy")
    ap.add_argument(
        "--budget-trials", type=float, default=None,
        help="the budget in one-epoch trials, as the simulation's (24): measured here first (calibrate)",
    )
    ap.add_argument(
        "--max-wall", type=float, default=None,
        help="with --budget-trials: fewer trials if the strategies would not end within these seconds",
    )
    ap.add_argument(
        "--same-budget", type=float, default=None,
        help="with --budget-trials: calibrate (the warm-up), then use this budget in seconds: one strategy "
             "re-run against an earlier file's",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--strategies", nargs="*", default=["trex", "tune-tpe-asha", "tune-pbt"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--test-rows", type=int, default=None, help="test rows scoring the picks (task: 320)")
    ap.add_argument("--model", default=None, help="another model (smoke test: builtin:tiny-llama)")
    ap.add_argument("--backend", choices=("gloo", "nccl"), default="gloo", help="process group (GPU)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/trex-real-check"))
    ap.add_argument("--results-dir", type=Path, default=RESULTS)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--tag", default="cpu", help="where it ran, in the file name (cpu, h200)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for name in ("trex_ray", "ray", "ray.tune"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from real_peers import run_peer  # (they import this module)
    from real_tree import run_tree

    if args.backend == "nccl":
        nccl_world_of_one()
    t0, rows = time.perf_counter(), {}
    task = check_task(args.seed, args.test_rows, args.model)
    work = args.work / f"seed{args.seed}"
    budget, unit, trials = args.budget, None, None
    if args.budget_trials:
        unit = calibrate(RealEngine(0.0, work, args.seed, args.threads, task))
        trials = args.budget_trials
        if args.max_wall:  # what fits: the strategies' trials, and a scoring of the test rows each
            left = args.max_wall - (time.perf_counter() - t0)
            trials = max(1.0, min(trials, math.floor(left / (1.2 * len(args.strategies)) / unit["unit_s"])))
        budget = trials * unit["unit_s"] if args.same_budget is None else args.same_budget
        print(f"budget: {trials:g} one-epoch trials x {unit['unit_s']} s = {budget:.1f} s", flush=True)
    name_of = f"real_check-{args.tag}-seed{args.seed}-budget{budget:.0f}.json"
    summary: dict[str, Any] = {
        "benchmark": "real_check",
        "simulated": False,
        "complete": False,
        "task": "tweet_sentiment",
        "model": task.model.id,
        "data_rows": {"train": task.data.train[0].limit - task.data.val_size, "val": task.data.val_size,
                      "test": task.data.eval.limit},
        "seed": args.seed,
        "budget_compute_s": round(budget, 1),
        "budget_trials": trials,
        "unit": unit,
        "slots": 1,
        "threads": args.threads,
        "process_group": args.backend,
        "device": _device(),
        "strategies": rows,
    }
    for name in args.strategies:
        engine = RealEngine(budget, work, args.seed, args.threads, task)
        strategy = STRATEGIES[name](args.seed)
        t1 = time.perf_counter()
        run = run_tree if isinstance(strategy, TreeSearch) else run_peer
        try:  # the production trial loop: trex's Researcher (real_tree.py), a peer's strategy (real_peers.py)
            out = run(engine, strategy)
        finally:
            if isinstance(strategy, TreeSearch):
                strategy.close()
        rows[name] = {
            "trials": out.trials,
            "stopped": out.stopped,
            "compute_s": round(out.compute, 1),
            "wall_s": round(time.perf_counter() - t1, 1),
            "observed": out.observed,
            "pick": engine.score_pick(out, name),
            "trials_log": out.log,
        }
        # written after each strategy: a call cut short keeps what has finished
        summary.update(wall_s=round(time.perf_counter() - t0, 1), machine=machine())
        emit(summary, True, name_of, args.results_dir)
    ranking = sorted(rows, key=lambda n: -(rows[n]["pick"].get("test_metric") or 0.0))
    summary.update(complete=True, ranking_by_test=ranking, wall_s=round(time.perf_counter() - t0, 1))
    emit(summary, args.json, name_of, args.results_dir)


if __name__ == "__main__":
    main()
