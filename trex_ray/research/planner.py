"""The planner contract and its registry.

A planner proposes child plans for a node. It never runs anything; it only returns data.

Example::

    planner = get_planner("heuristic", task, run_dir)
    plans = planner.propose(tree, node, k=2)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from trex_ray.spec import Plan, TaskSpec
from trex_ray.tree import Node, SearchTree


class Planner(Protocol):
    name: str

    def propose(self, tree: SearchTree, node: Node, k: int) -> list[Plan]:
        """Up to ``k`` new child plans for ``node`` (fewer, or none, when it has no more ideas)."""
        ...

    def reflect(self, tree: SearchTree, node: Node) -> tuple[str, dict[str, Any]] | None:
        """An insight (text, facts) from a node's result, or None to use the built-in distiller."""
        ...


PlannerFactory = Callable[[TaskSpec, "str | Path | None"], Planner]
_PLANNERS: dict[str, PlannerFactory] = {}


def register_planner(name: str) -> Callable[[PlannerFactory], PlannerFactory]:
    def wrap(factory: PlannerFactory) -> PlannerFactory:
        _PLANNERS[name] = factory
        return factory

    return wrap


def planner_names() -> list[str]:
    return sorted(_PLANNERS)


def get_planner(name: str, task: TaskSpec, run_dir: str | Path | None = None) -> Planner:
    """Build a planner; ``run_dir`` is where it may keep records (e.g. an LLM planner's calls): the
    run's durable location, a folder or a bucket URI, so that they survive a resume anywhere."""
    if name not in _PLANNERS:
        raise ValueError(f"search.planner: unknown planner {name!r}; use one of {planner_names()}")
    return _PLANNERS[name](task, run_dir)
