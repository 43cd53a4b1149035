"""Evaluation throughput: vLLM against HF generate on the demo's base model, and k LoRA nodes on one engine.

Measures, on ``builtin:tiny-llama`` (the base model of ``trex run sentiment``) and the sentiment
eval prompts:

1. generated tokens/s of HF ``generate`` at every batch size of a sweep (1..64; its best counts)
   and of vLLM (the evaluator's engine: eager, LoRA enabled, in its own process), every prompt
   forced to exactly ``--new-tokens`` tokens (HF ``min_new_tokens``, vLLM ``ignore_eos``);
2. the engine start (process + vLLM import + engine), paid once per base model per run;
3. evaluating k LoRA nodes (the task's eval set and answer length) on that one engine — one after
   another as nodes finish, and all at once in one merged batch — against one node (both with
   the engine start), and the same k nodes with HF (which loads and merges every adapter).

Run it when ``uptime`` shows a low load (the numbers are CPU-bound and the machine is shared)::

    .venv/bin/python benchmarks/eval_throughput.py --json          # about 3 minutes on 2 cores
    .venv/bin/python benchmarks/eval_throughput.py --quick --json  # about 1 minute

The last line of stdout with ``--json`` is one JSON object; logs go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from trex_ray.execute.data import render  # noqa: E402
from trex_ray.execute.evaluate import HFBackend  # noqa: E402
from trex_ray.execute.models import (  # noqa: E402
    _causal_lm,
    _new_lora,
    load_tokenizer,
    materialize_base_model,
    write_checkpoint_meta,
)
from trex_ray.execute.sources import load_source  # noqa: E402
from trex_ray.execute.vllm_backend import EngineSettings, VLLMBackend  # noqa: E402
from trex_ray.ftbench.registry import builtin_task  # noqa: E402
from trex_ray.spec import DataSource, TrainRecipe  # noqa: E402

log = logging.getLogger("eval_throughput")


def _prompts(n: int | None) -> tuple[list[str], int]:
    task = builtin_task("sentiment")
    ds = render(load_source(DataSource(id="builtin:sentiment", split="eval")), "plain", "sentiment")
    prompts = list(ds["prompt"])
    if n is not None:
        prompts = (prompts * (n // len(prompts) + 1))[:n]
    return prompts, task.max_new_tokens


def _adapters(base: Path, out: Path, k: int, rank: int) -> list[str]:
    tokenizer = load_tokenizer(base)
    paths = []
    for i in range(k):
        torch.manual_seed(100 + i)
        model = _new_lora(_causal_lm(base), TrainRecipe(mode="lora", lora_r=rank, lora_alpha=2 * rank))
        with torch.no_grad():
            for name, param in model.named_parameters():
                if "lora_B" in name:
                    param.normal_(0, 0.05)
        path = out / f"adapter-{i}"
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
        write_checkpoint_meta(path, True, base)
        paths.append(str(path))
    return paths


# --- HF generate ------------------------------------------------------------------------------


@torch.no_grad()
def _hf_tokens_per_s(model: Any, tokenizer: Any, prompts: list[str], new_tokens: int, batch: int) -> float:
    t0 = time.perf_counter()
    for i in range(0, len(prompts), batch):
        enc = tokenizer(prompts[i:i + batch], return_tensors="pt", padding=True)
        out = model.generate(**enc, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                             num_beams=1, pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=tokenizer.eos_token_id)
        tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    return len(prompts) * new_tokens / (time.perf_counter() - t0)


def hf_sweep(base: Path, prompts: list[str], new_tokens: int, batches: list[int]) -> dict[str, Any]:
    """HF at its best: every batch size with one thread and with every core; the best counts, taken twice."""
    model = _causal_lm(base).eval()
    tokenizer = load_tokenizer(base, padding_side="left")
    sweep: dict[tuple[int, int], float] = {}
    for threads in sorted({1, os.cpu_count() or 1}):
        torch.set_num_threads(threads)
        _hf_tokens_per_s(model, tokenizer, prompts[:8], 4, 8)  # warm-up
        for b in batches:
            sweep[(threads, b)] = _hf_tokens_per_s(model, tokenizer, prompts, new_tokens, b)
    best = max(sweep, key=lambda k: sweep[k])
    torch.set_num_threads(best[0])
    sweep[best] = max(sweep[best], _hf_tokens_per_s(model, tokenizer, prompts, new_tokens, best[1]))
    torch.set_num_threads(os.cpu_count() or 1)
    log.info("HF sweep (tokens/s by threads, batch size): %s", {k: round(v) for k, v in sweep.items()})
    return {"tokens_per_s_by_threads_batch": {f"{t}x{b}": round(v, 1) for (t, b), v in sweep.items()},
            "best_threads": best[0], "best_batch": best[1], "best_tokens_per_s": round(sweep[best], 1)}


# --- vLLM -------------------------------------------------------------------------------------


def vllm_throughput(engine: VLLMBackend, base: str, prompts: list[str], new_tokens: int) -> dict[str, Any]:
    engine.generate_many(base, [(prompts[:8], 4, None)])  # warm-up
    best = 0.0
    for _ in range(3):
        t0 = time.perf_counter()
        engine.generate_many(base, [(prompts, new_tokens, None)], sampling={"ignore_eos": True})
        best = max(best, len(prompts) * new_tokens / (time.perf_counter() - t0))
    log.info("vLLM: %.0f tokens/s", best)
    return {"tokens_per_s": round(best, 1)}


def lora_nodes(engine: VLLMBackend, base: str, start_s: float, eval_prompts: list[str], max_new: int,
               seq: list[str], merged: list[str]) -> dict[str, Any]:
    starts_before = len(engine.stats["engine_starts"])
    node_s = []
    for adapter in seq:  # nodes finishing one after another
        t0 = time.perf_counter()
        engine.generate_many(base, [(eval_prompts, max_new, adapter)])
        node_s.append(time.perf_counter() - t0)
    t0 = time.perf_counter()  # k nodes finishing at once: one merged engine batch (new adapters)
    engine.generate_many(base, [(eval_prompts, max_new, a) for a in merged])
    merged_s = time.perf_counter() - t0
    one, k_seq, k_merged = start_s + node_s[0], start_s + sum(node_s), start_s + merged_s
    log.info("LoRA nodes: one %.1f s, %d one by one %.1f s, %d merged %.1f s (engine start %.1f s)", one,
             len(seq), k_seq, len(merged), k_merged, start_s)
    return {
        "k": len(seq), "eval_prompts": len(eval_prompts), "max_new_tokens": max_new,
        "engine_start_s": round(start_s, 2), "node_eval_s": [round(s, 3) for s in node_s],
        "one_node_s": round(one, 2), "k_nodes_one_by_one_s": round(k_seq, 2),
        "k_nodes_merged_s": round(k_merged, 2),
        "ratio_one_by_one": round(k_seq / one, 3), "ratio_merged": round(k_merged / one, 3),
        "engine_starts_during_k_nodes": len(engine.stats["engine_starts"]) - starts_before,
    }


def hf_lora_nodes(base: str, adapters: list[str], eval_prompts: list[str], max_new: int) -> dict[str, Any]:
    hf, node_s = HFBackend(), []
    for adapter in adapters:
        t0 = time.perf_counter()
        hf.generate(base, adapter, eval_prompts, max_new, 64)
        node_s.append(time.perf_counter() - t0)
    return {"node_eval_s": [round(s, 3) for s in node_s], "one_node_s": round(node_s[0], 2),
            "k_nodes_s": round(sum(node_s), 2)}


# --- main -------------------------------------------------------------------------------------


def vllm_variant(base: str, prompts: list[str], new_tokens: int, lora: bool,
                 reserve: str | None) -> dict[str, Any]:
    """Throughput of one more engine configuration (its own engine, ended after)."""
    saved = os.environ.get("VLLM_CPU_NUM_OF_RESERVED_CPU")
    if reserve is not None:
        os.environ["VLLM_CPU_NUM_OF_RESERVED_CPU"] = reserve  # read by the host process at its start
    engine = VLLMBackend(EngineSettings(max_lora_rank=16 if lora else 0), keep=[base])
    try:
        engine.warm(base)
        result = vllm_throughput(engine, base, prompts, new_tokens)
    finally:
        engine.close()
        if saved is None:
            os.environ.pop("VLLM_CPU_NUM_OF_RESERVED_CPU", None)
        else:
            os.environ["VLLM_CPU_NUM_OF_RESERVED_CPU"] = saved
    return {**result, "lora": lora, "cores": "all" if reserve == "0" else "all but one"}


def run(args: argparse.Namespace) -> dict[str, Any]:
    cache = Path(os.environ.get("TREX_CACHE_DIR", REPO / ".cache" / "bench"))
    task = builtin_task("sentiment")
    if args.model:
        task = task.model_copy(update={"model": task.model.model_copy(update={"id": args.model})})
    base = materialize_base_model(task.model, cache).resolve()
    prompts, _ = _prompts(args.prompts)
    eval_prompts, max_new = _prompts(None)
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="eval-bench-"))
    adapters = _adapters(base, work, 2 * args.k, rank=16)
    hf = hf_sweep(base, prompts, args.new_tokens, args.batches)
    hf_nodes = hf_lora_nodes(str(base), adapters[:args.k], eval_prompts, max_new)
    engine = VLLMBackend(EngineSettings(), keep=[str(base)])
    try:
        t0 = time.perf_counter()
        engine.warm(str(base))
        start_s = time.perf_counter() - t0
        start = engine.stats["engine_starts"][0]
        vllm = vllm_throughput(engine, str(base), prompts, args.new_tokens)
        nodes = lora_nodes(engine, str(base), start_s, eval_prompts, max_new, adapters[:args.k],
                           adapters[args.k:])
    finally:
        engine.close()
    vllm["engine"] = {"start_s": round(start_s, 2), "vllm_import_s": round(start["import_s"], 2),
                      "engine_init_s": round(start["start_s"], 2), "device": start.get("device"),
                      "mode": "eager, LoRA enabled (max_lora_rank 16), 1 GiB KV cache, in-process engine"}
    variants = [] if args.quick else [
        vllm_variant(str(base), prompts, args.new_tokens, lora=False, reserve=None),
        vllm_variant(str(base), prompts, args.new_tokens, lora=False, reserve="0"),
    ]
    best_hf = hf["best_tokens_per_s"]
    for v in variants:
        v["speedup_over_best_hf"] = round(v["tokens_per_s"] / best_hf, 3)
    return {
        "benchmark": "eval_throughput", "quick": args.quick, "model": task.model.id, "model_dir": str(base),
        "prompts": len(prompts), "new_tokens": args.new_tokens, "cpu_count": os.cpu_count(),
        "machine": platform.machine(), "torch": torch.__version__,
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()], "hf": hf, "vllm": vllm,
        "speedup_vllm_over_best_hf": round(vllm["tokens_per_s"] / best_hf, 3), "vllm_variants": variants,
        "lora_nodes": nodes, "hf_lora_nodes": hf_nodes,
    }


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer prompts and tokens, a shorter sweep")
    p.add_argument("--json", action="store_true", help="end with one JSON line on stdout")
    p.add_argument("--prompts", type=int, help="prompts for the throughput test (default 128, quick 64)")
    p.add_argument("--new-tokens", type=int, help="tokens generated per prompt (default 32, quick 16)")
    p.add_argument("--k", type=int, default=8, help="LoRA nodes on one engine (default 8)")
    p.add_argument("--model", help="another base model (default: the demo's, builtin:tiny-llama)")
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    args.prompts = args.prompts or (64 if args.quick else 128)
    args.new_tokens = args.new_tokens or (16 if args.quick else 32)
    args.batches = [1, 8, 32, 64] if args.quick else [1, 2, 4, 8, 16, 32, 64]
    result = run(args)
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
