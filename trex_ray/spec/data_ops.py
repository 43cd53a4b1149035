"""The data ops a plan may name: one-line summaries and param schemas, checked against bounds.

This is the catalogue (``OP_SUMMARIES``, ``check_op``); the ops themselves run in ``execute/data.py``
(``OPS``, ``@register_op``). A new op gets a summary and a check here and its code there.

Every numeric param has an upper bound (a plan asking ``source_mix`` for 10**12 rows is refused,
not run), every param is a single number or word unless the op expects a mapping (``source_mix``
``weights``: source id -> number), and errors are one line naming the op, the param and the fix.
The ops (``execute/data.py``) call these first; the LLM validator calls them alone, with the real data's
size, to refuse a plan without running anything. Example::

    check_op("subsample", {"n": 500}, rows=2000, task=task)     # {"n": 500, "fraction": None}
    check_op("source_mix", {"n": 10**12}, rows=400, task=task)  # DataError: n=... use [1, 40000] ...
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from trex_ray.spec.task import TaskSpec

MAX_ROWS = 1_000_000  # examples an op may ask for (source_mix, subsample)
MAX_UPSAMPLE = 100  # source_mix makes at most this many times the data's examples
MAX_WORDS = 100_000  # length_filter's word bounds
MAX_FOLDS = 100  # label_noise_filter's cross-validation folds
MAX_WEIGHT = 1e6  # a source_mix weight
MAX_WORD_CHARS = 64  # a text param (a mode, a key)
MAX_DROP = 0.3  # the noise filter never drops more than this fraction
NOISE_DEFAULTS: dict[str, Any] = {
    "threshold": 0.2, "min_overlap": 0.5, "folds": 5, "mode": "auto", "max_drop": MAX_DROP,
}

OP_SUMMARIES = {  # what an LLM planner is told of each op
    "source_mix": "Resample to ``n`` examples, each train source in proportion to its weight.",
    "dedup": "Drop exact duplicates of the normalized input "
             "(``key: input_target`` also compares the target).",
    "length_filter": "Keep examples whose input + target word count lies in [``min_words``, ``max_words``].",
    "subsample": "A seeded random subset of ``n`` examples or of a ``fraction`` of them (order kept).",
    "label_noise_filter": "Drop likely-mislabeled examples, judged from the data alone.",
}


class DataError(ValueError):
    """A data source or data op is wrong; the message is one line naming it and the fix."""


Check = Callable[[dict[str, Any], int, TaskSpec], dict[str, Any]]
CHECKS: dict[str, Check] = {}


def check_op(name: str, params: Any, rows: int, task: TaskSpec) -> dict[str, Any]:
    """The op's params with defaults filled in, checked for data of ``rows`` examples; DataError
    (one line) when one is unknown, of the wrong shape or out of bounds. Nothing runs."""
    if not isinstance(params, dict):
        raise DataError(f"data op {name!r}: params must be a mapping of name to value, "
                        f"not a {type(params).__name__}")
    check = CHECKS.get(name)
    if check is None:  # an op registered without bounds: single values only
        return _params(name, params, dict.fromkeys(params))
    return check(params, rows, task)


def _register(name: str) -> Callable[[Check], Check]:
    def wrap(fn: Check) -> Check:
        CHECKS[name] = fn
        return fn

    return wrap


def _show(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _params(op: str, params: dict[str, Any], defaults: dict[str, Any],
            mappings: tuple[str, ...] = ()) -> dict[str, Any]:
    unknown = sorted(str(k)[:40] for k in set(params) - set(defaults))
    if unknown:
        allowed = sorted(defaults) or "no params"
        raise DataError(f"data op {op!r}: unknown params {unknown[:5]}; use only {allowed}")
    for name, value in params.items():
        if name in mappings:
            if not isinstance(value, dict):
                raise DataError(f"data op {op!r}: {name} must be a mapping, not {_show(value)}")
        elif not _scalar(value):
            raise DataError(f"data op {op!r}: {name}={_show(value)}; give a single number or word "
                            f"(at most {MAX_WORD_CHARS} characters), not a list or mapping")
    return {**defaults, **params}


def _scalar(value: Any) -> bool:
    if isinstance(value, str):
        return len(value) <= MAX_WORD_CHARS
    return value is None or isinstance(value, (bool, int, float))


def _number(op: str, name: str, value: Any, low: float, high: float, why: str = "") -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not low <= value <= high:
        raise DataError(f"data op {op!r}: {name}={_show(value)}; use a number in [{low:g}, {high:g}]{why}")
    return value


def _word(op: str, name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise DataError(f"data op {op!r}: {name}={_show(value)}; use one of {list(allowed)}")
    return str(value)


@_register("source_mix")
def _source_mix(params: dict[str, Any], rows: int, task: TaskSpec) -> dict[str, Any]:
    p = _params("source_mix", params, {"n": rows, "weights": {}}, mappings=("weights",))
    high = max(1, rows, min(MAX_ROWS, MAX_UPSAMPLE * rows))  # the data's own size is always allowed
    why = f" (at most {MAX_UPSAMPLE}x the data's {rows} examples and {MAX_ROWS:,})"
    n = int(_number("source_mix", "n", p["n"], 1, high, why))
    weights = {src.id: src.weight for src in task.data.train}
    extra = set(p["weights"]) - set(weights)
    if extra:
        raise DataError(f"data op 'source_mix': weights name {sorted(str(k)[:40] for k in extra)[:3]}; "
                        f"map source ids {sorted(weights)} to numbers")
    for key, value in p["weights"].items():
        weights[key] = float(_number("source_mix", f"weights[{key}]", value, 0, MAX_WEIGHT))
    return {"n": n, "weights": weights}


@_register("dedup")
def _dedup(params: dict[str, Any], rows: int, task: TaskSpec) -> dict[str, Any]:
    p = _params("dedup", params, {"key": "input"})
    _word("dedup", "key", p["key"], ("input", "input_target"))
    return p


@_register("length_filter")
def _length_filter(params: dict[str, Any], rows: int, task: TaskSpec) -> dict[str, Any]:
    p = _params("length_filter", params, {"min_words": 1, "max_words": 48})
    low = _number("length_filter", "min_words", p["min_words"], 0, MAX_WORDS)
    high = _number("length_filter", "max_words", p["max_words"], low, MAX_WORDS)
    return {"min_words": low, "max_words": high}


@_register("subsample")
def _subsample(params: dict[str, Any], rows: int, task: TaskSpec) -> dict[str, Any]:
    p = _params("subsample", params, {"n": None, "fraction": None})
    if (p["n"] is None) == (p["fraction"] is None):
        raise DataError("data op 'subsample': give exactly one of n (a count) or fraction (0-1]")
    if p["n"] is not None:
        return {"n": int(_number("subsample", "n", p["n"], 1, MAX_ROWS)), "fraction": None}
    return {"n": None, "fraction": _number("subsample", "fraction", p["fraction"], 0, 1)}


@_register("label_noise_filter")
def _label_noise_filter(params: dict[str, Any], rows: int, task: TaskSpec) -> dict[str, Any]:
    op = "label_noise_filter"
    p = _params(op, params, NOISE_DEFAULTS)
    _word(op, "mode", p["mode"], ("auto", "label", "text"))
    for name in ("threshold", "min_overlap", "max_drop"):
        _number(op, name, p[name], 0, 1)
    p["folds"] = int(_number(op, "folds", p["folds"], 2, MAX_FOLDS))
    return p
