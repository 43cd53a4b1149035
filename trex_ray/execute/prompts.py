"""Prompts: each row rendered for the model, by a text template or by the model's own chat template.

``chat`` renders ``[system, *history, user]`` with ``tokenizer.apply_chat_template`` and its
generation prompt, so that training and evaluation speak to an instruct model as it was trained;
the system message is the row's own, else the task's instruction: its description and, for a
classification task, the label set ("Answer with exactly one of: ..."). That is the fair zero-shot
prompt for a base model. ``auto`` (the default) is ``chat`` for a model with a chat template and
``plain`` otherwise; the other templates are the text ones of ``spec.plan.TEMPLATES``.

Example::

    render_prompts(ds, "auto", task, labels=["negative", "positive"], tokenizer=tok)
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from datasets import Dataset

from trex_ray.execute.sources import DataError
from trex_ray.spec import TEMPLATES, TaskSpec


def has_chat_template(tokenizer: Any) -> bool:
    return bool(tokenizer is not None and getattr(tokenizer, "chat_template", None))


def resolve_template(template: str, tokenizer: Any) -> str:
    """``auto`` → ``chat`` or ``plain``; ``chat`` needs a model with a chat template."""
    if template == "auto":
        return "chat" if has_chat_template(tokenizer) else "plain"
    if template == "chat" and not has_chat_template(tokenizer):
        raise DataError("data recipe template 'chat': the model's tokenizer has no chat template; "
                        "use template auto, plain, instruct or qa")
    if template != "chat" and template not in TEMPLATES:
        raise DataError(f"data recipe template {template!r} is unknown; "
                        f"use one of {sorted([*TEMPLATES, 'auto', 'chat'])}")
    return template


def template_identity(template: str, tokenizer: Any) -> str:
    """What a rendering depends on, for cache keys: the text template, or a hash of the chat template."""
    if template == "chat":
        return "chat:" + hashlib.sha256(str(tokenizer.chat_template).encode()).hexdigest()[:16]
    return TEMPLATES[template]


def instruction(task: TaskSpec, labels: list[str] | None) -> str:
    text = task.description.strip() or f"Complete the task {task.name}."
    if labels:
        text += f"\nAnswer with exactly one of: {', '.join(labels)}."
    return text


def _history(row: dict[str, Any]) -> list[dict[str, str]]:
    raw = row.get("history") or "[]"
    turns = json.loads(raw) if isinstance(raw, str) else raw
    return [{"role": str(t["role"]), "content": str(t["content"])} for t in turns]


def _chat(row: dict[str, Any], system: str, tokenizer: Any) -> str:
    messages = [{"role": "system", "content": row.get("system") or system}, *_history(row),
                {"role": "user", "content": str(row["input"])}]
    # enable_thinking=False: a hybrid reasoning model (Qwen3, TREX's base) answers directly, as its
    # fine-tuned replies will; templates without the switch ignore it (the rendering is unchanged).
    return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                             enable_thinking=False))


def _text(row: dict[str, Any], fmt: str, task_name: str) -> str:
    turns = "".join(f"{t['role']}: {t['content']}\n" for t in _history(row))
    return fmt.format(input=turns + str(row["input"]), task=task_name)


def render_prompts(ds: Dataset, template: str, task: TaskSpec, labels: list[str] | None = None,
                   tokenizer: Any = None) -> Dataset:
    """``ds`` with its ``prompt`` column (``template`` already resolved, or ``auto``)."""
    template = resolve_template(template, tokenizer)
    system = instruction(task, labels)
    if template == "chat":
        prompts = [_chat(row, system, tokenizer) for row in ds]
    else:
        prompts = [_text(row, TEMPLATES[template], task.name) for row in ds]
    if "prompt" in ds.column_names:
        ds = ds.remove_columns("prompt")
    return ds.add_column("prompt", prompts)
