"""A data source's columns as text: strings as they are, class labels by name, booleans as
"true"/"false", lists of labels joined with ", "; errors name the spec field and the fix.

Example::

    strings(ds, Ctx(src, "data.train[0]"), "label", "target_field", label_names=("neg", "pos"))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import datasets
from datasets import ClassLabel, Dataset, Value

from trex_ray.spec import DataSource
from trex_ray.spec.data_ops import DataError

_LIST_FEATURES = tuple(
    getattr(datasets.features, n) for n in ("Sequence", "List", "LargeList") if hasattr(datasets.features, n)
)


@dataclass(frozen=True)
class Ctx:
    """The source being read and where the spec names it (``data.train[0]``), for error messages."""

    src: DataSource
    where: str | None = None

    def field(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def error(self, text: str) -> DataError:
        return DataError(f"data source {self.src.id!r}: {text}")


def optional(ds: Dataset, ctx: Ctx, column: str) -> list[str]:
    return strings(ds, ctx, column, "format") if column in ds.column_names else [""] * len(ds)


def strings(
    ds: Dataset, ctx: Ctx, column: str, field: str, label_names: tuple[str, ...] | None = None
) -> list[str]:
    """A column as text: strings as they are, labels by name, lists of labels joined with ", "."""
    if column not in ds.column_names:
        raise ctx.error(f"no column {column!r}; set {ctx.field(field)} to one of {ds.column_names}")
    feature = ds.features[column]
    item = feature.feature if isinstance(feature, _LIST_FEATURES) else feature
    names = _names(item, label_names)
    convert = _to_text(item, names)
    if convert is None:
        raise ctx.error(
            f"column {column!r} ({ctx.field(field)}) holds {_kind(item)}, not text or labels; "
            f"pick another {ctx.field(field)} or convert the file"
        )
    values = ds[column][:]
    if names is not None:
        _check_labels(values, names, ctx, column, isinstance(item, ClassLabel))
    if item is feature:
        return [convert(v) for v in values]
    return [", ".join(convert(x) for x in v or []) for v in values]


def _kind(item: Any) -> str:
    if isinstance(item, dict):
        return "dicts"
    if isinstance(item, _LIST_FEATURES):
        return "nested lists"
    return f"{type(item).__name__} values" if not isinstance(item, Value) else f"{item.dtype} values"


def _names(item: Any, label_names: tuple[str, ...] | None) -> list[str] | None:
    """The names an int column's values index: its ClassLabel's, else ``label_names``; else None."""
    if isinstance(item, ClassLabel):
        return list(item.names)
    if isinstance(item, Value) and "int" in item.dtype and label_names is not None:
        return list(label_names)
    return None


def _to_text(item: Any, names: list[str] | None) -> Callable[[Any], str] | None:
    """How one value of feature ``item`` becomes text; None for values that are not text or labels."""
    if names is not None:
        return lambda v: "" if v is None else names[v]
    if not isinstance(item, Value) or item.dtype in ("binary", "large_binary"):
        return None
    if item.dtype == "bool":
        return lambda v: "" if v is None else ("true" if v else "false")
    return lambda v: "" if v is None else str(v)


def _check_labels(values: list[Any], names: list[str], ctx: Ctx, column: str, class_label: bool) -> None:
    for row, value in enumerate(values):
        for label in value if isinstance(value, list) else [value]:
            if label is not None and not 0 <= label < len(names):
                fix = (
                    "use a labelled split (-1 marks an unlabelled row)"
                    if class_label
                    else f"give {ctx.field('label_names')} a name for every label"
                )
                raise ctx.error(
                    f"row {row}: column {column!r} has label {label}, outside its {len(names)} names; {fix}"
                )
