"""The DeepSpeed engine of a trial: its config (ZeRO stage, accumulation, offload), optimizer and lr
schedule; regional compilation of the decoder layers.

Example::

    engine = build_engine(model, recipe, micro=8, total=100, memory={"accumulation": 2, "stage": 2})
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch

from trex_ray.spec import TrainRecipe

COMPILE_MIN_STEPS = 300  # compiling the layers pays for itself on a GPU from about here


def lr_lambda(total: int, warmup: int) -> Callable[[int], float]:
    """Linear warmup to the peak learning rate, then linear decay to zero at ``total`` steps."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


def _optimizer(model: torch.nn.Module, recipe: TrainRecipe) -> torch.optim.Optimizer:
    """AdamW without decay on biases and norms; fused on a GPU (one kernel for the whole update)."""
    params = [p for p in model.parameters() if p.requires_grad]
    matrix = [len(getattr(p, "ds_shape", p.shape)) >= 2 for p in params]  # a ZeRO-3 partition is 1-D
    decayed = [p for p, m in zip(params, matrix, strict=True) if m]
    groups = [
        {"params": decayed, "weight_decay": recipe.weight_decay},
        {"params": [p for p, m in zip(params, matrix, strict=True) if not m], "weight_decay": 0.0},
    ]
    fused = bool(params) and params[0].is_cuda
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=recipe.learning_rate,
                             fused=fused, foreach=False if not fused else None)


def should_compile(setting: bool | str, steps: int) -> bool:
    """``True`` / ``False``, or ``"auto"``: on a GPU, for runs long enough to repay the compile time."""
    if setting == "auto":
        return torch.cuda.is_available() and steps >= COMPILE_MIN_STEPS
    return setting is True


def compile_layers(model: torch.nn.Module) -> int:
    """Regional compilation: each decoder layer on its own (fast to compile, same graph reused)."""
    layers = [m for m in model.modules() if type(m).__name__.endswith("DecoderLayer")]
    for layer in layers:
        layer.compile()
    return len(layers)


def ds_config(recipe: TrainRecipe, micro_batch: int, accumulation: int = 1, stage: int | None = None,
              offload: str = "none", hidden_size: int | None = None) -> dict[str, Any]:
    """``hidden_size``: under ZeRO-3, buckets sized by the model as transformers' Trainer sizes its
    ``auto`` ones (DeepSpeed's defaults, 5e8 elements, are 2 GB of fp32 buffers whatever the model), and
    the optimizer's sub-groups too: DeepSpeed steps the optimizer on one flat tensor per sub-group (1e9
    elements by default: all of a small model's partition), and each step copies the sub-group's
    gradients into a new flat tensor and AdamW makes two temporaries of its size, so at the default
    a worker briefly holds three more copies of its partition; at ``hidden²`` elements they are a layer's
    worth (``benchmarks/zero3_memory.py``)."""
    zero: dict[str, Any] = {"stage": recipe.zero_stage if stage is None else stage}
    if zero["stage"] == 3 and hidden_size:
        zero.update({"reduce_bucket_size": hidden_size * hidden_size,
                     "stage3_prefetch_bucket_size": int(0.9 * hidden_size * hidden_size),
                     "stage3_param_persistence_threshold": 10 * hidden_size,
                     "sub_group_size": hidden_size * hidden_size})
    if offload in ("optimizer", "all"):
        zero["offload_optimizer"] = {"device": "cpu"}
    if offload == "all":
        zero["offload_param"] = {"device": "cpu"}
    return {
        "train_micro_batch_size_per_gpu": micro_batch,
        "gradient_accumulation_steps": accumulation,
        "gradient_clipping": recipe.grad_clip,
        "zero_optimization": zero,
        "zero_allow_untested_optimizer": True,
        "zero_force_ds_cpu_optimizer": False,  # offload keeps our AdamW (no DeepSpeedCPUAdam build)
        "bf16": {"enabled": torch.cuda.is_available()},
        "steps_per_print": 1 << 30,
        "wall_clock_breakdown": False,
    }


@contextlib.contextmanager
def partitioned_load(config: dict[str, Any] | None) -> Iterator[None]:
    """While open, transformers builds models under ``deepspeed.zero.Init`` (``HfDeepSpeedConfig``):
    ZeRO-3 splits each parameter across the workers as it is loaded, so that no worker holds the whole
    model. Closed at once after the load: the setting is global to transformers, and a model loaded
    later in this process (an evaluation) must load whole. ``None``: an ordinary load."""
    if config is None:
        yield
        return
    from transformers.integrations import HfDeepSpeedConfig

    keep = HfDeepSpeedConfig(config)  # transformers holds only a weak reference to it
    try:
        yield
    finally:
        del keep


def _engine(model: torch.nn.Module, recipe: TrainRecipe, micro: int, total: int,
            memory: dict[str, Any] | None = None, placed: bool = False) -> Any:
    """``total``: optimizer steps; ``memory``: ``ds_config``'s accumulation, stage and offload;
    ``placed``: the model was built partitioned on its device (``partitioned_load``)."""
    import deepspeed

    if torch.cuda.is_available() and not placed:  # the optimizer is made on the GPU, so it can be fused
        model.to(torch.device("cuda", torch.cuda.current_device()))
    optimizer = _optimizer(model, recipe)
    warmup = int(recipe.warmup_ratio * total)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(total, warmup))
    config = ds_config(recipe, micro, **(memory or {}))
    engine, _, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, lr_scheduler=scheduler,
                                           config=config)
    if config["zero_optimization"]["stage"] == 3:
        alias_fp32_master(engine.optimizer)
    return engine


def alias_fp32_master(zero3: Any) -> int:
    """Let ZeRO-3's fp32 master partitions be the training partitions themselves where those are fp32
    already (a CPU trial, or a GPU one without bf16): DeepSpeed means to alias them then, but its check
    compares a tensor's device with a device *name* (``torch.device("cpu") == "cpu"`` is False), so it
    keeps a second fp32 copy of every partition. Its step copies master to training partition after the
    update, a no-op on an alias. Returns the bytes freed."""
    freed = 0
    lows = getattr(zero3, "fp16_partitioned_groups_flat", None) or []
    for low, master in zip(lows, getattr(zero3, "fp32_partitioned_groups_flat", None) or [], strict=False):
        if (low is None or master is low or master.dtype != low.dtype or master.device != low.device
                or master.numel() != low.numel() or master.data_ptr() == low.data_ptr()):
            continue
        freed += master.numel() * master.element_size()
        master.data = low.data
    return freed
