"""Insight memory: what each result taught, as a sentence for people and LLMs and as facts for planners.

Example::

    text, facts = distill(tree, node)      # after a node's result is in
    memory = InsightMemory(tree.insights)
    memory.lr_ceiling("full")              # lowest learning rate seen to diverge, or None
"""

from __future__ import annotations

from typing import Any

from trex_ray.spec import FailureKind, Outcome
from trex_ray.spec.plan_text import plan_changes
from trex_ray.tree import Node, SearchTree


def distill(tree: SearchTree, node: Node) -> tuple[str, dict[str, Any]]:
    """One insight from a node's result, compared with its parent."""
    result = node.result
    assert result is not None
    train = node.plan.train
    what = f"{train.mode.value} lr={train.learning_rate:g} epochs={train.epochs:g}"
    if result.outcome is Outcome.failed:
        kind = (result.failure or FailureKind.error).value
        facts = {"kind": kind, "mode": train.mode.value, "lr": train.learning_rate}
        why = f" ({result.error})" if result.error else ""
        return f"{node.id} [{what}] {kind}{why}", facts
    if result.outcome is Outcome.stopped:
        return f"{node.id} [{what}] stopped early: its validation loss lost to its siblings'", {
            "kind": "stopped",
            "mode": train.mode.value,
            "lr": train.learning_rate,
        }
    parent = tree.get(node.parent) if node.parent else None
    if parent is None or parent.metric is None or node.metric is None:
        return f"{node.id} [{what}] scored {node.metric}", {"kind": "score", "metric": node.metric}
    changes = plan_changes(parent.plan, node.plan)
    delta = node.metric - parent.metric
    verdict = "helped" if delta > 0.01 else "hurt" if delta < -0.01 else "changed little"
    text = (
        f"vs {parent.id}: {', '.join(changes) or 'same plan'} {verdict} "
        f"({parent.metric:.3f} -> {node.metric:.3f}, {delta:+.3f})"
    )
    return text, {"kind": "delta", "changes": changes, "delta": delta, "mode": train.mode.value}


class _Index:
    """Facts of an append-only record list, by kind and by change; extended as records are added."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records
        self.seen = 0
        self.by_kind: dict[str, list[dict[str, Any]]] = {}
        self.deltas: dict[str, list[float]] = {}

    def update(self) -> _Index:
        for r in self.records[self.seen:]:
            facts = r.get("facts", {})
            self.by_kind.setdefault(facts.get("kind"), []).append(facts)
            if facts.get("kind") == "delta":
                for change in facts.get("changes", []):
                    self.deltas.setdefault(change, []).append(facts["delta"])
        self.seen = len(self.records)
        return self


_INDEXES: dict[int, _Index] = {}  # by id() of a tree's insight list; a few at a time


def _index(records: list[dict[str, Any]]) -> _Index:
    idx = _INDEXES.get(id(records))
    if idx is None or idx.records is not records or len(records) < idx.seen:
        if len(_INDEXES) >= 16:
            _INDEXES.clear()
        idx = _INDEXES[id(records)] = _Index(records)
    return idx.update()


class InsightMemory:
    """Reads the tree's insight records; planners ask it what to avoid and what worked.

    The records are append-only (``SearchTree.insights``); their facts are indexed once and the index
    is extended as records arrive, so asking costs no scan of the whole history.
    """

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records
        self._idx = _index(records)

    def facts(self, kind: str) -> list[dict[str, Any]]:
        return list(self._idx.update().by_kind.get(kind, []))

    def lr_ceiling(self, mode: str) -> float | None:
        """The lowest learning rate that diverged for this training mode."""
        lrs = [f["lr"] for f in self.facts("diverged") if f.get("mode") == mode]
        return min(lrs) if lrs else None

    def change_effect(self, change: str) -> float | None:
        """Mean metric delta seen when a plan made this change (e.g. ``+data.dedup``)."""
        deltas = self._idx.update().deltas.get(change)
        return sum(deltas) / len(deltas) if deltas else None

    def render(self, max_chars: int = 2000) -> str:
        """Most recent insights first, cut to a character budget (for prompts and reports)."""
        lines, used = [], 0
        for r in reversed(self.records):
            line = f"- {r.get('text', '')}"
            if used + len(line) > max_chars:
                break
            lines.append(line)
            used += len(line) + 1
        return "\n".join(lines)
