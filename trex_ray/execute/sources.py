"""Data sources: a task's train and eval sources as rows of ``input``, ``target``, ``system``, ``history``.

A source is ``builtin:<task>`` (generated offline), a local file (.jsonl, .json, .parquet, .csv) or
folder, or a hub dataset. Its rows come in one of four formats (``DataSource.format``; ``auto``
picks by the columns):

- ``text``: the ``input_field`` and ``target_field`` columns;
- ``alpaca``: ``instruction``, optional ``input``, ``output``, optional ``system``;
- ``sharegpt``: ``conversations``, a list of ``{"from": "human"|"gpt"|"system", "value": ...}``;
- ``messages``: ``messages``, a list of ``{"role": "user"|"assistant"|"system", "content": ...}``.

Every source becomes four string columns: ``input`` (the final user message), ``target`` (the reply
to learn), ``system`` ("" when none) and ``history`` (``json.dumps`` of the earlier
``[{"role": "user"|"assistant", "content": ...}]`` turns, "[]" when none). Label columns that are
not strings become text: class names, "true"/"false", and lists joined with ", " (``columns.py``).

Example::

    ds = load_source(DataSource(id="data/train.jsonl", input_field="text", target_field="label"))
    ds.column_names  # ['input', 'target', 'system', 'history']
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import datasets
from datasets import Dataset, Features, Value

from trex_ray.execute.columns import Ctx, optional, strings
from trex_ray.spec import DataSource, TaskSpec
from trex_ray.spec.builtin import HINT, builtin_data, data_names
from trex_ray.spec.data_ops import DataError

logger = logging.getLogger(__name__)

COLUMNS = ("input", "target", "system", "history")
BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
# The columns that reveal a format (checked in this order) and every column the format reads.
DETECT = (("messages", {"messages"}), ("sharegpt", {"conversations"}), ("alpaca", {"instruction", "output"}))
OWN_COLUMNS = {
    "messages": {"messages", "system"},
    "sharegpt": {"conversations", "system"},
    "alpaca": {"instruction", "input", "output", "system"},
}
ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "model": "assistant",
    "chatgpt": "assistant",
    "bot": "assistant",
}
Rows = dict[str, list[str]]


def load_source(src: DataSource, where: str | None = None) -> Dataset:
    """One source as a Dataset with the string columns ``input``, ``target``, ``system``, ``history``.

    ``where`` is how the task spec names the source (``data.train[0]``); errors name its fields so.
    """
    ctx = Ctx(src, where)
    if src.convert is not None:
        from trex_ray.execute.records import load_converted

        return load_converted(src, ctx.field, ctx.error)
    if src.kind == "builtin":
        ds = _load_builtin(ctx)
    elif src.kind in ("local", "url"):
        ds = _load_local(ctx) if src.kind == "local" else _load_url(ctx)
    else:
        ds = _load_hub(ctx)
    if len(ds) == 0:
        raise ctx.error(f"no rows; put examples in it or pick another {ctx.field('split')}")
    if src.limit is not None and src.limit < len(ds):
        ds = ds.select(range(src.limit))
    fmt = _format(ds, src)
    rows = FORMATS[fmt](ds, ctx)
    return Dataset.from_dict(rows, features=Features({c: Value("string") for c in COLUMNS}))


def load_train(task: TaskSpec) -> Dataset:
    """The task's train sources concatenated, with a ``source`` column naming each row's source id."""
    parts = []
    for i, src in enumerate(task.data.train):
        ds = load_source(src, where=f"data.train[{i}]")
        parts.append(ds.add_column("source", [src.id] * len(ds)))
    return datasets.concatenate_datasets(parts) if len(parts) > 1 else parts[0]


# --- reading ---------------------------------------------------------------------------------
def _load_builtin(ctx: Ctx) -> Dataset:
    """A real corpus shipped in a package or a generated task (``spec/builtin.py``; ftbench's)."""
    name = ctx.src.id.removeprefix("builtin:")
    data = builtin_data(name)
    if data is None:
        known = [f"builtin:{n}" for n in data_names()]
        raise ctx.error(f"no such built-in task or corpus; use one of {known}" if known else HINT)
    try:
        records = data.records(ctx.src.split)
    except ValueError as exc:  # CorpusUnavailable too: its message names the pip command
        raise ctx.error(str(exc)) from exc
    return Dataset.from_list(records)


def _load_local(ctx: Ctx) -> Dataset:
    path = Path(ctx.src.id).expanduser()
    if path.is_dir():
        return _load_folder(ctx, path)
    if not path.is_file():
        raise ctx.error(f"file not found; fix the path (relative to {Path.cwd()})")
    builder = BUILDERS.get(path.suffix.lower())
    if builder is None:
        raise ctx.error(f"file type {path.suffix!r} is not read; convert it to one of {sorted(BUILDERS)}")
    if path.stat().st_size == 0:
        raise ctx.error("no rows; the file is empty, put examples in it")
    try:
        return datasets.load_dataset(builder, data_files=str(path), split="train")
    except Exception as exc:  # noqa: BLE001 - any reader error becomes one clear line
        if "corresponds to no data" in str(exc):
            raise ctx.error("no rows; the file holds no examples, put examples in it") from exc
        raise ctx.error(
            f"cannot read it as {builder} ({_brief(exc)}); fix the file "
            "(.jsonl: one JSON object per line; .json: a list of objects; .csv: a header row)"
        ) from exc


def _load_url(ctx: Ctx) -> Dataset:
    """One data file at an http(s) URL, read by its suffix like a local file."""
    suffix = "." + ctx.src.id.rsplit("?", 1)[0].rsplit(".", 1)[-1].lower()
    builder = BUILDERS.get(suffix)
    if builder is None:
        raise ctx.error(f"URL file type {suffix!r} is not read; point it at one of {sorted(BUILDERS)}")
    try:
        return datasets.load_dataset(builder, data_files=ctx.src.id, split="train")
    except Exception as exc:  # noqa: BLE001 - offline, missing, unreadable: one line
        raise ctx.error(f"cannot load it ({_brief(exc)}); check the URL and the network, or download "
                        "the file and use its path as the source id") from exc


def _load_folder(ctx: Ctx, path: Path) -> Dataset:
    """A folder saved by ``save_to_disk``, or a folder of data files (one per split) read like a hub id."""
    if not (path / "state.json").is_file() and not (path / "dataset_dict.json").is_file():
        return _load_hub(ctx)
    try:
        saved = datasets.load_from_disk(str(path))
    except Exception as exc:  # noqa: BLE001 - a broken folder is one line
        raise ctx.error(f"cannot read the saved dataset ({_brief(exc)}); save it again") from exc
    if isinstance(saved, datasets.DatasetDict):
        if ctx.src.split not in saved:
            raise ctx.error(f"no split {ctx.src.split!r}; set {ctx.field('split')} to one of {list(saved)}")
        return saved[ctx.src.split]
    return saved


def _load_hub(ctx: Ctx) -> Dataset:
    src = ctx.src
    try:
        if src.data_file:  # one file of the repo, not its configs
            return datasets.load_dataset(src.id, data_files=src.data_file, split="train",
                                         revision=src.revision)
        return datasets.load_dataset(src.id, src.config, split=src.split, revision=src.revision)
    except Exception as exc:  # noqa: BLE001 - offline, gated, missing: all end here
        ref = ", ".join(
            f"{k} {v!r}"
            for k, v in (("config", src.config), ("split", src.split), ("revision", src.revision))
            if v is not None
        )
        raise DataError(
            f"data source {src.id!r} ({ref}): cannot load it ({_brief(exc)}); fix: check the id, "
            f"{ctx.field('config')}, {ctx.field('split')} and the network, or save it to a local "
            ".jsonl/.parquet file and use that path as the source id"
        ) from exc


def _brief(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"


def _format(ds: Dataset, src: DataSource) -> str:
    """The source's format; ``auto`` picks by the columns, unless input_field / target_field name others."""
    if src.format != "auto":
        return src.format
    columns = set(ds.column_names)
    found = next((fmt for fmt, needed in DETECT if needed <= columns), "text")
    chosen = {getattr(src, f) for f in ("input_field", "target_field") if f in src.model_fields_set}
    if found != "text" and chosen - OWN_COLUMNS[found]:
        found = "text"  # the user named the columns to read
    logger.info("data source %r: format %s", src.id, found)
    return found


# --- formats ---------------------------------------------------------------------------------
def _text_rows(ds: Dataset, ctx: Ctx) -> Rows:
    src = ctx.src
    inputs = strings(ds, ctx, src.input_field, "input_field")
    targets = strings(ds, ctx, src.target_field, "target_field", src.label_names)
    return {"input": inputs, "target": targets, "system": [""] * len(ds), "history": ["[]"] * len(ds)}


def _alpaca_rows(ds: Dataset, ctx: Ctx) -> Rows:
    for column in ("instruction", "output"):
        if column not in ds.column_names:
            raise ctx.error(
                f"format alpaca needs a column {column!r} (has {ds.column_names}); rename it, "
                f"or set {ctx.field('format')} to text with input_field/target_field"
            )
    instructions = strings(ds, ctx, "instruction", "format")
    extras = optional(ds, ctx, "input")
    inputs = [
        f"{ins}\n\n{extra}" if extra.strip() else ins for ins, extra in zip(instructions, extras, strict=True)
    ]
    targets = strings(ds, ctx, "output", "format", ctx.src.label_names)
    return {
        "input": inputs,
        "target": targets,
        "system": optional(ds, ctx, "system"),
        "history": ["[]"] * len(ds),
    }


def _chat_rows(column: str, role_key: str, content_key: str) -> Callable[[Dataset, Ctx], Rows]:
    """The reader of a chat format: conversations in ``column``, turns of ``role_key`` / ``content_key``."""

    def read(ds: Dataset, ctx: Ctx) -> Rows:
        if column not in ds.column_names:
            raise ctx.error(
                f"no column {column!r} (has {ds.column_names}); rename it, or set "
                f"{ctx.field('format')} to the format of the file"
            )
        rows: Rows = {c: [] for c in COLUMNS}
        systems = optional(ds, ctx, "system")
        for row, (turns, system) in enumerate(zip(ds[column][:], systems, strict=True)):
            parsed = _turns(turns, ctx, row, column, (role_key, content_key))
            for name, value in zip(COLUMNS, _split_chat(parsed, system, ctx, row, column), strict=True):
                rows[name].append(value)
        return rows

    return read


def _turns(turns: Any, ctx: Ctx, row: int, column: str, keys: tuple[str, str]) -> list[tuple[str, str]]:
    """A conversation as (role, content) pairs, roles normalised to system / user / assistant."""
    role_key, content_key = keys
    if isinstance(turns, str):
        try:
            turns = json.loads(turns)
        except ValueError:
            turns = None
    if isinstance(turns, dict):  # a sequence of dicts read as a dict of lists
        turns = [dict(zip(turns, values, strict=True)) for values in zip(*turns.values(), strict=True)]
    shape = f"a list of {{{role_key!r}: ..., {content_key!r}: ...}} objects"
    if not isinstance(turns, list) or not all(isinstance(t, dict) and role_key in t for t in turns):
        raise ctx.error(
            f"row {row}: column {column!r} is not {shape}; fix the row or set {ctx.field('format')}"
        )
    pairs = []
    for turn in turns:
        role = ROLES.get(str(turn[role_key]).lower())
        content = _content(turn.get(content_key))
        if role is None or content is None:
            bad = f"role {turn[role_key]!r}" if role is None else f"{content_key!r} {turn.get(content_key)!r}"
            raise ctx.error(
                f"row {row}: column {column!r} has a turn with {bad}; keep only system/user/assistant "
                "turns with text content"
            )
        pairs.append((role, content))
    return pairs


def _content(value: Any) -> str | None:
    """A turn's text: a string, None (""), or a list of text parts; None when it is something else."""
    if value is None or isinstance(value, str):
        return value or ""
    if isinstance(value, list) and all(isinstance(p, dict) and isinstance(p.get("text"), str) for p in value):
        return "".join(p["text"] for p in value)
    return None


def _split_chat(
    turns: list[tuple[str, str]], system: str, ctx: Ctx, row: int, column: str
) -> tuple[str, ...]:
    """(input, target, system, history): the last assistant turn, the user turn before it, the rest."""
    systems = [system, *(text for role, text in turns if role == "system")]
    rest = [(role, text) for role, text in turns if role != "system"]
    last = max((i for i, (role, _) in enumerate(rest) if role == "assistant"), default=None)
    if last is None:
        raise ctx.error(
            f"row {row}: the conversation in column {column!r} has no assistant turn; "
            "give every row an assistant reply to learn, or drop the row"
        )
    if last == 0 or rest[last - 1][0] != "user":
        raise ctx.error(
            f"row {row}: the last assistant turn in column {column!r} does not follow a user turn; "
            "put the user message it answers right before it"
        )
    history = [{"role": role, "content": text} for role, text in rest[: last - 1]]
    return rest[last - 1][1], rest[last][1], "\n\n".join(s for s in systems if s), json.dumps(history)


FORMATS: dict[str, Callable[[Dataset, Ctx], Rows]] = {
    "text": _text_rows,
    "alpaca": _alpaca_rows,
    "sharegpt": _chat_rows("conversations", "from", "value"),
    "messages": _chat_rows("messages", "role", "content"),
}
