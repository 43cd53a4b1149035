"""Real trials for fitting the surrogate executor: run_plan (DeepSpeed on CPU, in this process).

Runs a fixed list of plans on the built-in ``sentiment`` task (the task of the journals the
surrogate is fitted on) and appends one JSON line per trial to ``benchmarks/data/real_trials.jsonl``:
``{"name", "parent", "plan", "result"}``. A warm-started plan names its parent trial. Trials already
in the file are skipped, so an interrupted run resumes.

    python benchmarks/real_trials.py [--only NAME ...] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trex_ray.spec import DataOp, DataRecipe, EvalRecipe, Plan, TrainMode, TrainRecipe  # noqa: E402

OUT = ROOT / "benchmarks" / "data" / "real_trials.jsonl"


def _plan(
    mode: str = "full",
    lr: float = 5e-4,
    epochs: float = 3,
    ops: tuple[str, ...] = (),
    seed: int = 0,
    warm: bool = False,
    template: str = "plain",
    **train: object,
) -> Plan:
    params = {"length_filter": {"max_words": 40}}
    data = DataRecipe(ops=[DataOp(op=o, params=params.get(o, {})) for o in ops], template=template)
    extra = {"lora_r": 16, "lora_alpha": 32} if mode == "lora" else {}
    recipe = TrainRecipe(
        mode=TrainMode(mode), learning_rate=lr, epochs=epochs, warm_start=warm, **{**extra, **train}
    )  # type: ignore[arg-type]
    return Plan(
        data=data, train=recipe, eval=EvalRecipe(backend="hf"), seed=seed
    )  # the backend the journals used


# name -> (parent name or None, plan); the order is the order of importance.
TRIALS: list[tuple[str, str | None, Plan]] = [
    ("full-2e-3-ep2", None, _plan(lr=2e-3, epochs=2)),
    ("full-5e-4-ep5", None, _plan(epochs=5)),
    ("full-5e-4-ep1", None, _plan(epochs=1)),
    ("full-1e-4-ep3", None, _plan(lr=1e-4)),
    ("full-1e-3-ep3", None, _plan(lr=1e-3)),
    ("full-1e-2-ep2", None, _plan(lr=1e-2, epochs=2)),
    ("lora-3e-2-ep3", None, _plan(mode="lora", lr=3e-2)),
    ("full-5e-4-ep3-len", None, _plan(ops=("length_filter",))),
    ("warm-1e-3-ep1", "full-2e-3-ep2", _plan(lr=1e-3, epochs=1, warm=True, warmup_ratio=0.0)),
    ("full-5e-4-ep3-seed1", None, _plan(seed=1)),
    ("full-5e-4-ep3-instruct", None, _plan(template="instruct")),
    ("full-2.5e-2-ep2", None, _plan(lr=2.5e-2, epochs=2)),
    ("lora-1e-1-ep2", None, _plan(mode="lora", lr=1e-1, epochs=2)),
    ("full-5e-4-ep4", None, _plan(epochs=4)),
    (
        "warm-2.5e-4-ep1",
        "full-5e-4-ep3-seed1",
        _plan(lr=2.5e-4, epochs=1, seed=1, warm=True, warmup_ratio=0.0),
    ),
    ("full-5e-4-ep3-clean", None, _plan(ops=("label_noise_filter", "dedup"))),
    (
        "warm-clean-2.5e-4-ep1",
        "full-5e-4-ep3-clean",
        _plan(lr=2.5e-4, epochs=1, ops=("label_noise_filter", "dedup"), warm=True, warmup_ratio=0.0),
    ),
    ("lora-1e-2-ep3", None, _plan(mode="lora", lr=1e-2)),
    ("full-3e-4-ep3", None, _plan(lr=3e-4)),
    ("full-2e-3-ep2-seed1", None, _plan(lr=2e-3, epochs=2, seed=1)),
    ("full-5e-4-ep3-wd", None, _plan(weight_decay=0.1)),
    ("full-5e-4-ep6", None, _plan(epochs=6)),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--work", type=Path, default=Path("/tmp/trex-real-trials"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from trex_ray.execute.context import RunContext
    from trex_ray.execute.run_plan import run_plan
    from trex_ray.execute.train import InProcessLauncher
    from trex_ray.ftbench.registry import builtin_task

    task = builtin_task("sentiment")
    done: dict[str, dict] = {}
    if args.out.is_file():
        for line in args.out.read_text().splitlines():
            rec = json.loads(line)
            if rec["result"]["outcome"] != "failed" or rec["result"].get("failure") == "diverged":
                done[rec["name"]] = rec  # a crashed trial runs again
    for name, parent, plan in TRIALS:
        if name in done or (args.only and name not in args.only):
            continue
        ckpt = done[parent]["result"]["checkpoint"] if parent else None
        ctx = RunContext(
            task=task,
            node_id=name,
            work_dir=args.work / name,
            cache_dir=args.work / "cache",
            launcher=InProcessLauncher(num_threads=1),
            parent_checkpoint=ckpt,
        )
        t0 = time.time()
        result = run_plan(plan, ctx)
        rec = {
            "name": name,
            "parent": parent,
            "plan": plan.model_dump(mode="json"),
            "result": result.model_dump(mode="json"),
            "load1": os.getloadavg()[0],
            "wall": time.time() - t0,
        }
        done[name] = rec
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        print(name, result.outcome.value, result.metric, round(result.cost.wall_seconds, 1), flush=True)


if __name__ == "__main__":
    main()
