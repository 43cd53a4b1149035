"""Built-in data: what ``builtin:<name>`` sources, ``convert: <name>`` and the tiny test model's words
name, registered by the part that owns them and read by those that use them.

``ftbench`` fills it when it is imported (its corpora, generated tasks, conversions, lexicon and task
catalogue); ``execute`` reads it to load a source, convert records and build the tiny model;
``research`` to draft a task and search the catalogue. It lives in ``spec`` so that both read one
registry without importing ``ftbench``. A process that reads it must import ``trex_ray.ftbench``
first: the ``trex`` command, every module of ``runtime/`` and the tests do.

Example::

    register_data("reverse", lambda split: generate("reverse", split), generated=True)
    builtin_data("reverse").records("train")[0]   # {'input': ..., 'target': ...}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Records = list[dict[str, Any]]
Pair = tuple[str, str]
HINT = "no built-in data is registered in this process: import trex_ray.ftbench first (it registers them)"


class ConvertError(ValueError):
    """A record does not have the schema its conversion reads; the message names the column."""


@dataclass(frozen=True)
class BuiltinData:
    """A built-in data set: ``records(split)`` gives its rows (``input``, ``target``, ...)."""

    name: str
    records: Callable[[str], Records]
    generated: bool  # generated offline (a test fixture); else real text shipped in a package


@dataclass(frozen=True)
class Words:
    """The tiny test model's words: its vocabulary and the word classes that share a direction."""

    vocabulary: Callable[[], list[str]]
    classes: Callable[[], dict[str, list[str]]]


_DATA: dict[str, BuiltinData] = {}
_CONVERSIONS: dict[str, Callable[[Records], list[Pair]]] = {}
_TASKS: dict[str, str] = {}  # built-in task name -> one-line description
_VERSIONS: dict[str, int] = {}  # parts of the prepared-data cache key ("generators", "convert")
_WORDS: list[Words] = []


def register_data(name: str, records: Callable[[str], Records], generated: bool) -> None:
    _DATA[name] = BuiltinData(name, records, generated)


def register_conversion(name: str, fn: Callable[[Records], list[Pair]]) -> None:
    _CONVERSIONS[name] = fn


def register_task(name: str, description: str) -> None:
    _TASKS[name] = description


def register_version(key: str, version: int) -> None:
    _VERSIONS[key] = version


def register_words(words: Words) -> None:
    _WORDS[:] = [words]


def data_names(generated: bool | None = None) -> list[str]:
    """Registered data sets: the real ones first, then the generated, each sorted by name."""
    real = sorted(n for n, d in _DATA.items() if not d.generated)
    made = sorted(n for n, d in _DATA.items() if d.generated)
    return {None: real + made, True: made, False: real}[generated]


def builtin_data(name: str) -> BuiltinData | None:
    return _DATA.get(name)


def convert(name: str, records: Records) -> list[Pair]:
    """The named conversion of ``records``; ``ValueError`` naming the known ones for an unknown name."""
    if name not in _CONVERSIONS:
        raise ValueError(f"conversion {name!r} is unknown; use one of {sorted(_CONVERSIONS)}"
                         if _CONVERSIONS else f"conversion {name!r}: {HINT}")
    return _CONVERSIONS[name](records)


def task_catalogue() -> list[tuple[str, str]]:
    """(name, description) of every built-in task, in the order they were registered."""
    return list(_TASKS.items())


def version(key: str) -> int:
    if key not in _VERSIONS:
        raise LookupError(f"built-in data version {key!r}: {HINT}")
    return _VERSIONS[key]


def words() -> Words:
    if not _WORDS:
        raise LookupError(f"the tiny model's vocabulary: {HINT}")
    return _WORDS[0]
