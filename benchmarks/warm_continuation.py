"""A warm continuation with and without a learning-rate warm-up, on real trials of FT-Bench analogs.

A warm start loads its parent's weights, not its optimizer: AdamW's first steps from fresh moments
move every weight by about the learning rate. For each task and seed: a parent (full fine-tune,
lr 2e-3, 2 epochs), then the heuristic planner's continuation of it (its lr, 1 more epoch) with each
warm-up ratio asked for. In process (DeepSpeed, CPU), evaluated with HF generate.

    python benchmarks/warm_continuation.py --quick --json          # 2 tasks x 1 seed
    python benchmarks/warm_continuation.py --json                  # 4 tasks x 3 seeds
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

from common import emit, machine  # also puts benchmarks/ and the repo on sys.path

from trex_ray.execute.context import RunContext
from trex_ray.execute.launch import InProcessLauncher
from trex_ray.execute.run_plan import run_plan
from trex_ray.ftbench.suites import mini_task
from trex_ray.spec import Plan, Result, TaskSpec, TrainRecipe


def _run(task: TaskSpec, plan: Plan, work: Path, cache: Path, parent: Result | None = None) -> Result:
    ctx = RunContext(task=task, node_id=work.name, work_dir=work, cache_dir=cache,
                     launcher=InProcessLauncher(), parent_checkpoint=parent.checkpoint if parent else None,
                     parent_adapter=False)
    return run_plan(plan, ctx)


def trial(name: str, seed: int, warmups: list[float], cache: Path) -> dict[str, Any]:
    task = mini_task(name)
    task = task.model_copy(update={"eval": task.eval.model_copy(update={"backend": "hf"})})
    work = Path(tempfile.mkdtemp(prefix=f"warm-{name}-{seed}-"))
    parent = _run(task, Plan(train=TrainRecipe(mode="full", learning_rate=2e-3, epochs=2), seed=seed),
                  work / "parent", cache)
    row: dict[str, Any] = {"task": name, "seed": seed, "parent_metric": parent.metric,
                           "parent_final_train_loss": parent.curve[-1].train_loss if parent.curve else None}
    for warmup in warmups:
        plan = Plan(train=TrainRecipe(mode="full", learning_rate=2e-3, epochs=1, warm_start=True,
                                      warmup_ratio=warmup), seed=seed)
        child = _run(task, plan, work / f"warmup-{warmup}", cache, parent)
        row[f"warmup_{warmup}"] = {
            "outcome": child.outcome.value,
            "failure": child.failure.value if child.failure else None,
            "metric": child.metric,
            "peak_train_loss": max((p.train_loss for p in child.curve), default=None),
        }
    print(row, flush=True)
    return row


def summarize(rows: list[dict[str, Any]], warmups: list[float]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for w in warmups:
        cells = [r[f"warmup_{w}"] for r in rows]
        out[f"warmup_{w}"] = {
            "diverged": sum(c["failure"] == "diverged" for c in cells),
            "mean_metric_gain_over_parent": statistics.fmean(
                (c["metric"] or 0.0) - (r["parent_metric"] or 0.0) for c, r in zip(cells, rows, strict=True)),
        }
    if len(warmups) == 2:
        a, b = (f"warmup_{w}" for w in warmups)
        out["pairs_where_second_beats_first"] = sum(
            (r[b]["metric"] or 0.0) > (r[a]["metric"] or 0.0) for r in rows)
        out["pairs"] = len(rows)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 tasks x 1 seed")
    ap.add_argument("--json", action="store_true", help="print the summary as one compact JSON line")
    ap.add_argument("--tasks", nargs="*", default=None)
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--warmups", nargs="*", type=float, default=[0.0, 0.2])
    args = ap.parse_args()
    tasks = args.tasks or (["omebench", "gta"] if args.quick else ["omebench", "csbench", "tomg", "gta"])
    seeds = args.seeds or (1 if args.quick else 3)
    cache = Path(tempfile.mkdtemp(prefix="warm-cache-"))
    rows = [trial(name, seed, args.warmups, cache) for name in tasks for seed in range(seeds)]
    summary = {"benchmark": "warm_continuation", "machine": machine(), "tasks": tasks, "seeds": seeds,
               "warmups": args.warmups, **summarize(rows, args.warmups), "rows": rows}
    emit(summary, args.json, None if args.quick else "warm_continuation-full.json")


if __name__ == "__main__":
    main()
