"""The embedded real model on a GPU: a whole ``trex run``, its per-node times, and its training loop's
tokens/s and MFU against a raw PyTorch loop on the same model, data, batches and sequence lengths.

    # on the GPU machine, the bundle of ../shared/tools/device-bundle.sh sourced:
    python benchmarks/gpu_real.py run --run-dir /tmp/gpu-run -- --max-nodes 6 resources.gpus_per_worker=1 ...
    python benchmarks/gpu_real.py raw --run-dir /tmp/gpu-run            # the raw loop on a node's data
    python benchmarks/gpu_real.py report --run-dir /tmp/gpu-run --out results/gpu_real-h200.json

``run`` starts ``trex run`` as a user would (a subprocess, the CLI, a local Ray cluster) and times it.
``report`` reads the finished run's journal: for every node the start (Ray Train worker and process
group), load, DeepSpeed init, training loop, save and evaluation times that the trial recorded, its
training tokens and tokens/s, and the base and best test scores. ``raw`` retrains the first full
fine-tune node of the run with a plain loop: the same prepared data (``execute.data.prepare``), the
same encoding and batches (``execute.train.encode_split``/``collate``, the same sampler and seed), the
same loss on the answer positions, the same learning-rate schedule; fp32 weights, bf16 autocast,
fused AdamW, gradient clipping, no DeepSpeed and no Ray.

MFU counts the model FLOPs of the real (non-padding) tokens: 6 x N_body per token (N_body: the
parameters without the tied embedding), 6 x vocab x hidden per scored (answer) token (the output layer
runs only there), and 6 x layers x hidden x length^2 per sequence for causal attention; against the
datasheet dense bf16 peak (H100/H200 SXM: 989.4 TFLOP/s).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PEAK_BF16 = {"H100": 989.4e12, "H200": 989.4e12, "A100": 312e12}
LOOP_PARTS = ("loop_load_s", "loop_deepspeed_init_s", "loop_train_s", "loop_save_s")


def peak_flops() -> tuple[str, float | None]:
    import torch

    if not torch.cuda.is_available():
        return "cpu", None
    name = torch.cuda.get_device_name(0)
    return name, next((v for k, v in PEAK_BF16.items() if k in name), None)


def model_shape(base_dir: str) -> dict[str, int]:
    cfg = json.loads((Path(base_dir) / "config.json").read_text())
    d, layers, vocab = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
    inter, heads, kv = cfg["intermediate_size"], cfg["num_attention_heads"], cfg.get("num_key_value_heads")
    head_dim = d // heads
    attn = d * d * 2 + 2 * d * (kv or heads) * head_dim  # q, o; k, v (grouped)
    body = layers * (attn + 3 * d * inter + 2 * d) + d
    return {"hidden": d, "layers": layers, "vocab": vocab, "body_params": body}


def batch_flops(shape: dict[str, int], lengths: list[int], scored: int) -> float:
    """Model FLOPs (forward + backward) of one batch: its real tokens, its scored tokens, its attention."""
    d, layers = shape["hidden"], shape["layers"]
    return (6.0 * shape["body_params"] * sum(lengths) + 6.0 * shape["vocab"] * d * scored
            + 6.0 * layers * d * sum(n * n for n in lengths))


# --- run ---------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace, extra: list[str]) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "trex_ray.cli", "run", args.task, "--run-dir", args.run_dir, "--quiet",
           *extra]
    print("$", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, check=False)
    wall = time.perf_counter() - t0
    print(f"trex run exited {done.returncode} after {wall:.1f} s", flush=True)
    record = {"command": " ".join(["trex", *cmd[3:]]), "exit": done.returncode, "wall_s": round(wall, 1)}
    Path(args.run_dir, "gpu_real_run.json").write_text(json.dumps(record, indent=1))
    return record


# --- report ------------------------------------------------------------------------------------


def _task(run_dir: str) -> Any:
    from trex_ray.cli import resume_task

    return resume_task(run_dir, [])


def node_rows(run_dir: str) -> list[dict[str, Any]]:
    from trex_ray.report.text import describe
    from trex_ray.store.journal import read_tree

    rows = []
    for node in read_tree(run_dir):
        res = node.result
        if res is None:
            continue
        t = dict(res.provenance.get("timings") or {})
        inside = sum(t.get(k, 0.0) for k in LOOP_PARTS)
        row = {"id": node.id, "plan": describe(node), "status": node.status.value,
               "val": node.metric, "test": node.test_metric, "wall_s": round(res.cost.wall_seconds, 1),
               "prepare_s": t.get("prepare_s"), "eval_s": t.get("eval_s"),
               "train_s": t.get("train_s"), "steps": res.cost.train_steps, "tokens": res.cost.train_tokens}
        if t.get("train_s") is not None and inside:
            # what the trial spends before its loop runs: the Ray Train worker and its process group
            row["start_s"] = round(t["train_s"] - inside, 2)
        for k in LOOP_PARTS:
            if k in t:
                row[k] = t[k]
        if t.get("loop_train_s") and res.cost.train_tokens:
            row["tokens_per_s"] = round(res.cost.train_tokens / t["loop_train_s"], 1)
        rows.append(row)
    return rows


def cmd_report(args: argparse.Namespace) -> dict[str, Any]:
    from trex_ray.report.text import summary
    from trex_ray.store.journal import read_tree

    task = _task(args.run_dir)
    info = summary(read_tree(args.run_dir), task)
    out: dict[str, Any] = {
        "task": task.name, "model": task.model.id, "base_val": info["base_metric"],
        "base_test": info["base_test_metric"], "best": info["best"], "test_gain": info["test_gain"],
        "stop_reason": info["stop_reason"], "nodes": node_rows(args.run_dir),
    }
    for name in ("gpu_real_run.json", "gpu_real_raw.json"):
        path = Path(args.run_dir, name)
        if path.is_file():
            out[name.removesuffix(".json").removeprefix("gpu_real_")] = json.loads(path.read_text())
    raw = out.get("raw")
    if raw:
        node = next((r for r in out["nodes"] if r["id"] == raw["node"]), None)
        if node and node.get("tokens_per_s"):
            # the same node's data and batches: the FLOPs per real token that the raw loop counted
            per_token = raw["flops"] / raw["tokens"]
            out["trex_loop"] = {"node": node["id"], "tokens_per_s": node["tokens_per_s"],
                                "mfu": _mfu(node["tokens_per_s"], per_token, raw.get("peak")),
                                "over_raw": round(node["tokens_per_s"] / raw["tokens_per_s"], 3)}
    text = json.dumps(out, indent=1, default=str)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    print(text)
    return out


def _mfu(tokens_per_s: float | None, flops_per_token: float, peak: float | None) -> float | None:
    if not tokens_per_s or not peak:
        return None
    return round(tokens_per_s * flops_per_token / peak, 5)


# --- the raw loop ------------------------------------------------------------------------------


def first_full_node(run_dir: str) -> Any:
    from trex_ray.spec.plan import TrainMode
    from trex_ray.store.journal import read_tree

    for node in read_tree(run_dir):
        train = node.plan.train
        trained = node.result is not None and node.result.cost.train_steps > 0
        if train.mode is TrainMode.full and not train.warm_start and trained:
            return node
    raise SystemExit("the run has no finished full fine-tune node to repeat")


def cmd_raw(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from torch.utils.data import DataLoader, DistributedSampler
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trex_ray.execute.data import prepare
    from trex_ray.execute.models import materialize_base_model
    from trex_ray.execute.train import IGNORE, collate, encode_split, lr_lambda
    from trex_ray.runtime.paths import RunPaths

    task, node = _task(args.run_dir), first_full_node(args.run_dir)
    plan, recipe = node.plan, node.plan.train
    cache = RunPaths.for_run(task, args.run_dir).cache_dir
    base = materialize_base_model(task.model, cache)
    data = prepare(plan.data, task, cache, plan.seed, base_dir=base)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    torch.manual_seed(plan.seed)
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32).to(device)
    rows = encode_split(str(Path(data.path) / "train"), tokenizer, task.seq_len)
    sampler = DistributedSampler(rows, num_replicas=1, rank=0, seed=plan.seed)
    loader = DataLoader(rows, batch_size=recipe.batch_size, sampler=sampler,
                        collate_fn=lambda b: collate(b, tokenizer.pad_token_id))
    total = max(1, math.ceil(recipe.epochs * len(loader)))
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": recipe.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=recipe.learning_rate, fused=device == "cuda")
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(total, int(recipe.warmup_ratio * total)))
    shape = model_shape(str(base))
    body, head = model.get_decoder(), model.get_output_embeddings()
    batches = [b for _, b in zip(range(total), _cycle(loader, sampler), strict=False)]
    tokens = scored_tokens = 0
    flops = 0.0
    for b in batches:
        lengths = b["attention_mask"].sum(1).tolist()
        scored = int((b["labels"][:, 1:] != IGNORE).sum())
        tokens, scored_tokens = tokens + sum(lengths), scored_tokens + scored
        flops += batch_flops(shape, lengths, scored)

    def step(b: dict[str, torch.Tensor]) -> torch.Tensor:
        b = {k: v.to(device, non_blocking=True) for k, v in b.items()}
        with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
            hidden = body(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).last_hidden_state
            targets = b["labels"][:, 1:]
            keep = targets != IGNORE
            logits = head(hidden[:, :-1][keep]).float()
            loss = torch.nn.functional.cross_entropy(logits, targets[keep])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, recipe.grad_clip)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        return loss.detach()

    model.train()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    losses = [step(b) for b in batches]
    sync()
    seconds = time.perf_counter() - t0
    name, peak = peak_flops()
    out = {"node": node.id, "plan": f"full lr={recipe.learning_rate:g} batch={recipe.batch_size} "
           f"epochs={recipe.epochs:g}", "device": name, "steps": total, "tokens": tokens,
           "scored_tokens": scored_tokens, "flops": flops, "seconds": round(seconds, 3),
           "tokens_per_s": round(tokens / seconds, 1), "peak": peak,
           "mfu": round(flops / seconds / peak, 5) if peak else None,
           "mean_len": round(tokens / sum(len(b["attention_mask"]) for b in batches), 1),
           "loss_first": float(losses[0]), "loss_last": float(losses[-1]),
           "torch": torch.__version__}
    Path(args.run_dir, "gpu_real_raw.json").write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))
    return out


def _cycle(loader: Any, sampler: Any) -> Any:
    epoch = 0
    while True:
        sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        extra, argv = argv[argv.index("--") + 1:], argv[: argv.index("--")]
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["run", "raw", "report"])
    p.add_argument("--run-dir", required=True)
    p.add_argument("--task", default="tweet_sentiment")
    p.add_argument("--out")
    args = p.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.what == "run":
        return cmd_run(args, extra)["exit"]
    {"raw": cmd_raw, "report": cmd_report}[args.what](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
