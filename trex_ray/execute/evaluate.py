"""Evaluation backends behind one small contract, and ``evaluate`` scoring a checkpoint on a split.

A backend turns prompts into completions for a model directory (plus an optional LoRA adapter
directory). ``HFBackend`` runs greedy ``generate`` with transformers on any device; ``vllm``
(``vllm_backend.py``) and ``openai`` (``openai_backend.py``) are registered too, and more plug in
with ``register_backend``. ``eval_service.py`` picks the one a node uses.

Example::

    backend = get_backend("hf")
    metric, metrics, samples = evaluate(backend, base_dir, checkpoint, adapter=False,
                                        eval_ds=prepared.eval, metric_name="accuracy",
                                        max_new_tokens=2, batch_size=64)
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import torch

from trex_ray.execute.metrics import all_scores, normalize, score
from trex_ray.execute.models import checkpoint_base, load_tokenizer

logger = logging.getLogger(__name__)

N_SAMPLES = 5


class EvalBackend(Protocol):
    """Greedy completions of ``prompts``, only the new text, stripped.

    Example::

        class Echo:
            name = "echo"
            def generate(self, model_dir, adapter_dir, prompts, max_new_tokens, batch_size,
                         allowed_token_ids=None):
                return ["" for _ in prompts]

    ``allowed_token_ids``: when given, one new token, the likeliest of these (constrained decoding:
    a classification answer scored by the likelihood of each label's first token).
    """

    name: str

    def generate(
        self, model_dir: str, adapter_dir: str | None, prompts: list[str], max_new_tokens: int,
        batch_size: int, allowed_token_ids: list[int] | None = None,
    ) -> list[str]: ...


class HFBackend:
    """transformers ``generate``: batched, left-padded, greedy; the adapter (if any) merged in."""

    name = "hf"

    def __init__(self, device: str | None = None) -> None:
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")

    def _load(self, model_dir: str, adapter_dir: str | None) -> tuple[Any, Any]:
        from transformers import AutoModelForCausalLM
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
        if adapter_dir:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
        own = adapter_dir and (Path(adapter_dir) / "tokenizer_config.json").is_file()
        tokenizer = load_tokenizer(adapter_dir if own else model_dir, padding_side="left")
        return model.to(self.device).eval(), tokenizer

    @torch.no_grad()
    def _batch(self, model: Any, tokenizer: Any, prompts: list[str], max_new_tokens: int) -> list[str]:
        enc = tokenizer(prompts, return_tensors="pt", padding=True).to(self.device)
        out = model.generate(
            **enc, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
            pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        )
        new = out[:, enc["input_ids"].shape[1]:]
        return [text.strip() for text in tokenizer.batch_decode(new, skip_special_tokens=True)]

    @torch.no_grad()
    def _choose(self, model: Any, tokenizer: Any, prompts: list[str], allowed: list[int]) -> list[str]:
        """The likeliest allowed next token of each prompt: one forward pass, no generation."""
        enc = tokenizer(prompts, return_tensors="pt", padding=True).to(self.device)
        # left-padded: the last position is the next token's; only its logits are computed (the output
        # layer over a 49 k vocabulary at every prompt position would be a fifth of the work)
        try:
            logits = model(**enc, logits_to_keep=1).logits[:, -1, :]
        except TypeError:  # a model whose forward does not take it
            logits = model(**enc).logits[:, -1, :]
        ids = torch.tensor(allowed, device=logits.device)
        best = ids[logits[:, ids].argmax(dim=-1)]
        return [tokenizer.decode([int(i)]).strip() for i in best]

    def generate(
        self, model_dir: str, adapter_dir: str | None, prompts: list[str], max_new_tokens: int,
        batch_size: int, allowed_token_ids: list[int] | None = None,
    ) -> list[str]:
        model, tokenizer = self._load(model_dir, adapter_dir)
        preds: list[str] = []
        for i in range(0, len(prompts), batch_size):
            chunk = prompts[i:i + batch_size]
            preds += (self._choose(model, tokenizer, chunk, allowed_token_ids) if allowed_token_ids
                      else self._batch(model, tokenizer, chunk, max_new_tokens))
        return preds


def _vllm_backend() -> EvalBackend:
    from trex_ray.execute.vllm_backend import VLLMBackend  # engines live in their own processes

    return VLLMBackend()


def _openai_backend() -> EvalBackend:
    import os

    from trex_ray.execute.openai_backend import API_BASE_ENV, OpenAIBackend

    return OpenAIBackend(os.environ.get(API_BASE_ENV, "http://127.0.0.1:8000/v1"))


_BACKENDS: dict[str, Callable[[], EvalBackend]] = {
    "hf": HFBackend, "vllm": _vllm_backend, "openai": _openai_backend,
}


def register_backend(name: str, factory: Callable[[], EvalBackend]) -> None:
    """Make ``get_backend(name)`` build backends with ``factory`` (e.g. a vLLM engine wrapper)."""
    _BACKENDS[name] = factory


def get_backend(name: str) -> EvalBackend:
    if name not in _BACKENDS:
        raise ValueError(f"eval backend {name!r} is unknown; use one of {sorted(_BACKENDS)}")
    return _BACKENDS[name]()


def label_choices(tokenizer: Any, prompt: str, labels: list[str]) -> dict[int, str] | None:
    """Each label's first token after ``prompt`` (as training writes it: ``encode.encode``), or None
    when two labels start with the same token (then the answer is generated, not chosen)."""
    from trex_ray.execute.encode import target_ids

    first: dict[int, str] = {}
    for label in labels:
        ids = target_ids(tokenizer, prompt, label)
        if not ids or ids[0] in first:
            return None
        first[ids[0]] = label
    return first


def extract_label(prediction: str, labels: list[str]) -> str:
    """The label a free-text answer names: its first words if they are one, else the label it
    mentions first (as evaluation harnesses parse answers), else the answer as it is."""
    text = normalize(prediction)
    by_norm = {normalize(label): label for label in labels}
    for norm, label in by_norm.items():
        if text == norm or text.startswith(norm + " "):
            return label
    hits = [(m.start(), label) for norm, label in by_norm.items()
            if (m := re.search(rf"(?<![\w]){re.escape(norm)}(?![\w])", text))]
    return min(hits)[1] if hits else prediction


def _predict(backend: EvalBackend, model_dir: str, adapter_dir: str | None, prompts: list[str],
             labels: list[str] | None, max_new_tokens: int, batch_size: int) -> tuple[list[str], str]:
    """Predictions, and how they were made: ``choice`` (the likeliest label), ``parsed`` (generated,
    the label it names taken) or ``generated``."""
    if labels and prompts:
        tokenizer = load_tokenizer(model_dir)
        choices = label_choices(tokenizer, prompts[0], labels)
        if choices is not None:
            texts = backend.generate(model_dir, adapter_dir, prompts, 1, batch_size,
                                     allowed_token_ids=sorted(choices))
            by_text = {_token_text(tokenizer, i): label for i, label in choices.items()}
            return [by_text.get(t.strip(), t) for t in texts], "choice"
        texts = backend.generate(model_dir, adapter_dir, prompts, max_new_tokens, batch_size)
        return [extract_label(t, labels) for t in texts], "parsed"
    return backend.generate(model_dir, adapter_dir, prompts, max_new_tokens, batch_size), "generated"


def _token_text(tokenizer: Any, token_id: int) -> str:
    return str(tokenizer.decode([token_id])).strip()


def evaluate(
    backend: EvalBackend,
    base_dir: str,
    checkpoint: str | None,
    adapter: bool,
    eval_ds: Any,
    metric_name: str,
    max_new_tokens: int,
    batch_size: int,
    labels: list[str] | None = None,
) -> tuple[float, dict[str, float], list[dict[str, str]]]:
    """Score a model on ``eval_ds`` (columns ``prompt``, ``target``): the task metric, all metrics,
    and a few samples. ``checkpoint`` None means the base model; ``adapter`` says it is a LoRA one,
    applied to the model its ``trex_checkpoint.json`` names (else ``base_dir``). ``labels``: the
    task's classes (a classification task): each answer is the likeliest label, chosen by its first
    token, so that a base model that would not answer in one word is scored fairly."""
    model_dir = checkpoint_base(checkpoint, base_dir) if checkpoint and adapter else checkpoint or base_dir
    adapter_dir = checkpoint if checkpoint and adapter else None
    prompts, refs = list(eval_ds["prompt"]), list(eval_ds["target"])
    preds, how = _predict(backend, str(model_dir), adapter_dir, prompts, labels, max_new_tokens, batch_size)
    metric = score(metric_name, preds, refs)
    metrics = all_scores(preds, refs)
    rows = zip(prompts[:N_SAMPLES], preds[:N_SAMPLES], refs[:N_SAMPLES], strict=True)
    samples = [{"prompt": p, "prediction": y, "target": t} for p, y, t in rows]
    logger.info("eval %s (%s, %s): %s = %.4f on %d examples", model_dir, backend.name, how, metric_name,
                metric, len(refs))
    return metric, metrics, samples
