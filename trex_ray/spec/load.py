"""Load a TaskSpec from YAML, apply ``key.sub=value`` overrides, and explain errors in one line."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from trex_ray.spec.task import TaskSpec

MAX_FILE_BYTES = 1_000_000  # a task file
MAX_DEPTH = 32  # nesting of a task's mappings and lists
MAX_VALUES = 100_000  # values in a task (keys, items and scalars)


class SpecError(ValueError):
    """A task file or override is wrong; the message names the field and the fix."""


def load_task(source: str | Path | dict[str, Any], overrides: list[str] | None = None) -> TaskSpec:
    """Load a task from a YAML path or a dict, then apply overrides like ``budget.max_nodes=4``."""
    raw = _read(source) if not isinstance(source, dict) else copy.deepcopy(source)  # overrides must not leak
    for item in overrides or []:
        _apply_override(raw, item)
    return validate(TaskSpec, raw, where=str(source) if not isinstance(source, dict) else "task")


def validate(model: type[BaseModel], raw: Any, where: str) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(f"{where}: {_explain(exc)}") from None


def _read(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such task file; give a YAML path or a built-in task name "
                        "(see `trex tasks`)")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise SpecError(f"{path}: {path.stat().st_size} bytes; a task file is at most {MAX_FILE_BYTES} bytes "
                        "(point data sources at data files instead of inlining data)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SpecError(f"{path}: is not UTF-8 text; save the task file as UTF-8 YAML") from None
    if _nesting_bound(text) > MAX_DEPTH * 2:  # the YAML parser recurses per level: refuse before parsing
        raise SpecError(f"{path}: the task nests over {MAX_DEPTH} levels; a task file is a small "
                        "mapping of fields")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        problem = _one_line(getattr(exc, "problem", None) or exc)
        raise SpecError(f"{path}:{line} is not valid YAML ({problem}); fix the syntax") from None
    except (ValueError, TypeError, RecursionError) as exc:  # e.g. a date 2020-02-30, !!int x, deep nesting
        raise SpecError(f"{path}: a value is not valid YAML ({_one_line(exc)}); quote it or fix it") from None
    _check_shape(data, str(path))
    if not isinstance(data, dict):
        raise SpecError(f"{path}: the top level must be a mapping of fields (name, model, data, metric, ...)")
    return data


def _nesting_bound(text: str) -> int:
    """How deep ``text`` nests, estimated without parsing it: flow brackets outside quoted scalars, and
    half the columns of a line's indentation and compact ``- ``/``? `` markers."""
    depth = deepest = 0
    quote, escaped, prev = "", False, "\n"
    for char in text:
        if quote:
            escaped, quote = (False, quote) if escaped else (char == "\\" and quote == '"',
                                                              "" if char == quote else quote)
        elif char in "'\"" and prev in " \t\n:[{,-?":  # a quoted scalar starts a token (not "it's")
            quote = char
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(0, depth - 1)
        prev = char
    block = max((len(line) - len(line.lstrip(" \t-?:")) for line in text.splitlines()), default=0)
    return max(deepest, block // 2)


def _one_line(value: Any, limit: int = 160) -> str:
    text = " ".join(str(value).split()) or type(value).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_shape(data: Any, where: str) -> None:
    """Refuse what no task needs and what would make validation slow or recurse: a structure nested
    more than ``MAX_DEPTH`` deep, of more than ``MAX_VALUES`` values (YAML aliases counted each time
    they are used), or one that contains itself (``&a [*a]``)."""
    stack: list[tuple[Any, int, tuple[int, ...]]] = [(data, 0, ())]
    count = 0
    while stack:
        value, depth, inside = stack.pop()
        count += 1
        if depth > MAX_DEPTH or count > MAX_VALUES:
            what = f"nests over {MAX_DEPTH} levels" if depth > MAX_DEPTH else f"has over {MAX_VALUES} values"
            raise SpecError(f"{where}: the task {what}; a task file is a small mapping of fields")
        if not isinstance(value, (dict, list)):
            continue
        if id(value) in inside:
            raise SpecError(f"{where}: the task refers to itself (a YAML alias inside its own anchor); "
                            "write the value out")
        children = [*value.keys(), *value.values()] if isinstance(value, dict) else value
        stack.extend((child, depth + 1, (*inside, id(value))) for child in children)


def _apply_override(raw: dict[str, Any], item: str) -> None:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise SpecError(f"override {item!r}: write it as key.sub=value, e.g. budget.max_nodes=8")
    node: Any = raw
    parts = key.split(".")
    for part in parts[:-1]:
        if isinstance(node, list):
            node = _list_item(node, part, item)
            continue
        child = node.setdefault(part, {})
        if not isinstance(child, (dict, list)):
            raise SpecError(f"override {item!r}: {part} is not a mapping; "
                            "override its fields only on mappings")
        node = child
    if _nesting_bound(value) > MAX_DEPTH * 2:
        raise SpecError(f"override {item[:80]!r}: the value nests over {MAX_DEPTH} levels; give a plain one")
    try:
        parsed = yaml.safe_load(value) if value else value
    except (yaml.YAMLError, ValueError, TypeError, RecursionError):
        raise SpecError(f"override {item!r}: the value is not valid YAML; quote it or fix it") from None
    _check_shape(parsed, f"override {item!r}")
    if isinstance(node, list):
        node[_index(node, parts[-1], item)] = parsed
    else:
        node[parts[-1]] = parsed


def _index(items: list[Any], part: str, item: str) -> int:
    if not part.isdigit() or int(part) >= len(items):
        raise SpecError(f"override {item!r}: {part} is not an index of a list of {len(items)}; "
                        f"use 0..{len(items) - 1}")
    return int(part)


def _list_item(items: list[Any], part: str, item: str) -> Any:
    child = items[_index(items, part, item)]
    if not isinstance(child, dict):
        raise SpecError(f"override {item!r}: item {part} is not a mapping")
    return child


def _explain(exc: ValidationError) -> str:
    err = exc.errors()[0]
    field = _one_line(".".join(str(p) for p in err["loc"]) or "(top level)", 100)
    kind = err["type"]
    if kind == "missing":
        fix = "add it"
    elif kind == "extra_forbidden":
        fix = "remove it or check its spelling"
    elif kind == "enum" or kind == "literal_error":
        fix = f"use one of {err.get('ctx', {}).get('expected', 'the allowed values')}"
    else:
        fix = err["msg"][0].lower() + err["msg"][1:]
        fix = fix.removeprefix("value error, ")
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"field {field}: {_one_line(fix, 300)}{more}"
