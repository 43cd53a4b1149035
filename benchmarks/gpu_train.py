"""Training throughput: a trex DeepSpeed trial vs a raw PyTorch bf16 loop, tokens/s and MFU per model size.

Same random-init Llama-style models (SDPA attention), same random-token batches (seq 1024), same
micro-batch, same learning rate and gradient clipping. Variants:

* ``raw``       — plain PyTorch in this process: fp32 master weights, bf16 autocast, fused AdamW;
* ``ds_trex``   — the trex trial path: a Ray Train ``TorchTrainer`` worker (``RayTrainLauncher``) running
  DeepSpeed built by ``trex_ray.execute.engine._engine`` (trex's optimizer and ``ds_config``), ZeRO-2, bf16;
* ``ds_tuned``  — the same worker and ZeRO-2 bf16 engine with torch's fused AdamW and ZeRO's
  contiguous-gradient / overlap options (what trex's config could use);
* ``ds_autocast`` — ZeRO-2 with DeepSpeed's ``torch_autocast`` (fp32 weights, bf16 autocast, fused AdamW):
  the raw loop's numerics exactly;
* ``+compile``  — regional ``torch.compile`` of the decoder layers, for any variant.

``--profile SIZE:VARIANT`` adds a ``torch.profiler`` table of two steps (top kernels and ops by device
time) for that run, written next to the JSON.

MFU = tokens/s x (6 N + 12 L d S) / peak, N the parameters without the input embedding, peak the
datasheet dense bf16 rate (H100/H200 SXM: 989.4 TFLOP/s). ``ds_over_raw`` = ds_trex / raw tokens/s.
The JSON goes to ``$OUT/gpu_train.json`` (when ``OUT`` is set), ``benchmarks/results/`` and stdout.

    python benchmarks/gpu_train.py --quick --device cpu          # a plumbing check on CPU
    source .device/activate.sh && python benchmarks/gpu_train.py --json    # on the H100
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for _p in (str(ROOT), str(BENCH)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

PEAK_BF16 = {"H100": 989.4e12, "H200": 989.4e12, "A100": 312e12}
SIZES: dict[str, dict[str, int]] = {
    "tiny": {"hidden": 64, "layers": 2, "heads": 4, "inter": 128, "vocab": 512, "micro": 4, "seq": 64},
    "125m": {
        "hidden": 768,
        "layers": 12,
        "heads": 12,
        "inter": 2048,
        "vocab": 32000,
        "micro": 32,
        "seq": 1024,
    },
    "0.5b": {
        "hidden": 1536,
        "layers": 16,
        "heads": 12,
        "inter": 4096,
        "vocab": 32000,
        "micro": 16,
        "seq": 1024,
    },
    "1b": {
        "hidden": 2048,
        "layers": 16,
        "heads": 16,
        "inter": 5632,
        "vocab": 32000,
        "micro": 16,
        "seq": 1024,
    },
}
LR = 1e-4
CLIP = 1.0
VARIANTS = (
    "raw",
    "raw+compile",
    "ds_trex",
    "ds_trex+compile",
    "ds_tuned",
    "ds_tuned+compile",
    "ds_autocast",
    "ds_autocast+compile",
)


# --- the model, the data, the arithmetic -------------------------------------------------------
def build_model(size: str, device: str) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    s = SIZES[size]
    cfg = LlamaConfig(
        hidden_size=s["hidden"],
        num_hidden_layers=s["layers"],
        num_attention_heads=s["heads"],
        num_key_value_heads=s["heads"],
        intermediate_size=s["inter"],
        vocab_size=s["vocab"],
        max_position_embeddings=s["seq"],
        tie_word_embeddings=False,
        use_cache=False,
    )
    cfg._attn_implementation = "sdpa"
    torch.manual_seed(0)
    return LlamaForCausalLM(cfg).to(device)


def make_batches(size: str, n: int, device: str) -> list[Any]:
    import torch

    s = SIZES[size]
    gen = torch.Generator().manual_seed(1234)
    return [torch.randint(0, s["vocab"], (s["micro"], s["seq"]), generator=gen).to(device) for _ in range(n)]


def flops_per_token(model: Any, size: str) -> float:
    s = SIZES[size]
    n = sum(p.numel() for p in model.parameters()) - model.get_input_embeddings().weight.numel()
    return 6.0 * n + 12.0 * s["layers"] * s["hidden"] * s["seq"]


def peak_flops(device: str) -> tuple[str, float | None]:
    import torch

    if device != "cuda" or not torch.cuda.is_available():
        return "cpu", None
    name = torch.cuda.get_device_name(0)
    return name, next((v for k, v in PEAK_BF16.items() if k in name), None)


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def _timed(step: Any, batches: list[Any], warmup: int, steps: int, device: str) -> tuple[float, list[float]]:
    """Seconds per step after warm-up, and every step's loss. The timed steps run back to back with
    one wait for the GPU at the end (as a training loop that does not read the loss every step), so
    the host queues the next step's kernels while the GPU works."""
    losses = []
    for i in range(warmup):
        losses.append(step(batches[i % len(batches)]))
        _sync(device)
    t0 = time.perf_counter()
    for i in range(warmup, warmup + steps):
        losses.append(step(batches[i % len(batches)]))
    _sync(device)
    return (time.perf_counter() - t0) / max(1, steps), [float(x) for x in losses]


def _profile(step: Any, batches: list[Any], device: str, path: Path) -> None:
    import torch
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    _sync(device)
    with profile(activities=activities) as prof:
        for i in range(2):
            step(batches[i])
        _sync(device)
    key = "cuda_time_total" if device == "cuda" else "cpu_time_total"
    table = prof.key_averages().table(sort_by=key, row_limit=30, max_name_column_width=70)
    cpu = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15, max_name_column_width=70)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# two steps, sorted by {key}\n{table}\n\n# sorted by self CPU time\n{cpu}\n")
    del torch


def _compile_layers(model: Any) -> None:
    from trex_ray.execute.engine import compile_layers  # what a trex trial does (resources.compile)

    compile_layers(model)


def _measure(
    name: str,
    size: str,
    device: str,
    model: Any,
    step: Any,
    batches: list[Any],
    warmup: int,
    steps: int,
    profile_dir: str | None = None,
) -> dict[str, Any]:
    import torch

    s = SIZES[size]
    fpt = flops_per_token(model, size)
    sec, losses = _timed(step, batches, warmup, steps, device)
    if profile_dir:
        _profile(step, batches, device, Path(profile_dir) / f"profile-{size}-{name.replace('+', '_')}.txt")
    tokens = s["micro"] * s["seq"] / sec
    gpu, peak = peak_flops(device)
    mem = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
    return {
        "variant": name,
        "size": size,
        "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
        "micro_batch": s["micro"],
        "seq": s["seq"],
        "step_ms": round(1000 * sec, 2),
        "tokens_per_s": round(tokens, 1),
        "tflops": round(tokens * fpt / 1e12, 2),
        "mfu": round(tokens * fpt / peak, 4) if peak else None,
        "max_mem_gib": mem and round(mem, 2),
        "losses": [round(x, 5) for x in losses],
        "device": gpu,
    }


# --- raw PyTorch ---------------------------------------------------------------------------------
def _param_groups(model: Any, weight_decay: float = 0.0) -> list[dict[str, Any]]:
    params = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]


def run_raw(
    size: str, device: str, warmup: int, steps: int, compile_: bool = False, profile_dir: str | None = None
) -> dict[str, Any]:
    try:
        return _raw(size, device, warmup, steps, compile_, profile_dir)
    finally:
        _free(device)  # the model and optimizer went with _raw's frame


def _raw(
    size: str, device: str, warmup: int, steps: int, compile_: bool, profile_dir: str | None
) -> dict[str, Any]:
    import torch

    model = build_model(size, device)
    if compile_:
        _compile_layers(model)
    fused = device == "cuda"
    opt = torch.optim.AdamW(_param_groups(model), lr=LR, fused=fused, foreach=None if fused else True)
    batches = make_batches(size, 8, device)
    dtype = torch.bfloat16

    def step(x: Any) -> Any:
        with torch.autocast(device_type=device, dtype=dtype):
            loss = model(input_ids=x, labels=x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP, foreach=True)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.detach()

    return _measure(
        "raw+compile" if compile_ else "raw", size, device, model, step, batches, warmup, steps, profile_dir
    )


# --- DeepSpeed, on a Ray Train worker -------------------------------------------------------------
def _ds_engine(model: Any, size: str, kind: str, steps: int) -> Any:
    """kind: trex (trex's own _engine), tuned (bf16 + fused AdamW + ZeRO options), autocast (fp32 weights,
    DeepSpeed's torch_autocast in bf16, fused AdamW)."""
    import torch

    from trex_ray.execute.engine import _engine, ds_config
    from trex_ray.spec import TrainRecipe

    recipe = TrainRecipe(mode="full", learning_rate=LR, grad_clip=CLIP, zero_stage=2, warmup_ratio=0.0)
    micro = SIZES[size]["micro"]
    if kind == "trex":
        return _engine(model, recipe, micro, steps)
    import deepspeed

    config = ds_config(recipe, micro)
    config["zero_optimization"] = {
        "stage": 2,
        "contiguous_gradients": True,
        "overlap_comm": True,
        "reduce_bucket_size": 5e8,
        "allgather_bucket_size": 5e8,
    }
    if kind == "autocast":
        config["bf16"] = {"enabled": False}
        config["torch_autocast"] = {"enabled": torch.cuda.is_available(), "dtype": "bfloat16"}
    fused = torch.cuda.is_available()
    opt = torch.optim.AdamW(_param_groups(model), lr=LR, fused=fused, foreach=None if fused else True)
    engine, _, _, _ = deepspeed.initialize(model=model, optimizer=opt, config=config)
    return engine


def run_ds(
    size: str,
    device: str,
    warmup: int,
    steps: int,
    kind: str,
    compile_: bool = False,
    profile_dir: str | None = None,
) -> dict[str, Any]:
    try:
        return _ds(size, device, warmup, steps, kind, compile_, profile_dir)
    finally:
        _free(device)


def _ds(
    size: str, device: str, warmup: int, steps: int, kind: str, compile_: bool, profile_dir: str | None
) -> dict[str, Any]:
    model = build_model(size, device)
    if compile_:
        _compile_layers(model)
    engine = _ds_engine(model, size, kind, warmup + steps + 10)
    batches = make_batches(size, 8, device)

    def step(x: Any) -> Any:
        loss = engine(input_ids=x, labels=x).loss
        engine.backward(loss)
        engine.step()
        return loss.detach()

    name = f"ds_{kind}" + ("+compile" if compile_ else "")
    try:
        out = _measure(name, size, device, model, step, batches, warmup, steps, profile_dir)
        out["zero_stage"] = 2
        return out
    finally:
        if hasattr(engine, "destroy"):
            engine.destroy()


def ds_worker_loop(config: dict[str, Any]) -> dict[str, Any]:
    """Runs inside the Ray Train worker: every DeepSpeed variant of every size, one after another."""
    import deepspeed
    import torch

    from trex_ray.execute.launch import ensure_torch_extensions_dir

    ensure_torch_extensions_dir()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    deepspeed.init_distributed(dist_backend="nccl" if device == "cuda" else "gloo", verbose=False)
    rows = []
    for size in config["sizes"]:
        for variant in config["variants"]:
            kind, _, comp = variant.removeprefix("ds_").partition("+")
            if not variant.startswith("ds_") or (comp and size not in config["compile_sizes"]):
                continue
            prof = config["out"] if f"{size}:{variant}" in config["profile"] else None
            rows.append(
                _guard(run_ds, size, device, config["warmup"], config["steps"], kind, bool(comp), prof)
            )
    return {
        "rows": rows,
        "worker": {
            "device": device,
            "world": torch.distributed.get_world_size(),
            "cuda_visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
        },
    }


def _guard(fn: Any, size: str, *args: Any) -> dict[str, Any]:
    t0 = time.perf_counter()
    try:
        row = fn(size, *args)
    except Exception as exc:  # one failing variant must not lose the others' numbers
        row = {
            "size": size,
            "variant": getattr(fn, "__name__", "?"),
            "error": f"{type(exc).__name__}: {exc}"[:400],
            "trace": traceback.format_exc()[-1200:],
        }
    row["wall_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps({k: v for k, v in row.items() if k not in ("losses", "trace")}), flush=True)
    return row


def _free(device: str) -> None:
    import torch

    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


# --- the comparison ------------------------------------------------------------------------------
def compare(rows: list[dict[str, Any]], sizes: list[str]) -> dict[str, Any]:
    by = {(r["size"], r["variant"]): r for r in rows if "error" not in r}
    out: dict[str, Any] = {}
    for size in sizes:
        raw = by.get((size, "raw"))
        entry: dict[str, Any] = {}
        for name in VARIANTS:
            r = by.get((size, name))
            if r:
                entry[name] = {
                    "tokens_per_s": r["tokens_per_s"],
                    "mfu": r["mfu"],
                    "step_ms": r["step_ms"],
                    "max_mem_gib": r["max_mem_gib"],
                }
        for name in VARIANTS:  # each DeepSpeed variant against the raw loop compiled the same way
            base = by.get((size, "raw+compile" if name.endswith("+compile") else "raw"))
            if name.startswith("ds_") and (size, name) in by and base:
                entry[f"{name}_over_raw"] = round(by[(size, name)]["tokens_per_s"] / base["tokens_per_s"], 3)
                entry[f"{name}_loss_rel_diff_first10"] = _loss_diff(
                    base["losses"], by[(size, name)]["losses"]
                )
        if raw and (size, "ds_trex") in by:
            entry["ds_over_raw"] = entry["ds_trex_over_raw"]
        out[size] = entry
    return out


def _loss_diff(a: list[float], b: list[float], n: int = 10) -> float | None:
    pairs = [(x, y) for x, y in zip(a[:n], b[:n], strict=False) if math.isfinite(x) and math.isfinite(y)]
    return round(max(abs(x - y) / abs(x) for x, y in pairs), 4) if pairs else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the tiny model only, a few steps")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    ap.add_argument("--sizes", nargs="*", default=None)
    ap.add_argument("--compile-sizes", nargs="*", default=None, help="sizes that run +compile variants (all)")
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument(
        "--profile", nargs="*", default=[], help="SIZE:VARIANT runs to profile, e.g. 1b:raw+compile"
    )
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--cpus", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    args = ap.parse_args()
    sizes = args.sizes or (["tiny"] if args.quick else ["125m", "0.5b", "1b"])
    warmup = args.warmup if args.warmup is not None else (2 if args.quick else 6)
    steps = args.steps if args.steps is not None else (3 if args.quick else 20)
    compile_sizes = [s for s in (args.compile_sizes or sizes) if s in sizes] if args.device == "cuda" else []
    out_dir = os.environ.get("OUT") or str(BENCH / "results")
    t0 = time.perf_counter()
    rows = []
    for size in sizes:
        for variant in ("raw", "raw+compile"):
            if variant not in args.variants or (variant.endswith("+compile") and size not in compile_sizes):
                continue
            prof = out_dir if f"{size}:{variant}" in args.profile else None
            rows.append(_guard(run_raw, size, args.device, warmup, steps, variant.endswith("+compile"), prof))
    worker = _ray_ds(args, sizes, compile_sizes, warmup, steps, rows, out_dir)
    from common import machine

    summary = {
        "benchmark": "gpu_train",
        "mode": "quick" if args.quick else "full",
        "device": args.device,
        "sizes": sizes,
        "warmup": warmup,
        "steps": steps,
        "lr": LR,
        "grad_clip": CLIP,
        "by_size": compare(rows, sizes),
        "rows": [{k: v for k, v in r.items() if k != "trace"} for r in rows],
        "errors": [r for r in rows if "error" in r],
        "ray_worker": worker,
        "versions": _versions(),
        "wall_s": round(time.perf_counter() - t0, 1),
        "machine": machine(),
    }
    headline = {s: summary["by_size"][s].get("ds_over_raw") for s in sizes}
    summary["ds_over_raw"] = headline
    summary["mfu_raw"] = {s: summary["by_size"][s].get("raw", {}).get("mfu") for s in sizes}
    summary["mfu_ds_trex"] = {s: summary["by_size"][s].get("ds_trex", {}).get("mfu") for s in sizes}
    text = json.dumps(summary, separators=(",", ":") if args.json else (", ", ": "))
    if os.environ.get("OUT"):
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        Path(out_dir, "gpu_train.json").write_text(text + "\n")
    results = BENCH / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / f"gpu_train-{summary['mode']}-{args.device}.json").write_text(
        json.dumps(summary, indent=1) + "\n"
    )
    short = {
        k: summary[k]
        for k in ("benchmark", "mode", "device", "ds_over_raw", "mfu_raw", "mfu_ds_trex", "by_size", "wall_s")
    }
    short["errors"] = [f"{r['size']} {r['variant']}: {r['error']}" for r in summary["errors"]]
    print(json.dumps(short, separators=(",", ":")), flush=True)


def _ray_ds(
    args: Any,
    sizes: list[str],
    compile_sizes: list[str],
    warmup: int,
    steps: int,
    rows: list[dict[str, Any]],
    out_dir: str,
) -> dict[str, Any]:
    """All DeepSpeed variants in one Ray Train worker holding the GPU (the trex trial path)."""
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(BENCH), os.environ.get("PYTHONPATH", "")])
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    from trex_ray.runtime.train_launcher import RayTrainLauncher

    gpus = 1 if args.device == "cuda" else 0
    ray.init(
        num_cpus=args.cpus + 1,
        num_gpus=gpus,
        include_dashboard=False,
        log_to_driver=True,
        runtime_env={"env_vars": {"PYTHONPATH": os.environ["PYTHONPATH"]}},
    )
    config = {
        "sizes": sizes,
        "variants": [v for v in args.variants if v.startswith("ds_")],
        "compile_sizes": compile_sizes,
        "warmup": warmup,
        "steps": steps,
        "profile": args.profile,
        "out": out_dir,
    }
    if not config["variants"]:
        return {}
    launcher = RayTrainLauncher(
        num_workers=1,
        cpus_per_worker=args.cpus,
        gpus_per_worker=gpus,
        storage_path="/tmp/trex-gpu-train",
        name="gpu-train",
    )
    t0 = time.perf_counter()
    try:
        result = launcher.launch(ds_worker_loop, config)
    except Exception as exc:
        rows.append({"size": "*", "variant": "ray-train", "error": f"{type(exc).__name__}: {exc}"[:600]})
        return {"error": str(exc)[:600]}
    finally:
        ray.shutdown()
    rows.extend(result["rows"])
    return {**result["worker"], "launch_wall_s": round(time.perf_counter() - t0, 1)}


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for name in ("torch", "transformers", "deepspeed", "ray"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "absent"
    return out


if __name__ == "__main__":
    main()
