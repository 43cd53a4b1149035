"""``run_plan(plan, ctx) -> Result``: the one pure entry point of execution.

Materialize the base model, prepare the data, train (through ``ctx.launcher``) unless the plan's
mode is ``none``, evaluate, and describe it all in a ``Result``. A failing trial never raises:
it becomes ``Outcome.failed`` with a ``FailureKind`` and a one-line error.

Example::

    ctx = RunContext(task=builtin_task("sentiment"), node_id="n1", work_dir=Path("runs/n1"),
                     cache_dir=Path(".cache/trex"), launcher=InProcessLauncher())
    result = run_plan(Plan(train=TrainRecipe(mode="full", learning_rate=3e-3)), ctx)
"""

from __future__ import annotations

import importlib.metadata
import logging
import platform
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import torch

from trex_ray.execute.context import RunContext
from trex_ray.execute.eval_service import backend_for
from trex_ray.execute.evaluate import evaluate
from trex_ray.execute.models import materialize_base_model
from trex_ray.execute.tracking import tb_node_scored, tb_node_tested
from trex_ray.execute.train import train_loop
from trex_ray.spec import Cost, FailureKind, Outcome, Plan, Progress, Result, TrainMode

logger = logging.getLogger(__name__)

PACKAGES = ("torch", "transformers", "deepspeed", "peft", "datasets", "ray")


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "absent"
    return found


def provenance(plan: Plan) -> dict[str, Any]:
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({platform.machine()})"
    return {"seed": plan.seed, "plan_hash": plan.hash, "versions": versions(),
            "hostname": socket.gethostname(), "device": device}


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__


def _resources(ctx: RunContext) -> float:
    r = ctx.task.resources
    return r.num_workers * (r.gpus_per_worker if r.gpus_per_worker else r.cpus_per_worker)


def _parent(plan: Plan, ctx: RunContext) -> tuple[str | None, bool]:
    if plan.train.warm_start and ctx.parent_checkpoint:
        return str(ctx.parent_checkpoint), bool(ctx.parent_adapter)
    return None, False


def train_config(plan: Plan, ctx: RunContext, base: Path, data_path: Path) -> dict[str, Any]:
    """What ``train_loop`` needs: paths and numbers, plus the progress callback."""
    parent, parent_adapter = _parent(plan, ctx)
    checkpoint = Path(ctx.work_dir) / "checkpoint"
    if checkpoint.exists():  # a retried node starts clean
        shutil.rmtree(checkpoint)
    return {
        "base_dir": str(base), "train_path": str(data_path / "train"), "val_path": str(data_path / "val"),
        "output_dir": str(checkpoint), "mode": plan.train.mode.value,
        "recipe": plan.train.model_dump(mode="json"), "seed": plan.seed,
        "max_seq_len": ctx.task.seq_len, "parent_checkpoint": parent,
        "parent_adapter": parent_adapter, "progress": ctx.on_progress,
        "num_threads": max(1, int(ctx.task.resources.cpus_per_worker)),
        "compile": ctx.task.resources.compile,
        "tensorboard_dir": str(ctx.tensorboard_dir) if ctx.tensorboard_dir else None,
        "accumulation": ctx.task.resources.gradient_accumulation_steps,
        "gradient_checkpointing": ctx.task.resources.gradient_checkpointing,
        "zero_stage": ctx.task.resources.zero_stage, "offload": ctx.task.resources.offload,
    }


def _train(plan: Plan, ctx: RunContext, base: Path, data_path: Path) -> dict[str, Any]:
    if plan.train.mode is TrainMode.none:
        parent, adapter = _parent(plan, ctx)
        return {"checkpoint": parent, "adapter": adapter, "steps": 0, "tokens": 0, "curve": []}
    return ctx.launcher.launch(train_loop, train_config(plan, ctx, base, data_path))


def _evaluate(plan: Plan, ctx: RunContext, base: Path, data: Any, trained: dict[str, Any],
              split: str = "val") -> dict[str, Any]:
    """Score the node on the validation split (what the search sees) or the test split."""
    backend = backend_for(plan, ctx, str(base))  # vLLM through the run's evaluator, or HF
    metric, metrics, samples = evaluate(
        backend, str(base), trained.get("checkpoint"), bool(trained.get("adapter")),
        data.val if split == "val" else data.eval, ctx.task.metric.name.value,
        plan.eval.max_new_tokens or ctx.task.new_tokens, plan.eval.batch_size,
        labels=data.stats.get("labels"),
    )
    return {"metric": metric, "metrics": metrics, "samples": samples, "eval_backend": backend.name}


def _outcome(trained: dict[str, Any]) -> tuple[Outcome, FailureKind | None, str | None]:
    if trained.get("diverged"):
        last = trained["curve"][-1] if trained.get("curve") else {}
        step, loss = last.get("step", "?"), last.get("train_loss", float("nan"))
        return Outcome.failed, FailureKind.diverged, (
            f"loss diverged at step {step} (train loss {loss:.4g}); lower the learning rate or raise warmup")
    if trained.get("stopped"):
        return Outcome.stopped, None, None
    return Outcome.finished, None, None


def _execute(plan: Plan, ctx: RunContext, timings: dict[str, float]) -> dict[str, Any]:
    from trex_ray.execute.data import prepare

    t0 = time.perf_counter()
    base = materialize_base_model(ctx.task.model, Path(ctx.cache_dir))
    data = prepare(plan.data, ctx.task, Path(ctx.cache_dir), plan.seed, base_dir=base)
    timings["prepare_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    trained = _train(plan, ctx, base, Path(data.path))
    timings["train_s"] = time.perf_counter() - t0
    timings.update({f"loop_{k}": v for k, v in (trained.get("timings") or {}).items()})
    if trained.get("resumed_from_step") is not None:  # a worker died; the trial went on from a checkpoint
        timings["resumed_from_step"] = trained["resumed_from_step"]
        timings["steps_redone"] = trained["steps_redone"]
    outcome, failure, error = _outcome(trained)
    fields: dict[str, Any] = {"outcome": outcome, "failure": failure, "error": error}
    if outcome is Outcome.finished:
        t0 = time.perf_counter()
        fields.update(_evaluate(plan, ctx, base, data, trained))
        timings["eval_s"] = time.perf_counter() - t0
        fields["checkpoint"] = trained.get("checkpoint") if plan.train.mode is not TrainMode.none else None
    fields["curve"] = [Progress.model_validate(p) for p in trained.get("curve", [])]
    fields["steps"], fields["tokens"] = int(trained.get("steps", 0)), int(trained.get("tokens", 0))
    return fields


def run_plan(plan: Plan, ctx: RunContext) -> Result:
    """Run one experiment; never raises for a failing trial."""
    Path(ctx.work_dir).mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    timings: dict[str, float] = {}
    try:
        fields = _execute(plan, ctx, timings)
    except Exception as exc:  # noqa: BLE001 - a failing trial is a result, not a crash
        logger.warning("node %s failed: %s", ctx.node_id, one_line(exc), exc_info=True)
        fields = {"outcome": Outcome.failed, "failure": FailureKind.error, "error": one_line(exc)}
    wall = time.perf_counter() - start
    steps, tokens = fields.pop("steps", 0), fields.pop("tokens", 0)
    cost = Cost(wall_seconds=wall, compute_seconds=wall * _resources(ctx), train_steps=steps,
                train_tokens=tokens)
    resumed = {k: timings.pop(k) for k in ("resumed_from_step", "steps_redone") if k in timings}
    rounded = {k: round(v, 3) for k, v in timings.items()}
    prov = {**provenance(plan), "node_id": ctx.node_id, "timings": rounded, **resumed}
    result = Result(cost=cost, provenance=prov, **fields)
    if result.ok and ctx.tensorboard_dir:
        _quietly(tb_node_scored, ctx.tensorboard_dir, plan, ctx.task.metric.name.value, result)
    return result


def _quietly(fn: Any, *args: Any) -> None:
    """Tracking never fails a node: an error is one warning."""
    try:
        fn(*args)
    except Exception as exc:  # noqa: BLE001
        logger.warning("tracking: %s", one_line(exc))


def score_test(plan: Plan, ctx: RunContext, checkpoint: str | None, adapter: bool) -> dict[str, Any]:
    """A finished node's score on the test split, which the search never sees: run once the search has
    ranked its nodes on validation, for the base model and the best of them. Raises on failure."""
    from trex_ray.execute.data import prepare

    t0 = time.perf_counter()
    base = materialize_base_model(ctx.task.model, Path(ctx.cache_dir))
    data = prepare(plan.data, ctx.task, Path(ctx.cache_dir), plan.seed, base_dir=base)
    scored = _evaluate(plan, ctx, base, data, {"checkpoint": checkpoint, "adapter": adapter}, split="test")
    if ctx.tensorboard_dir:
        _quietly(tb_node_tested, ctx.tensorboard_dir, ctx.task.metric.name.value,
                 {"test_metric": scored["metric"]})
    return {"test_metric": scored["metric"], "test_metrics": scored["metrics"], "samples": scored["samples"],
            "eval_backend": scored["eval_backend"], "rows": len(data.eval),
            "seconds": round(time.perf_counter() - t0, 3)}
