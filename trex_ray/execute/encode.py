"""Rows into token ids for training: prompt + answer + eos, the loss on the answer only; batches.

Example::

    ids, labels = encode(tokenizer, "review: great film\n=>", "positive", max_len=64)
    batch = collate([{"input_ids": ids, "labels": labels}], tokenizer.pad_token_id)
"""

from __future__ import annotations

from typing import Any

import torch

IGNORE = -100


def separator(prompt: str) -> str:
    """What goes between a prompt and its answer: nothing after a chat template's assistant header
    (it ends in a newline), else one space."""
    return "" if prompt[-1:].isspace() else " "


def prompt_ids(tokenizer: Any, prompt: str) -> list[int]:
    """A prompt's token ids; one rendered by a chat template carries its own special tokens."""
    return list(tokenizer(prompt, add_special_tokens=not _has_specials(tokenizer, prompt))["input_ids"])


def _has_specials(tokenizer: Any, text: str) -> bool:
    return any(tok and tok in text for tok in (tokenizer.bos_token, "<|im_start|>", "<|start_header_id|>"))


def target_ids(tokenizer: Any, prompt: str, target: str) -> list[int]:
    """The ids of ``target`` as it follows ``prompt`` (the tokenization of the two together), no eos."""
    p = prompt_ids(tokenizer, prompt)
    full = prompt_ids(tokenizer, prompt + separator(prompt) + target)
    if full[: len(p)] == p and len(full) > len(p):
        return full[len(p):]
    return list(tokenizer(separator(prompt) + target, add_special_tokens=False)["input_ids"])


def encode(tokenizer: Any, prompt: str, target: str, max_len: int) -> tuple[list[int], list[int]]:
    """Token ids of prompt + target + eos, and labels that score only the target and eos (for a chat
    template, the assistant's reply and its end-of-turn token); a long prompt loses its start."""
    p = prompt_ids(tokenizer, prompt)
    t = (target_ids(tokenizer, prompt, target) + [tokenizer.eos_token_id])[: max_len - 1]
    p = p[-(max_len - len(t)):]
    return p + t, [IGNORE] * len(p) + t


def encode_split(path: str, tokenizer: Any, max_len: int, limit: int | None = None) -> list[dict[str, Any]]:
    from datasets import load_from_disk

    ds = load_from_disk(path)
    n = len(ds) if limit is None else min(limit, len(ds))
    rows = []
    for prompt, target in zip(ds["prompt"][:n], ds["target"][:n], strict=True):
        ids, labels = encode(tokenizer, prompt, target, max_len)
        rows.append({"input_ids": ids, "labels": labels})
    return rows


def collate(rows: list[dict[str, list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch: pad tokens are masked out of attention and of the loss."""
    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        n = len(r["input_ids"])
        ids[i, :n] = torch.tensor(r["input_ids"])
        labels[i, :n] = torch.tensor(r["labels"])
        mask[i, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
