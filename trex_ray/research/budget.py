"""Budgets: nodes, compute-seconds and wall time, read off the tree so that they survive a resume.

``max_nodes`` counts experiments beyond the base model; the compute of every node (finished,
failed or stopped) counts; wall time runs from the run's first start, or from the resume that gave
the run a new ``wall_seconds`` (``budget_changed``).
"""

from __future__ import annotations

import time

from trex_ray.spec import Budget
from trex_ray.tree import SearchTree


class BudgetTracker:
    def __init__(self, budget: Budget, tree: SearchTree) -> None:
        self.budget = budget
        self.tree = tree

    def nodes_used(self) -> int:
        return max(0, len(self.tree) - 1)

    def nodes_left(self) -> int:
        return max(0, self.budget.max_nodes - self.nodes_used())

    def can_add_node(self) -> bool:
        return self.nodes_left() > 0

    def compute_used(self) -> float:
        """Compute of every result, and of the attempts that failed and were retried."""
        done = sum(n.result.cost.compute_seconds for n in self.tree if n.result is not None)
        retried = sum((a.get("cost") or {}).get("compute_seconds", 0.0)
                      for n in self.tree for a in n.failed_attempts)
        return done + retried

    def wall_used(self) -> float:
        """Seconds since the run's first start, or since a resume that set a new wall-time limit."""
        started = self.tree.meta.get("wall_started") or self.tree.meta.get("started")
        return time.time() - started if started else 0.0

    def exhausted(self) -> str | None:
        """Why no new trial may start, or None while the budget lasts (node count aside)."""
        b = self.budget
        if b.compute_seconds is not None and self.compute_used() >= b.compute_seconds:
            return f"compute budget spent ({self.compute_used():.0f}/{b.compute_seconds:.0f} s)"
        if b.wall_seconds is not None and self.wall_used() >= b.wall_seconds:
            return f"wall-time budget spent ({self.wall_used():.0f}/{b.wall_seconds:.0f} s)"
        return None
