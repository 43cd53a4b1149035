"""Real trials for fitting the surrogate: ``run_plan`` in this process, the embedded real model, a real task.

Runs a fixed design of configurations, every one a point of the shared search space (``space.py``,
written before the fit), on the built-in ``tweet_sentiment`` task (``builtin:smollm2-135m``: 128 train,
128 validation, 320 test rows; batch 8, 16 steps an epoch; the metric is accuracy on the 128
validation rows, scored by HF in the trial's process) and appends one JSON line per trial to
``benchmarks/data/real_trials.jsonl``. The file's first line is a header: the command, the machine and
the date (a later resume appends a header of its own). A warm-started trial names its parent. Trials
already in the file are skipped, so an interrupted run resumes; ``--limit`` stops after that many new
trials.

    python benchmarks/real_trials.py [--limit N] [--only NAME ...] [--threads 1] [--shard 0/2]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import time
from pathlib import Path

from common import ROOT, machine  # also puts benchmarks/ and the repo on sys.path
from space import TASK, in_space, plan_from_config, sample_config

from trex_ray.spec import Plan, TrainMode

OUT = ROOT / "benchmarks" / "data" / "real_trials.jsonl"
CONTINUATION_WARMUP = 0.2  # the planner's continuations warm up (research/heuristic.py)


def _cfg(mode: str = "full", lr: float = 3e-4, epochs: int = 1, template: str = "auto",
         wd: float = 0.0, ops: tuple[str, ...] = ()) -> dict:
    return {"mode": mode, "lr": lr, "epochs": epochs, "template": template, "weight_decay": wd,
            **{op: op in ops for op in ("dedup", "label_noise_filter", "length_filter")}}


def _lr(x: float) -> str:
    return f"{x:.0e}".replace("e-0", "e-")


def design(extra_draws: int = 0) -> list[tuple[str, str | None, Plan]]:
    """(name, parent name or None, plan), most informative first: an lr sweep per mode at one epoch,
    uniform draws from the space, longer runs, warm continuations, the template/ops/wd terms, a repeat;
    then the base model scored untrained, and ``extra_draws`` more uniform draws (where trials are cheap)."""
    fixed: list[tuple[str, str | None, dict, dict]] = []
    for lr in (3e-4, 1e-5, 3e-3, 1e-4, 1e-3, 3e-5, 1e-2):
        fixed.append((f"full-{_lr(lr)}-ep1", None, _cfg(lr=lr), {}))
    for lr in (3e-3, 1e-4, 1e-2, 1e-3):
        fixed.append((f"lora-{_lr(lr)}-ep1", None, _cfg(mode="lora", lr=lr), {}))
    rng = random.Random(16)
    draws = [(f"draw{i:02d}", None, sample_config(rng), {}) for i in range(12)]
    later = [
        ("full-3e-4-ep3", None, _cfg(epochs=3), {}),
        ("warm-full-3e-4-ep1+1", "full-3e-4-ep1", _cfg(), {"warm": True}),
        ("full-1e-4-ep3", None, _cfg(lr=1e-4, epochs=3), {}),
        ("lora-3e-3-ep3", None, _cfg(mode="lora", lr=3e-3, epochs=3), {}),
        ("full-3e-4-ep1-plain", None, _cfg(template="plain"), {}),
        ("full-3e-4-ep1-clean", None, _cfg(ops=("dedup", "label_noise_filter")), {}),
        ("full-3e-4-ep1-seed1", None, _cfg(), {"seed": 1}),
        ("warm-full-1e-4-ep3+1", "full-1e-4-ep3", _cfg(lr=1e-4), {"warm": True}),
        ("full-3e-4-ep1-wd", None, _cfg(wd=0.1), {}),
        ("full-1e-3-ep2", None, _cfg(lr=1e-3, epochs=2), {}),
        ("full-3e-4-ep1-qa", None, _cfg(template="qa"), {}),
    ]
    order = fixed + [x for pair in zip(draws[:6], later[:6], strict=True) for x in pair]
    order += [x for pair in zip(draws[6:], later[6:] + [None], strict=False) for x in pair if x]
    order.append(("base", None, _cfg(), {"none": True}))
    more = random.Random(17)
    order += [(f"xdraw{i:03d}", None, sample_config(more), {}) for i in range(extra_draws)]
    out = []
    for name, parent, config, extra in order:
        assert in_space(config), name
        warm = bool(extra.get("warm"))
        train = {"warmup_ratio": CONTINUATION_WARMUP} if warm else {}
        plan = plan_from_config(config, seed=extra.get("seed", 0), warm=warm, backend="hf", **train)
        if extra.get("none"):
            plan = plan.model_copy(update={"train": plan.train.model_copy(update={"mode": TrainMode.none})})
        out.append((name, parent, plan))
    return out


def _device() -> str:
    import torch

    return f"cuda: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "cpu"


def _done(path: Path) -> dict[str, dict]:
    done: dict[str, dict] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            if "header" in rec:
                continue
            if rec["result"]["outcome"] != "failed" or rec["result"].get("failure") == "diverged":
                done[rec["name"]] = rec  # a crashed trial runs again
    return done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--limit", type=int, default=None, help="stop after this many new trials")
    ap.add_argument("--shard", default="0/1", help="i/n: run every n-th trial of the design from the i-th")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the trial")
    ap.add_argument("--extra-draws", type=int, default=0, help="more uniform draws after the design")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--work", type=Path, default=Path("/tmp/trex-real-trials-tweet"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from trex_ray.execute.context import RunContext
    from trex_ray.execute.launch import InProcessLauncher
    from trex_ray.execute.run_plan import run_plan
    from trex_ray.ftbench.registry import builtin_task

    task = builtin_task(TASK)
    done = _done(args.out)
    i, n = (int(x) for x in args.shard.split("/"))
    todo = [t for k, t in enumerate(design(args.extra_draws)) if k % n == i]
    todo = [t for t in todo if t[0] not in done and (not args.only or t[0] in args.only)]
    todo = todo[: args.limit] if args.limit is not None else todo
    if not todo:
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    header = {"header": {"command": " ".join(["python", *sys.argv]), "machine": machine(),
                         "device": _device(), "task": TASK,
                         "model": task.model.id, "threads": args.threads,
                         "rows": "128 train, 128 validation (the metric), batch 8, 16 steps an epoch"}}
    with args.out.open("a") as f:
        f.write(json.dumps(header) + "\n")
    for name, parent, plan in todo:
        done = _done(args.out)  # another shard may have run it, or its parent, meanwhile
        if name in done:
            continue
        if parent and parent not in done:
            print(name, "skipped: its parent", parent, "has not run", flush=True)
            continue
        ckpt = done[parent]["result"]["checkpoint"] if parent else None
        ctx = RunContext(task=task, node_id=name, work_dir=args.work / name, cache_dir=args.work / "cache",
                         launcher=InProcessLauncher(num_threads=args.threads), parent_checkpoint=ckpt,
                         parent_adapter=bool(parent and done[parent]["plan"]["train"]["mode"] == "lora"))
        t0 = time.time()
        result = run_plan(plan, ctx)
        rec = {"name": name, "parent": parent, "device": _device(), "plan": plan.model_dump(mode="json"),
               "result": result.model_dump(mode="json"), "load1": round(os.getloadavg()[0], 2),
               "wall": round(time.time() - t0, 2), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
        done[name] = rec
        with args.out.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        print(name, result.outcome.value, result.metric, round(result.cost.wall_seconds, 1), flush=True)


if __name__ == "__main__":
    main()
