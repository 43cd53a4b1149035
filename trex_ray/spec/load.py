"""Load a TaskSpec from YAML, apply ``key.sub=value`` overrides, and explain errors in one line."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from trex_ray.spec.task import TaskSpec


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
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise SpecError(f"{path}: is not UTF-8 text; save the task file as UTF-8 YAML") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", exc)
        raise SpecError(f"{path}:{line} is not valid YAML ({problem}); fix the syntax") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: the top level must be a mapping of fields (name, model, data, metric, ...)")
    return data


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
    try:
        parsed = yaml.safe_load(value) if value else value
    except yaml.YAMLError:
        raise SpecError(f"override {item!r}: the value is not valid YAML; quote it or fix it") from None
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
    field = ".".join(str(p) for p in err["loc"]) or "(top level)"
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
    return f"field {field}: {fix}{more}"
