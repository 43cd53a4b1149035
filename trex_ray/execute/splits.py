"""The three splits of a task, the same for every recipe of a run: train, validation, test.

* **test**: the task's ``data.eval`` source, or (a task with one data file) ``data.test_size`` rows
  cut from the train data by a seeded shuffle. Never seen by the search.
* **validation**: ``data.val_size`` rows cut from the raw train data **before** any data op, by a
  seeded shuffle of ``data.split_seed`` (not the plan's seed): every recipe of the run is validated
  on the same rows, and no recipe's ops can clean, drop or rewrite them.
* **train pool**: the rest, less any row whose normalised input is also a validation or test input
  (duplicates would leak them into training). Data ops run on the pool only.

Example::

    splits = task_splits(task)
    len(splits.val), len(splits.test), splits.stats["leaked_rows_dropped"]
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from datasets import Dataset

from trex_ray.execute.metrics import normalize
from trex_ray.execute.sources import DataError, load_source, load_train
from trex_ray.spec import TaskSpec

VAL_FRACTION, VAL_MAX = 0.10, 200
TEST_FRACTION, TEST_MAX = 0.20, 1000
MAX_LABELS = 50


@dataclass
class Splits:
    pool: Dataset  # what data ops and training may use
    val: Dataset
    test: Dataset
    labels: list[str] | None  # the task's classes, when its targets are labels
    stats: dict[str, Any] = field(default_factory=dict)


def _cut(ds: Dataset, n: int, seed: str) -> tuple[Dataset, Dataset]:
    """(the rest, ``n`` rows chosen by a seeded shuffle), both in their original order."""
    order = list(range(len(ds)))
    random.Random(seed).shuffle(order)
    chosen = set(order[:n])
    return ds.select([i for i in range(len(ds)) if i not in chosen]), ds.select(sorted(chosen))


def val_count(task: TaskSpec, n: int) -> int:
    if n < 2:
        return 0
    wanted = task.data.val_size or min(VAL_MAX, max(1, round(VAL_FRACTION * n)))
    return min(wanted, n - 1)


def _test_split(task: TaskSpec, raw: Dataset) -> tuple[Dataset, Dataset]:
    if task.data.eval is not None:
        return raw, load_source(task.data.eval)
    n = task.data.test_size or min(TEST_MAX, max(1, round(TEST_FRACTION * len(raw))))
    if n >= len(raw):
        raise DataError(f"data.test_size: {n} test rows leave no train rows of {len(raw)}; "
                        "lower data.test_size or give a test file as data.eval")
    return _cut(raw, n, f"test:{task.data.split_seed}")


def task_labels(targets: list[str]) -> list[str] | None:
    """The classes of a classification task: few distinct short targets, one label each (no
    comma-joined label sets); each written as it most often is. None for free-text targets."""
    if not targets or any("," in t for t in targets):
        return None
    forms: dict[str, Counter[str]] = {}
    for t in targets:
        forms.setdefault(normalize(t), Counter())[t.strip()] += 1
    few = len(forms) <= min(MAX_LABELS, max(2, len(targets) // 5))
    if not few or len(forms) < 2 or any(len(k.split()) > 3 or not k for k in forms):
        return None
    return sorted(c.most_common(1)[0][0] for c in forms.values())


def task_splits(task: TaskSpec) -> Splits:
    """The run's splits (deterministic: the same call gives the same rows)."""
    raw = load_train(task)
    raw, test = _test_split(task, raw)
    pool, val = _cut(raw, val_count(task, len(raw)), f"val:{task.data.split_seed}")
    held = {normalize(x) for x in val["input"]} | {normalize(x) for x in test["input"]}
    keep = [i for i, x in enumerate(pool["input"]) if normalize(x) not in held]
    leaked = len(pool) - len(keep)
    pool = pool.select(keep) if leaked else pool
    if len(pool) == 0:
        raise DataError("data.train: no train rows are left after the validation and test rows; "
                        "give more train rows or lower data.val_size / data.test_size")
    stats = {"raw_train": len(raw), "val": len(val), "test": len(test), "pool": len(pool),
             "leaked_rows_dropped": leaked}
    return Splits(pool, val, test, task_labels(list(raw["target"])), stats)
