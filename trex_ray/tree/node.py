"""A node of the search tree: one experiment, its plan, its state and what it produced."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from trex_ray.spec import Outcome, Plan, Progress, Result


class NodeStatus(str, Enum):
    pending = "pending"  # planned, not started (or re-queued after a crash)
    running = "running"
    finished = "finished"
    failed = "failed"
    stopped = "stopped"  # stopped early by the scheduler
    pruned = "pruned"  # finished, but closed to expansion: it lost to its siblings

    @property
    def done(self) -> bool:
        return self in (NodeStatus.finished, NodeStatus.failed, NodeStatus.stopped, NodeStatus.pruned)


_OUTCOME_STATUS = {
    Outcome.finished: NodeStatus.finished,
    Outcome.failed: NodeStatus.failed,
    Outcome.stopped: NodeStatus.stopped,
}


@dataclass
class Node:
    id: str
    parent: str | None
    plan: Plan
    depth: int = 0
    status: NodeStatus = NodeStatus.pending
    result: Result | None = None
    progress: list[Progress] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    insight: str | None = None
    prune_reason: str | None = None
    attempts: int = 0
    # Attempts that failed in a way worth retrying (lost worker, timeout) and were re-queued:
    # {"attempt", "failure", "error", "cost"}. Their compute counts; their reward is never backed up.
    failed_attempts: list[dict[str, Any]] = field(default_factory=list)
    # The node's score on the test split (``node_tested``): never read by the search, only reported.
    test: dict[str, Any] | None = None
    # Its checkpoint was deleted by checkpoint retention (``search.keep_checkpoints``): nothing can
    # warm-start from it or export it any more.
    checkpoint_deleted: bool = False
    started_at: float | None = None  # wall-clock time of the latest start
    finished_at: float | None = None
    # Backed-up statistics of the subtree rooted here (finished descendants and itself).
    visits: int = 0
    value_sum: float = 0.0
    best_value: float = -math.inf

    @property
    def metric(self) -> float | None:
        return self.result.metric if self.result is not None and self.result.ok else None

    @property
    def test_metric(self) -> float | None:
        return self.test.get("test_metric") if self.test else None

    @property
    def ok(self) -> bool:
        return self.result is not None and self.result.ok

    @property
    def expandable(self) -> bool:
        """Finished well and not pruned: a plan can build on it."""
        return self.status is NodeStatus.finished and self.ok

    @property
    def mean_value(self) -> float:
        return self.value_sum / self.visits if self.visits else 0.0

    def val_loss_at(self, fraction: float) -> float | None:
        """Validation loss reported at this fraction of training (within 0.05); None if not reported."""
        for p in self.progress or (self.result.curve if self.result else []):
            if abs(p.fraction - fraction) <= 0.05 and p.val_loss is not None:
                return p.val_loss
        return None

    def val_loss_at_epochs(self, epochs: float) -> float | None:
        """Validation loss after ``epochs`` epochs of this run's own training (None if not reported)."""
        own = self.plan.train.epochs
        return self.val_loss_at(epochs / own) if own > 0 else None

    def finish(self, result: Result) -> None:
        self.result = result
        self.status = _OUTCOME_STATUS[result.outcome]
        if result.curve:
            self.progress = list(result.curve)
