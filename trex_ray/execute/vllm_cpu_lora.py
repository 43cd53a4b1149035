"""Faster LoRA kernels for vLLM's CPU build: one matmul per adapter in the batch.

vLLM's CPU LoRA ops (``vllm.lora.ops.torch_ops``) gather the whole adapter matrix once per token
(``weights[indices]``, then an ``einsum``): a prefill of a few thousand tokens copies thousands of
weight matrices, which makes evaluating a LoRA node about ten times slower than the base model.
A batch holds few adapters (``max_loras``), so grouping its tokens by adapter and multiplying
each group once gives the same numbers for a fraction of the work. ``vllm_host`` installs these
in its own process only, on the CPU build; ``TREX_VLLM_CPU_LORA=stock`` keeps vLLM's.

Token index -1 means "no adapter": it adds nothing (vLLM's gather would read the last slot, which
holds zeros while a slot is free).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import torch

logger = logging.getLogger(__name__)

NAMES = ("bgmv_shrink", "bgmv_expand", "bgmv_expand_slice")


def per_adapter(inputs: torch.Tensor, weights: torch.Tensor, indices: torch.Tensor,
                dtype: torch.dtype) -> torch.Tensor:
    """``out[t] = weights[indices[t]] @ inputs[t]`` (zeros where the index is negative)."""
    if weights.dim() == 4:
        weights = weights.squeeze(dim=1)
    inputs = inputs.to(dtype=dtype)
    ids = torch.unique(indices).tolist()
    if len(ids) == 1 and ids[0] >= 0:
        return inputs @ weights[ids[0]].to(dtype=dtype).t()
    out = inputs.new_zeros((inputs.shape[0], weights.shape[1]))
    for idx in ids:
        if idx < 0:
            continue
        rows = (indices == idx).nonzero(as_tuple=True)[0]
        out[rows] = inputs[rows] @ weights[idx].to(dtype=dtype).t()
    return out


def _usable(inputs: torch.Tensor, indices: torch.Tensor) -> bool:
    return inputs.dim() == 2 and indices.dim() == 1 and inputs.shape[0] == indices.shape[0]


def _make(stock: dict[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    def bgmv_shrink(inputs: torch.Tensor, lora_b_weights: torch.Tensor, output_tensor: torch.Tensor,
                    lora_indices_tensor: torch.Tensor, scaling: float = 1.0) -> None:
        if not _usable(inputs, lora_indices_tensor):
            return stock["bgmv_shrink"](inputs, lora_b_weights, output_tensor, lora_indices_tensor, scaling)
        outputs = per_adapter(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
        output_tensor[:, : outputs.shape[1]] = scaling * outputs

    def bgmv_expand(inputs: torch.Tensor, lora_b_weights: torch.Tensor, output_tensor: torch.Tensor,
                    lora_indices_tensor: torch.Tensor, add_inputs: bool = True) -> None:
        if not _usable(inputs, lora_indices_tensor) or inputs.shape[0] != output_tensor.shape[0]:
            return stock["bgmv_expand"](inputs, lora_b_weights, output_tensor, lora_indices_tensor,
                                        add_inputs)
        outputs = per_adapter(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
        common = min(outputs.shape[1], output_tensor.shape[1])
        if add_inputs:
            output_tensor[:, :common] += outputs[:, :common]
        else:
            output_tensor[:, :common] = outputs[:, :common]

    def bgmv_expand_slice(inputs: torch.Tensor, lora_b_weights: torch.Tensor, output_tensor: torch.Tensor,
                          lora_indices_tensor: torch.Tensor, slice_offset: int, slice_size: int,
                          add_inputs: bool = True) -> None:
        if not _usable(inputs, lora_indices_tensor):
            return stock["bgmv_expand_slice"](inputs, lora_b_weights, output_tensor, lora_indices_tensor,
                                              slice_offset, slice_size, add_inputs)
        outputs = per_adapter(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
        if add_inputs:
            output_tensor[:, slice_offset: slice_offset + slice_size] += outputs
        else:
            output_tensor[:, slice_offset: slice_offset + slice_size] = outputs

    return {"bgmv_shrink": bgmv_shrink, "bgmv_expand": bgmv_expand, "bgmv_expand_slice": bgmv_expand_slice}


def install() -> bool:
    """Put the grouped ops where vLLM's CPU LoRA path looks them up; False if vLLM has changed shape."""
    if os.environ.get("TREX_VLLM_CPU_LORA", "grouped") == "stock":
        return False
    try:
        import vllm.lora.ops.torch_ops as package
        import vllm.lora.ops.torch_ops.lora_ops as ops
        import vllm.lora.punica_wrapper.punica_cpu as punica_cpu
    except ImportError as exc:
        logger.info("vLLM CPU LoRA ops not found (%s); keeping vLLM's", exc)
        return False
    if not all(hasattr(ops, name) for name in NAMES):
        return False
    if getattr(ops, "_trex_grouped", False):
        return True
    ours = _make({name: getattr(ops, name) for name in NAMES})
    for module in (ops, package, punica_cpu):  # sgmv_* call these through ops' globals
        for name, fn in ours.items():
            if hasattr(module, name):
                setattr(module, name, fn)
    ops._trex_grouped = True  # type: ignore[attr-defined]
    return True
