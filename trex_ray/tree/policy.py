"""Tree policies: which node to expand next, which siblings to close, which running trial to stop.

``UCTPolicy.select`` descends from the root by UCT with a max-backup value (we want the best
model, not the best average), an exploration weight that decays as the tree grows, and
progressive widening (a node may have ``ceil(c * visits**alpha)`` children, so promising nodes
get more). ``prune`` closes losing siblings to expansion (successive halving on final metrics);
``decide`` stops a running trial whose validation loss at a rung is in the losing part of what
its siblings of the same kind (cold runs with cold runs, warm starts with warm starts) reached
after as many epochs (asynchronous successive halving); never the last hope of its sibling group
(no other sibling running, none finished), and never against an interrupted attempt's reports.

Example::

    policy = UCTPolicy(SearchSpec())
    node = policy.select(tree)          # None: nothing can be expanded now
    losers = policy.prune(tree, finished_node)
"""

from __future__ import annotations

import math
from typing import Protocol

from trex_ray.spec import Decision, FailureKind, Progress, SearchSpec
from trex_ray.tree.node import Node, NodeStatus
from trex_ray.tree.tree import SearchTree

MAX_CHILDREN = 8  # hard cap per node, whatever the widening allows
PRUNE_MARGIN = 0.02  # a sibling this much below the best is a loser
MIN_RUNG = 0.5  # no trial is stopped before half of its training
STOP_MARGIN = 0.02  # a running trial is stopped only this much (relative) worse than the last one kept
MAX_REPAIR_DEPTH = 3  # failed nodes deeper than this are not repaired


class TreePolicy(Protocol):
    def select(self, tree: SearchTree) -> Node | None: ...
    def prune(self, tree: SearchTree, node: Node) -> list[Node]: ...
    def decide(self, tree: SearchTree, node: Node, progress: Progress) -> Decision: ...


class UCTPolicy:
    def __init__(self, search: SearchSpec) -> None:
        self.search = search
        # Failed nodes seen not to be repairable. That never changes (a failure is final, a node's
        # children only grow), so select() checks each failed node once, not at every decision.
        self._unrepairable: set[str] = set()
        self._tree: SearchTree | None = None  # the tree those ids belong to

    # --- select ----------------------------------------------------------------------
    def select(self, tree: SearchTree) -> Node | None:
        root = tree.root
        if root is None:
            return None
        if tree is not self._tree:
            self._tree, self._unrepairable = tree, set()
        for node in tree.with_status(NodeStatus.failed):  # a diverged or crashed trial gets one repair,
            if node.id in self._unrepairable:  # like AIDE's debug step
                continue
            if self._repairable(node):
                return node
            self._unrepairable.add(node.id)
        return self._descend(tree, root, self._exploration(tree))

    @staticmethod
    def _repairable(node: Node) -> bool:
        failure = node.result.failure if node.result is not None else None
        return (node.status is NodeStatus.failed and failure in (FailureKind.diverged, FailureKind.error)
                and not node.children and node.depth <= MAX_REPAIR_DEPTH)

    def _exploration(self, tree: SearchTree) -> float:
        return self.search.exploration * self.search.exploration_decay ** max(0, len(tree) - 1)

    def widening_limit(self, node: Node, tree: SearchTree | None = None) -> int:
        """Children allowed: ``ceil(c * n**alpha)``, where n counts finished descendants plus
        children still in flight (virtual visits, as parallel MCTS does), so that widening keeps
        pace with the number of trials running at once."""
        in_flight = 0 if tree is None else sum(not k.status.done for k in tree.children(node))
        visits = max(1, node.visits + in_flight)
        limit = math.ceil(self.search.widening_c * visits ** self.search.widening_alpha)
        return min(MAX_CHILDREN, max(1, limit))

    def _can_expand(self, node: Node) -> bool:
        # The root is the base model: it exists before it is evaluated, so drafts need not wait.
        return node.parent is None or node.expandable

    def _descend(self, tree: SearchTree, node: Node, c: float) -> Node | None:
        if not self._can_expand(node):
            return None
        kids = tree.children(node)
        if len(kids) < self.widening_limit(node, tree):
            return node
        parent_visits = max(1, node.visits)
        ranked = sorted(
            (k for k in kids if k.expandable),
            key=lambda k: self._uct(k, parent_visits, c),
            reverse=True,
        )
        for kid in ranked:
            chosen = self._descend(tree, kid, c)
            if chosen is not None:
                return chosen
        return None

    @staticmethod
    def _uct(node: Node, parent_visits: int, c: float) -> float:
        value = node.best_value if math.isfinite(node.best_value) else 0.0
        return value + c * math.sqrt(math.log(parent_visits + 1) / (1 + node.visits))

    # --- prune -----------------------------------------------------------------------
    def prune(self, tree: SearchTree, node: Node) -> list[Node]:
        """Siblings (this node included) that lost clearly: keep the best 1/eta of the finished ones."""
        if node.parent is None:
            return []
        # Siblings pruned earlier still count towards n, or each new result would halve again.
        closed = (NodeStatus.finished, NodeStatus.pruned)
        group = [n for n in tree.children(tree.get(node.parent)) if n.status in closed and n.ok]
        if len(group) < self.search.halving_eta:
            return []
        group.sort(key=lambda n: n.metric or 0.0, reverse=True)
        keep = max(1, math.ceil(len(group) / self.search.halving_eta))
        best = group[0].metric or 0.0
        losers = [n for n in group[keep:] if (n.metric or 0.0) < best - PRUNE_MARGIN]
        return [n for n in losers if n.status is NodeStatus.finished]

    # --- decide (early stopping of running trials) --------------------------------------
    def decide(self, tree: SearchTree, node: Node, progress: Progress) -> Decision:
        if not self.search.early_stopping:
            return Decision.CONTINUE
        if progress.val_loss is None or not math.isfinite(progress.val_loss):
            return Decision.CONTINUE
        if progress.fraction < MIN_RUNG or progress.fraction >= 1.0:
            return Decision.CONTINUE
        siblings = tree.siblings(node)
        if _last_hope(siblings):
            return Decision.CONTINUE
        # Like with like: a run is compared with siblings that start where it starts (a warm start
        # continues the parent's checkpoint and starts lower than a run from the base model), after
        # as many epochs of their own training (a fraction of a longer run is more training).
        warm, epochs = node.plan.train.warm_start, progress.fraction * node.plan.train.epochs
        rivals = [
            loss
            for n in siblings
            if n.status in _RIVALS and n.plan.train.warm_start is warm
            and (loss := n.val_loss_at_epochs(epochs)) is not None
        ]
        if not rivals:
            return Decision.CONTINUE
        everyone = sorted([*rivals, progress.val_loss])
        keep = max(1, math.ceil(len(everyone) / self.search.halving_eta))
        cutoff = everyone[keep - 1]
        # Lower loss is better; stop only a clear loser. ASHA keeps the top 1/eta with no slack; the
        # comparison being like with like, a small one (STOP_MARGIN) covers the loss's own jitter.
        return Decision.STOP if progress.val_loss > cutoff * (1 + STOP_MARGIN) else Decision.CONTINUE


# Siblings whose curves a running trial is compared with: the current attempt of a running one (a
# re-queued or pending node's interrupted attempt is no rival: it may never get that far again), and
# the results of finished, pruned and stopped ones.
_RIVALS = (NodeStatus.running, NodeStatus.finished, NodeStatus.pruned, NodeStatus.stopped)


def _last_hope(siblings: list[Node]) -> bool:
    """No other sibling runs and none finished with a score: stopping this trial could leave the group
    with no trained node, so it is never stopped (two siblings cannot stop each other in turn)."""
    return not any(n.status is NodeStatus.running or (n.status in (NodeStatus.finished, NodeStatus.pruned)
                                                      and n.ok) for n in siblings)
