"""Data sources: load a task's train and eval sources as rows of ``input`` and ``target`` strings.

A source is ``builtin:<task>`` (generated offline), a local file, or a hub dataset.

Example::

    ds = load_source(DataSource(id="data/train.jsonl", input_field="text", target_field="label"))
    ds.column_names  # ['input', 'target']
"""

from __future__ import annotations

import logging
from pathlib import Path

import datasets
from datasets import Dataset, Value

from trex_ray.ftbench.generators import generate, task_names
from trex_ray.spec import DataSource, TaskSpec

logger = logging.getLogger(__name__)


class DataError(ValueError):
    """A data source or data op is wrong; the message is one line naming it and the fix."""


def load_source(src: DataSource) -> Dataset:
    """One source as a Dataset with string columns ``input`` and ``target``."""
    if src.kind == "builtin":
        ds = _load_builtin(src)
    elif src.kind == "local":
        ds = _load_local(src)
    else:
        ds = _load_hub(src)
    ds = _standard_columns(ds, src)
    if src.limit is not None and src.limit < len(ds):
        ds = ds.select(range(src.limit))
    return ds


def _load_builtin(src: DataSource) -> Dataset:
    name = src.id.removeprefix("builtin:")
    if name not in task_names():
        known = [f"builtin:{n}" for n in task_names()]
        raise DataError(f"data source {src.id!r}: no such built-in task; use one of {known}")
    try:
        records = generate(name, src.split)
    except ValueError as exc:
        raise DataError(f"data source {src.id!r}: {exc}") from exc
    return Dataset.from_list(records)


def _load_local(src: DataSource) -> Dataset:
    path = Path(src.id).expanduser()
    if not path.is_file():
        raise DataError(f"data source {src.id!r}: file not found; fix the path (relative to {Path.cwd()})")
    builder = "parquet" if path.suffix == ".parquet" else "json"
    try:
        return datasets.load_dataset(builder, data_files=str(path), split="train")
    except Exception as exc:  # noqa: BLE001 - any reader error becomes one clear line
        raise DataError(
            f"data source {src.id!r}: cannot read it as {builder} ({type(exc).__name__}: {str(exc)[:120]}); "
            "fix the file (one JSON object per line for .jsonl)"
        ) from exc


def _load_hub(src: DataSource) -> Dataset:
    try:
        return datasets.load_dataset(src.id, split=src.split)
    except Exception as exc:  # noqa: BLE001 - offline, gated, missing: all end here
        raise DataError(
            f"data source {src.id!r} (split {src.split!r}): cannot load it from the Hugging Face hub "
            f"({type(exc).__name__}: {str(exc)[:120]}); fix: check the id and network, or save it "
            "to a local .jsonl/.parquet file and use that path as the source id"
        ) from exc


def _standard_columns(ds: Dataset, src: DataSource) -> Dataset:
    for field_name, column in (("input_field", src.input_field), ("target_field", src.target_field)):
        if column not in ds.column_names:
            raise DataError(
                f"data source {src.id!r}: no column {column!r}; set {field_name} to one of {ds.column_names}"
            )
    ds = ds.select_columns([src.input_field, src.target_field])
    pairs = ((src.input_field, "input"), (src.target_field, "target"))
    renames = {old: new for old, new in pairs if old != new}
    ds = ds.rename_columns(renames) if renames else ds
    for column in ("input", "target"):
        if ds.features[column] != Value("string"):
            ds = ds.cast_column(column, Value("string"))
    return ds


def load_train(task: TaskSpec) -> Dataset:
    """The task's train sources concatenated, with a ``source`` column naming each row's source id."""
    parts = []
    for src in task.data.train:
        ds = load_source(src)
        parts.append(ds.add_column("source", [src.id] * len(ds)))
    return datasets.concatenate_datasets(parts) if len(parts) > 1 else parts[0]


