"""Per-worker peak memory of a 2-worker trial of the embedded real model on CPU (gloo): ZeRO-0 against
ZeRO-3 with the model partitioned as it loads (``deepspeed.zero.Init`` through ``HfDeepSpeedConfig``).

Each worker is a process running the trial's own loop (``execute/train.py::_Run``: load, DeepSpeed
init, training steps with validation-loss reports), full fine-tuning SmolLM2-135M in fp32. Memory is
the process's peak resident set through training (what ``ru_maxrss`` says), also split by phase (load,
DeepSpeed init, forward, backward, optimizer step, validation: the kernel's high-water mark is reset at
each phase's start), with the resident set at each phase's end split into anonymous and file-backed pages
and the bytes malloc holds (so that memory freed but kept by the allocator shows apart). The final
checkpoint save is left out (ZeRO-3 gathers the whole model on rank 0 to save it). Also reported: the
peak less the resident set before the model loads (torch, DeepSpeed and the data: the same in both),
i.e. what the model costs. The model and data come from ``$TREX_HOME`` (else ``<repo>/.cache``).

Both stages run the same trial settings: 4 rows per worker per step, sequences of at most 128 tokens,
gradient checkpointing (``resources.gradient_checkpointing``, the memory setting a user would pick;
``--no-gradient-checkpointing`` for without) and glibc's mmap threshold fixed (``train_loop`` does it for
every stage).

    PYTHONPATH=. python benchmarks/zero3_memory.py [--steps 4] [--out benchmarks/results/zero3_memory.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch.multiprocessing as mp

REPO = Path(__file__).resolve().parents[1]


def _status_mib() -> dict[str, float]:
    """The process's resident set now (VmRSS: anonymous + file-backed pages) and its high-water mark."""
    values: dict[str, float] = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                values[key] = int(rest.split()[0]) / 1024
    return values


def _rss_mib() -> float:
    return _status_mib().get("VmRSS", float("nan"))


def _malloc_in_use_mib() -> float | None:
    """Bytes glibc's malloc has handed out and not had back (mallinfo2: arenas + mmapped chunks): what the
    program holds, as against what the resident set keeps of freed memory."""
    import ctypes

    class _Info(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                                   "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

    try:
        fn = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return None
    fn.restype = _Info
    info = fn()
    return (info.uordblks + info.hblkhd) / 2**20


class _Probe:
    """Per-phase peaks of the resident set: at each phase's start the kernel's high-water mark is reset
    (``/proc/self/clear_refs`` 5), so VmHWM at its end is that phase's peak; the run's peak is the largest
    of them (what ``ru_maxrss`` would say, but split by phase). Phases: load, deepspeed_init, forward,
    backward, optimizer (``engine.step``), validation, other (the rest of the loop)."""

    def __init__(self) -> None:
        self.phase, self.depth = "before_model", 0
        self.peaks: dict[str, float] = {}
        self.ends: dict[str, dict[str, float | None]] = {}

    def _close(self) -> None:
        now = _status_mib()
        self.peaks[self.phase] = max(self.peaks.get(self.phase, 0.0), now["VmHWM"])
        self.ends[self.phase] = {"rss": round(now["VmRSS"], 1), "anon": round(now["RssAnon"], 1),
                                 "file": round(now["RssFile"], 1),
                                 "malloc_in_use": _round(_malloc_in_use_mib())}
        Path("/proc/self/clear_refs").write_text("5")

    def wrap(self, fn: Any, phase: str) -> Any:
        def inner(*args: Any, **kwargs: Any) -> Any:
            if self.depth:  # inside another phase (the validation pass's forward)
                return fn(*args, **kwargs)
            self._close()
            self.phase, self.depth = phase, 1
            try:
                return fn(*args, **kwargs)
            finally:
                self._close()
                self.phase, self.depth = "other", 0
        return inner

    def result(self) -> dict[str, Any]:
        self._close()
        peak = max(self.peaks.values())
        return {"peak_mib": round(peak, 1), "peak_phase": max(self.peaks, key=self.peaks.__getitem__),
                "phase_peaks_mib": {k: round(v, 1) for k, v in self.peaks.items()},
                "phase_ends_mib": self.ends}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _worker(rank: int, world: int, port: int, config: dict[str, Any], out: str) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank)})
    import torch

    from trex_ray.execute.launch import init_distributed, return_freed_memory, seed_all

    torch.set_num_threads(1)  # the worker's setup, as train_loop does it
    return_freed_memory()
    seed_all(0)
    rank, world = init_distributed()
    import trex_ray.execute.train as train

    probe = _Probe()
    before = _rss_mib()
    train.load_for_training = probe.wrap(train.load_for_training, "load")
    train._engine = probe.wrap(train._engine, "deepspeed_init")
    run = train._Run(config, rank, world)
    run.build()
    after_build = max(probe.peaks.values())
    run.loss = probe.wrap(run.loss, "forward")
    run.val_loss = probe.wrap(run.val_loss, "validation")
    run.engine.backward = probe.wrap(run.engine.backward, "backward")
    run.engine.step = probe.wrap(run.engine.step, "optimizer")
    status = run.run()
    phases = probe.result()
    Path(out, f"rank{rank}.json").write_text(json.dumps({
        "rank": rank, "status": status, "steps": run.step, "before_model_mib": round(before, 1),
        "peak_after_load_and_init_mib": round(after_build, 1),
        "model_cost_mib": round(phases["peak_mib"] - before, 1),
        "final_train_loss": run.curve[-1].train_loss, "final_val_loss": run.curve[-1].val_loss,
        "train_s": round(run.timings["train_s"], 1), **phases}))


def _prepare(rows: int) -> tuple[str, str]:
    from trex_ray.execute.data import prepare
    from trex_ray.execute.models import materialize_base_model
    from trex_ray.ftbench.registry import builtin_task
    from trex_ray.spec import DataOp, DataRecipe

    task = builtin_task("tweet_sentiment")
    cache = Path(os.environ.get("TREX_HOME") or REPO / ".cache")
    base = materialize_base_model(task.model, cache)
    recipe = DataRecipe(ops=[DataOp(op="subsample", params={"n": rows})])
    data = prepare(recipe, task, cache, 0, base_dir=base)
    return str(base), str(data.path)


def measure(stage: int, steps: int, base: str, data: str, checkpointing: bool) -> list[dict[str, Any]]:
    from trex_ray.execute.launch import free_port
    from trex_ray.spec import TrainRecipe

    batch = 8  # 4 rows per worker per step
    recipe = TrainRecipe(mode="full", learning_rate=1e-4, epochs=1, batch_size=batch, zero_stage=stage,
                         eval_every_fraction=0.5)
    with tempfile.TemporaryDirectory(prefix="trex-zero3-") as tmp:
        config = {"base_dir": base, "train_path": f"{data}/train", "val_path": f"{data}/val",
                  "output_dir": f"{tmp}/ckpt", "mode": "full", "recipe": recipe.model_dump(mode="json"),
                  "seed": 0, "max_seq_len": 128, "val_max_examples": 8, "num_threads": 1,
                  "gradient_checkpointing": checkpointing}  # as run_plan passes resources.*
        mp.spawn(_worker, args=(2, free_port(), config, tmp), nprocs=2, join=True)
        return [json.loads(Path(tmp, f"rank{r}.json").read_text()) for r in range(2)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps (2 workers x 4 rows each)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "zero3_memory.json"))
    parser.add_argument("--stages", default="0,3", help="stages to measure now; others are kept from --out")
    parser.add_argument("--no-gradient-checkpointing", dest="checkpointing", action="store_false",
                        help="keep every layer's activations (resources.gradient_checkpointing: false)")
    args = parser.parse_args()
    base, data = _prepare(args.steps * 8)
    result: dict[str, Any] = {"model": "builtin:smollm2-135m", "workers": 2, "backend": "gloo (CPU)",
                              "dtype": "float32", "mode": "full", "steps": args.steps,
                              "gradient_checkpointing": args.checkpointing}
    earlier = json.loads(Path(args.out).read_text()) if Path(args.out).is_file() else {}
    if all(earlier.get(k) == result[k] for k in ("steps", "gradient_checkpointing")):  # same trial settings
        result |= {k: v for k, v in earlier.items() if k.startswith("zero")}
    for stage in (int(s) for s in args.stages.split(",")):
        result[f"zero{stage}"] = measure(stage, args.steps, base, data, args.checkpointing)
        print(f"ZeRO-{stage}:", json.dumps(result[f"zero{stage}"]), flush=True)
    for key in ("peak_mib", "model_cost_mib"):
        z0 = max(r[key] for r in result["zero0"])
        z3 = max(r[key] for r in result["zero3"])
        result[f"ratio_{key}"] = round(z3 / z0, 3)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k.startswith("ratio")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
