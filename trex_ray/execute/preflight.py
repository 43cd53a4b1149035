"""Preflight: load and check a task's data against its model before any trial spends budget.

Checks, each failing with one line that names the field and the fix (``PreflightError``):
the model resolves; every source loads with its columns (``sources.py``); the splits leave train,
validation and test rows; every target can be written by the model's tokenizer (encoded and
decoded back the same), so that a tokenizer that lacks the user's labels fails here, not as a run
of zeros. Then it measures the data in tokens, as the model will see it (prompts rendered by the
default template): ``model.max_seq_len`` becomes the 99th percentile of prompt + target (the rows
above it are truncated: a note says how many) and ``max_new_tokens`` the longest target, unless
the task set them.

Example::

    task, notes = preflight(task, Path(".cache"))
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from trex_ray.execute.encode import prompt_ids, target_ids
from trex_ray.execute.models import ModelError, load_tokenizer, materialize_base_model
from trex_ray.execute.prompts import render_prompts
from trex_ray.execute.sources import DataError
from trex_ray.execute.splits import task_splits
from trex_ray.spec import TaskSpec

logger = logging.getLogger(__name__)

MEASURED_ROWS = 2000  # rows whose lengths are measured (a seeded sample beyond this)
MIN_SEQ_LEN = 32


class PreflightError(ValueError):
    """The task cannot run as written; the message is one line naming the field and the fix."""


def _target_field(task: TaskSpec) -> str:
    return "data.train[0].target_field" if len(task.data.train) == 1 else "data.train[*].target_field"


def check_targets(task: TaskSpec, tokenizer: Any, targets: list[str]) -> None:
    """Every distinct target, encoded and decoded by the model's tokenizer, comes back the same."""
    empty = sum(1 for t in targets if not t.strip())
    if empty:
        raise PreflightError(f"{_target_field(task)}: {empty} rows have an empty target; "
                             "fill them in or drop those rows")
    bad = []
    for target in sorted(set(targets)):
        ids = tokenizer(target, add_special_tokens=False)["input_ids"]
        back = tokenizer.decode(ids, skip_special_tokens=True)
        if " ".join(back.split()) != " ".join(target.split()):
            bad.append((target, back))
    if bad:
        target, back = bad[0]
        raise PreflightError(
            f"{_target_field(task)}: {len(bad)} distinct targets cannot be written by the tokenizer of "
            f"{task.model.id} (e.g. {target[:40]!r} comes back as {back[:40]!r}); use a model whose "
            "tokenizer covers them, such as builtin:smollm2-135m")


def _percentile(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)] if ordered else 0


def _model_limit(base: Path) -> int | None:
    import json

    config = json.loads((base / "config.json").read_text())
    return config.get("max_position_embeddings")


def measure(task: TaskSpec, tokenizer: Any, rows: Any, labels: list[str] | None) -> tuple[list[int], int]:
    """Token lengths of prompt + target + end of turn over up to ``MEASURED_ROWS`` rows, and the longest
    target's (with its end of turn)."""
    if len(rows) > MEASURED_ROWS:
        rows = rows.shuffle(seed=0).select(range(MEASURED_ROWS))
    rendered = render_prompts(rows, "auto", task, labels, tokenizer)
    totals, longest = [], 0
    for prompt, target in zip(rendered["prompt"], rendered["target"], strict=True):
        t = len(target_ids(tokenizer, prompt, target)) + 1
        totals.append(len(prompt_ids(tokenizer, prompt)) + t)
        longest = max(longest, t)
    return totals, longest


def preflight(task: TaskSpec, cache_dir: Path) -> tuple[TaskSpec, list[str]]:
    """The task with measured lengths, and notes for the user; raises ``PreflightError``."""
    import datasets
    from transformers.utils import logging as hf_logging

    datasets.disable_progress_bars()  # the CLI prints one line per finding, no progress bars
    hf_logging.disable_progress_bar()
    try:
        base = materialize_base_model(task.model, Path(cache_dir))
        splits = task_splits(task)
    except (ModelError, DataError) as exc:
        raise PreflightError(str(exc)) from None
    tokenizer = load_tokenizer(base)
    check_targets(task, tokenizer, [*splits.pool["target"], *splits.val["target"], *splits.test["target"]])
    totals, longest_target = measure(task, tokenizer, splits.pool, splits.labels)
    limit = _model_limit(base)
    seq_len = task.model.max_seq_len or max(MIN_SEQ_LEN, 8 * math.ceil(_percentile(totals, 0.99) / 8))
    seq_len = min(seq_len, limit) if limit else seq_len
    new_tokens = task.max_new_tokens or max(1, longest_target)
    notes = [f"data: {splits.stats['pool']} train rows, {len(splits.val)} validation, {len(splits.test)} test"
             + (f"; {len(splits.labels)} labels" if splits.labels else "")]
    if splits.stats["leaked_rows_dropped"]:
        notes.append(f"data: {splits.stats['leaked_rows_dropped']} train rows repeat a validation or test "
                     "input and were dropped")
    truncated = sum(1 for n in totals if n > seq_len)
    if truncated:
        notes.append(f"warning: {truncated} of {len(totals)} measured rows are longer than "
                     f"model.max_seq_len={seq_len} tokens and will be truncated; raise model.max_seq_len "
                     "to keep them whole")
    model = task.model.model_copy(update={"max_seq_len": seq_len})
    resolved = task.model_copy(update={"model": model, "max_new_tokens": new_tokens})
    logger.info("preflight %s: max_seq_len %d, max_new_tokens %d", task.name, seq_len, new_tokens)
    return resolved, notes
