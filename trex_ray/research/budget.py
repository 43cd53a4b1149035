"""Budgets: nodes, compute-seconds and wall time, read off the tree so that they survive a resume.

``max_nodes`` counts experiments beyond the base model that trained to their end (finished, pruned,
failed, or still pending/running): a trial the scheduler stopped early left no scored model, so it
frees its place for another, the way a user who cut a run short would start one more. Stopped trials
are capped all the same: no more than ``max_nodes`` of them, so at most twice ``max_nodes`` nodes start.
The compute of every node (finished, failed or stopped) counts; wall time runs from the run's first
start, or from the resume that gave the run a new ``wall_seconds`` (``budget_changed``).
"""

from __future__ import annotations

import time

from trex_ray.spec import Budget
from trex_ray.tree import NodeStatus, SearchTree


class BudgetTracker:
    def __init__(self, budget: Budget, tree: SearchTree) -> None:
        self.budget = budget
        self.tree = tree

    def nodes_started(self) -> int:
        """Every node beyond the base model."""
        return max(0, len(self.tree) - 1)

    def nodes_stopped(self) -> int:
        """Trials the scheduler stopped early."""
        return sum(1 for n in self.tree if n.parent is not None and n.status is NodeStatus.stopped)

    def nodes_used(self) -> int:
        """The nodes that count against ``max_nodes``: all but those stopped early."""
        return self.nodes_started() - self.nodes_stopped()

    def nodes_left(self) -> int:
        cap = 2 * self.budget.max_nodes - self.nodes_started()  # stopped ones: max_nodes at most
        return max(0, min(self.budget.max_nodes - self.nodes_used(), cap))

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
