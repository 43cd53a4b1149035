"""A task's data profile, for the planner and ``trex draft``: sizes, duplicates, lengths, label
balance, estimated noise — from the raw train sources, before any data op.

Example::

    profile(task)["noise_estimate"]
"""

from __future__ import annotations

import random
import statistics
from collections import Counter
from typing import Any

import datasets

from trex_ray.execute.metrics import normalize
from trex_ray.execute.models import model_facts
from trex_ray.execute.noise import looks_like_labels, noise_flags
from trex_ray.execute.sources import load_train
from trex_ray.spec import TaskSpec


def _words(text: str) -> list[str]:
    return str(text).split()


def _col(ds: datasets.Dataset, name: str) -> list[Any]:
    return list(ds[name])


def _length_stats(texts: list[str]) -> dict[str, float]:
    lengths = sorted(len(_words(t)) for t in texts) or [0]
    return {"mean": round(statistics.fmean(lengths), 2), "p50": lengths[len(lengths) // 2],
            "p95": lengths[min(len(lengths) - 1, int(0.95 * len(lengths)))], "max": lengths[-1]}


def _outlier_bound(texts: list[str]) -> int:
    """A ``length_filter`` max_words (input + target) above which lengths are outliers: Q3 + 2 IQR."""
    lengths = sorted(len(_words(t)) for t in texts) or [0]
    q1, q3 = lengths[len(lengths) // 4], lengths[(3 * len(lengths)) // 4]
    return int(q3 + 2 * (q3 - q1)) + 1


def profile(task: TaskSpec, max_examples: int = 5000, seed: int = 0) -> dict[str, Any]:
    """A data profile for the planner: sizes, duplicates, lengths, label balance, estimated noise."""
    ds = load_train(task)
    n = len(ds)
    if n > max_examples:
        ds = ds.select(sorted(random.Random(f"profile:{seed}").sample(range(n), max_examples)))
    inputs, targets = _col(ds, "input"), _col(ds, "target")
    is_labels = looks_like_labels(targets)
    flags = noise_flags(inputs, targets, {"mode": "label" if is_labels else "text"}, seed)
    out: dict[str, Any] = {
        "model": model_facts(task.model),
        "train_examples": n,
        "sources": {src.id: src.weight for src in task.data.train},
        "duplicate_fraction": round(1 - len({normalize(x) for x in inputs}) / max(1, len(inputs)), 4),
        "input_words": _length_stats(inputs),
        "target_words": _length_stats(targets),
        "suggested_max_words": _outlier_bound([f"{x} {y}" for x, y in zip(inputs, targets, strict=True)]),
        "targets_are_labels": is_labels,
        "noise_estimate": round(sum(flags) / max(1, len(flags)), 4),
        "noise_scorer": "naive_bayes_out_of_fold" if is_labels else "target_input_overlap",
    }
    out["input_words_p95"], out["target_words_p95"] = out["input_words"]["p95"], out["target_words"]["p95"]
    if is_labels:
        counts = Counter(normalize(t) for t in targets)
        out["label_distribution"] = {k: round(v / len(targets), 4) for k, v in counts.most_common()}
    return out


def draft_profile(task: TaskSpec) -> dict[str, Any]:
    """``trex draft``'s profile of a task's data (no progress bars: a command-line tool)."""
    datasets.disable_progress_bars()
    return profile(task, max_examples=2000)
