"""SearchTree: plain data, changed only by applying events, so that a journal replays it exactly.

Example::

    tree = SearchTree()
    tree.apply(Event(kind=EventKind.node_added, node_id="n0", payload={"parent": None, "plan": plan}))
    tree.apply(Event(kind=EventKind.node_finished, node_id="n0", payload={"result": result}))
    tree.best()
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from trex_ray.spec import Plan, Progress, Result
from trex_ray.tree.events import Event
from trex_ray.tree.node import Node, NodeStatus

ROOT_ID = "n0"


class TreeError(ValueError):
    pass


class SearchTree:
    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.insights: list[dict[str, Any]] = []
        self.meta: dict[str, Any] = {}  # task, run_id, profile (from run_started)
        self.finished_reason: str | None = None
        self.last_seq = -1
        # has_plan's index: experiment key -> count, over the first _indexed nodes (nodes are only
        # ever added; a snapshot load inserts them directly, so a size mismatch means rebuild).
        self._plan_index: dict[tuple[str, str | None], int] = {}
        self._indexed = 0
        # with_status's index: status -> ids, kept by apply(); None (or a size mismatch) means rebuild.
        self._by_status: dict[NodeStatus, set[str]] | None = None
        self._order: dict[str, int] = {}

    # --- queries -------------------------------------------------------------------------
    @property
    def root(self) -> Node | None:
        return self.nodes.get(ROOT_ID)

    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def get(self, node_id: str) -> Node:
        try:
            return self.nodes[node_id]
        except KeyError:
            raise TreeError(f"no node {node_id!r} in the tree") from None

    def children(self, node: Node) -> list[Node]:
        return [self.nodes[c] for c in node.children]

    def siblings(self, node: Node) -> list[Node]:
        if node.parent is None:
            return []
        return [n for n in self.children(self.get(node.parent)) if n.id != node.id]

    def ancestors(self, node: Node) -> list[Node]:
        out = []
        while node.parent is not None:
            node = self.get(node.parent)
            out.append(node)
        return out

    def with_status(self, *statuses: NodeStatus) -> list[Node]:
        """Nodes in any of these statuses, in tree order (an index: no scan of the whole tree)."""
        index = self._status_index()
        ids = [i for s in statuses for i in index.get(s, ())]
        ids.sort(key=self._order.__getitem__)
        return [self.nodes[i] for i in ids]

    def _status_index(self) -> dict[NodeStatus, set[str]]:
        if self._by_status is None or len(self._order) != len(self.nodes):
            self._by_status, self._order = {}, {}
            for k, n in enumerate(self.nodes.values()):
                self._by_status.setdefault(n.status, set()).add(n.id)
                self._order[n.id] = k
        return self._by_status

    def best(self) -> Node | None:
        scored = [n for n in self.nodes.values() if n.metric is not None]
        return max(scored, key=lambda n: (n.metric, -int(n.id[1:]))) if scored else None

    def best_path(self) -> list[Node]:
        best = self.best()
        return [] if best is None else [*reversed(self.ancestors(best)), best]

    def has_plan(self, plan: Plan, parent: str | None) -> bool:
        """Whether this experiment exists already (a warm start is distinct per parent)."""
        if self._indexed != len(self.nodes):
            self._plan_index = {}
            for n in self.nodes.values():
                self._index_plan(n)
            self._indexed = len(self.nodes)
        return (plan.hash, parent if plan.train.warm_start else None) in self._plan_index

    def _index_plan(self, node: Node) -> None:
        key = (node.plan.hash, node.parent if node.plan.train.warm_start else None)
        self._plan_index[key] = self._plan_index.get(key, 0) + 1

    def peak_concurrency(self) -> int:
        """The most nodes that ran at the same moment (from start and finish times)."""
        edges = []
        for n in self.nodes.values():
            if n.started_at is not None and n.finished_at is not None:
                edges += [(n.started_at, 1), (n.finished_at, -1)]
        peak = running = 0
        for _, step in sorted(edges, key=lambda e: (e[0], e[1])):
            running += step
            peak = max(peak, running)
        return peak

    def next_id(self) -> str:
        return f"n{len(self.nodes)}"

    # --- changes -------------------------------------------------------------------------
    def apply(self, event: Event) -> Node | None:
        """Apply one event; returns the node it touched."""
        handler = getattr(self, f"_on_{event.kind.value}")
        size = len(self.nodes)
        before = self.nodes[event.node_id].status if event.node_id in self.nodes else None
        node = handler(event)
        self.last_seq = max(self.last_seq, event.seq)
        if node is not None and self._by_status is not None and len(self._order) == size:
            self._track(node, before)
        return node

    def _track(self, node: Node, before: NodeStatus | None) -> None:
        """Keep with_status's index current after an event touched ``node``."""
        assert self._by_status is not None
        if node.id not in self._order:
            self._order[node.id] = len(self._order)
        if before is not None and before is not node.status:
            self._by_status.get(before, set()).discard(node.id)
        self._by_status.setdefault(node.status, set()).add(node.id)

    def _on_run_started(self, event: Event) -> None:
        self.meta.update(event.payload)

    def _on_run_finished(self, event: Event) -> None:
        self.finished_reason = event.payload.get("reason", "done")

    def _on_budget_changed(self, event: Event) -> None:
        """The run's budget from now on (``meta["task"]["budget"]``); a finished run is finished no more.
        A changed wall-time limit counts from this event (``meta["wall_started"]``)."""
        task = dict(self.meta.get("task") or {})
        old, new = dict(task.get("budget") or {}), dict(event.payload["budget"])
        if old.get("wall_seconds") != new.get("wall_seconds"):
            self.meta["wall_started"] = event.time
        self.meta["task"] = {**task, "budget": new}
        self.finished_reason = None

    def _on_node_added(self, event: Event) -> Node:
        node_id, parent = event.node_id, event.payload.get("parent")
        if node_id is None or node_id in self.nodes:
            raise TreeError(f"node_added: bad or duplicate id {node_id!r}")
        plan = event.payload["plan"]
        plan = plan if isinstance(plan, Plan) else Plan.model_validate(plan)
        depth = 0 if parent is None else self.get(parent).depth + 1
        node = Node(id=node_id, parent=parent, plan=plan, depth=depth)
        self.nodes[node_id] = node
        if self._indexed == len(self.nodes) - 1:  # the index is current: keep it so
            self._index_plan(node)
            self._indexed += 1
        if parent is not None:
            self.get(parent).children.append(node_id)
        return node

    def _on_node_started(self, event: Event) -> Node:
        node = self.get(event.node_id or "")
        node.status = NodeStatus.running
        node.attempts = event.payload.get("attempt", node.attempts + 1)
        node.progress = []
        node.started_at, node.finished_at = event.time, None
        return node

    def _on_node_progress(self, event: Event) -> Node:
        """A report of the node's current attempt; one of an earlier attempt (a trial that outlived a
        crash or a kill and reported late) or of a node no longer running is not the node's progress."""
        node = self.get(event.node_id or "")
        attempt = event.payload.get("attempt")
        if node.status is NodeStatus.running and attempt in (None, node.attempts):
            node.progress.append(Progress.model_validate(event.payload["progress"]))
        return node

    def _on_node_requeued(self, event: Event) -> Node:
        node = self.get(event.node_id or "")
        if event.payload.get("failure"):  # a retry after a lost worker or a timeout, not a crash of ours
            keys = ("failure", "error", "cost", "retry_at")
            node.failed_attempts.append({"attempt": node.attempts, **{k: event.payload.get(k) for k in keys}})
        node.status = NodeStatus.pending
        node.progress = []
        node.started_at = None
        return node

    def _on_node_finished(self, event: Event) -> Node:
        node = self.get(event.node_id or "")
        result = event.payload["result"]
        node.finish(result if isinstance(result, Result) else Result.model_validate(result))
        node.finished_at = event.time
        self._backup(node)
        return node

    def _on_node_pruned(self, event: Event) -> Node:
        node = self.get(event.node_id or "")
        node.status = NodeStatus.pruned
        node.prune_reason = event.payload.get("reason", "")
        return node

    def _on_node_tested(self, event: Event) -> Node:
        node = self.get(event.node_id or "")
        node.test = dict(event.payload)
        return node

    def _on_checkpoint_deleted(self, event: Event) -> Node:
        node = self.get(event.node_id or "")
        node.checkpoint_deleted = True
        return node

    def ranked(self) -> list[Node]:
        """Scored nodes, best on validation first (the earlier node on a tie)."""
        scored = [n for n in self.nodes.values() if n.metric is not None]
        return sorted(scored, key=lambda n: (-(n.metric or 0.0), int(n.id[1:])))

    def _on_insight(self, event: Event) -> Node | None:
        record = {"node_id": event.node_id, **event.payload}
        self.insights.append(record)
        if event.node_id in self.nodes:
            self.nodes[event.node_id].insight = event.payload.get("text")
            return self.nodes[event.node_id]
        return None

    def _backup(self, node: Node) -> None:
        """Back the node's reward up to the root: visits, value sum, best value of each subtree."""
        reward = node.metric if node.metric is not None else 0.0
        for n in [node, *self.ancestors(node)]:
            n.visits += 1
            n.value_sum += reward
            if node.metric is not None and math.isfinite(node.metric):
                n.best_value = max(n.best_value, node.metric)
