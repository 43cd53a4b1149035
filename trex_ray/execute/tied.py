"""The gradient of an input embedding tied to the output layer (SmolLM2, most small LMs), computed once.

Autograd gives a tied weight two dense vocabulary-by-hidden gradients, the output layer's at the start of
the backward and the lookup's at its end, and holds the first until the second comes to add them; under
ZeRO-3 the output layer's backward makes its gradient while its whole weight is gathered, and the
lookup's backward gathers the weight once more. ``TiedGradient`` computes the weight's gradient once,
in the lookup's backward: the output layer's backward keeps only its small factors (the logits'
gradient and the layer's input, a few scored tokens by the hidden size), and the lookup's backward
makes ``logits_grad.T @ input`` and adds its own rows into it. The weight's gradient is the same sum;
at no time are two vocabulary-sized tensors alive for it (SmolLM2: 108 MiB each;
``benchmarks/zero3_memory.py``). Under ZeRO-3 the lookup's backward also runs without DeepSpeed
gathering the weight (``skip_lookup_gather``): it never reads it.

Example::

    tied = TiedGradient.install(model)   # None: untied, frozen or not an nn.Embedding lookup
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


class TiedGradient:
    """The output layer's factors of the tied weight's gradient, waiting for the lookup's backward."""

    def __init__(self, emb: torch.nn.Embedding, head: torch.nn.Module) -> None:
        self.emb, self.head = emb, head
        # the output layer's parts: (logits' gradient, its input), or (its dense gradient, None) where
        # the factors were larger than it (logits of every position: a forward that scores all of them)
        self.pending: list[tuple[torch.Tensor, torch.Tensor | None]] = []

    @classmethod
    def install(cls, model: torch.nn.Module) -> TiedGradient | None:
        """Route the model's tied weight gradient through one ``TiedGradient``; None where the model's
        input embedding is untied, frozen or a lookup this does not reproduce (max_norm, scaled by
        frequency, sparse)."""
        if not hasattr(model, "get_input_embeddings") or not hasattr(model, "get_output_embeddings"):
            return None
        emb, head = model.get_input_embeddings(), model.get_output_embeddings()
        if not isinstance(emb, torch.nn.Embedding) or not isinstance(head, torch.nn.Linear):
            return None
        plain = emb.max_norm is None and not emb.scale_grad_by_freq and not emb.sparse and head.bias is None
        if head.weight is not emb.weight or not emb.weight.requires_grad or not plain:
            return None
        tied = cls(emb, head)
        emb.forward = tied.lookup  # the modules' own calls (and DeepSpeed's hooks around them) stay
        head.forward = tied.project
        return tied

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        return _Lookup.apply(ids, self.emb.weight, self)

    def project(self, hidden: torch.Tensor) -> torch.Tensor:
        return _Project.apply(hidden, self.head.weight, self)

    def weight_grad(self, ids: torch.Tensor, rows_grad: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        """The output layer's part, then the lookup's rows added (the padding row gets none)."""
        grad = rows_grad.new_zeros(shape)
        while self.pending:
            part, hidden = self.pending.pop()
            if hidden is None:
                grad.add_(part)
            else:
                grad.addmm_(part.t(), hidden)
        flat_ids, rows = ids.reshape(-1), rows_grad.reshape(-1, shape[1])
        if self.emb.padding_idx is not None:
            keep = flat_ids != self.emb.padding_idx
            flat_ids, rows = flat_ids[keep], rows[keep]
        return grad.index_add_(0, flat_ids, rows)


class _Lookup(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, ids: torch.Tensor, weight: torch.Tensor, tied: TiedGradient) -> torch.Tensor:
        ctx.save_for_backward(ids)
        ctx.tied, ctx.shape = tied, weight.shape  # the whole shape: the weight is gathered while it runs
        return F.embedding(ids, weight, tied.emb.padding_idx)

    @staticmethod
    def backward(ctx: Any, rows_grad: torch.Tensor) -> tuple[None, torch.Tensor, None]:
        (ids,) = ctx.saved_tensors
        return None, ctx.tied.weight_grad(ids, rows_grad, ctx.shape), None


class _Project(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, tied: TiedGradient) -> torch.Tensor:
        ctx.save_for_backward(hidden, weight)
        ctx.tied = tied
        return F.linear(hidden, weight)

    @staticmethod
    def backward(ctx: Any, logits_grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None]:
        hidden, weight = ctx.saved_tensors
        if ctx.needs_input_grad[1]:  # the weight's part waits for the lookup's backward
            factors = logits_grad.reshape(-1, weight.shape[0]), hidden.reshape(-1, weight.shape[1])
            small = factors[0].numel() + factors[1].numel() < weight.numel()
            ctx.tied.pending.append(factors if small else (factors[0].t() @ factors[1], None))
        return (logits_grad @ weight if ctx.needs_input_grad[0] else None), None, None


def skip_lookup_gather(tied: TiedGradient) -> bool:
    """Under ZeRO-3: DeepSpeed gathers a module's whole weight before its backward (its pre-backward
    hook), which the lookup's backward never reads. Autograd still needs the weight to have its whole
    shape when it accumulates its gradient, so while the weight is partitioned it gets a view of that
    shape holding one element (stride 0), and its empty partitioned data is put back once the gradient
    is accumulated (DeepSpeed's own hook, which files the gradient for its reduce-scatter, runs before).
    Call after ``deepspeed.initialize``; returns whether it was set (False: not ZeRO-3)."""
    emb = tied.emb
    weight = emb.weight
    if not hasattr(weight, "ds_id") or "pre_bwd_fn" not in vars(emb):
        return False
    empty: list[torch.Tensor] = []

    class _ShapeOnly(torch.autograd.Function):
        """In place of DeepSpeed's PreBackwardFunctionForModule: the weight gets its shape, not its data."""

        @staticmethod
        def forward(output: torch.Tensor) -> torch.Tensor:
            return output.detach()

        @staticmethod
        def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
            pass

        @staticmethod
        def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
            if weight.data.numel() == 0 and not empty:  # partitioned: no data here
                empty.append(weight.data)
                weight.data = weight.data.new_empty(()).expand(weight.ds_shape)
            return grad

    def _put_back(param: torch.Tensor) -> None:
        if empty:
            param.data = empty.pop()

    emb.pre_bwd_fn = _ShapeOnly
    weight.register_post_accumulate_grad_hook(_put_back)
    return True
