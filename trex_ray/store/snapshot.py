"""A search tree to and from plain JSON-able dicts (the snapshot format)."""

from __future__ import annotations

import math
from typing import Any

from trex_ray.spec import Plan, Progress, Result
from trex_ray.tree import Node, NodeStatus, SearchTree

FORMAT = 1


def node_to_dict(node: Node) -> dict[str, Any]:
    return {
        "id": node.id,
        "parent": node.parent,
        "plan": node.plan.model_dump(mode="json"),
        "depth": node.depth,
        "status": node.status.value,
        "result": node.result.model_dump(mode="json") if node.result else None,
        "progress": [p.model_dump(mode="json") for p in node.progress],
        "children": list(node.children),
        "insight": node.insight,
        "prune_reason": node.prune_reason,
        "attempts": node.attempts,
        "failed_attempts": node.failed_attempts,
        "test": node.test,
        "checkpoint_deleted": node.checkpoint_deleted,
        "started_at": node.started_at,
        "finished_at": node.finished_at,
        "visits": node.visits,
        "value_sum": node.value_sum,
        "best_value": node.best_value if math.isfinite(node.best_value) else None,
    }


def node_from_dict(d: dict[str, Any]) -> Node:
    return Node(
        id=d["id"],
        parent=d["parent"],
        plan=Plan.model_validate(d["plan"]),
        depth=d["depth"],
        status=NodeStatus(d["status"]),
        result=Result.model_validate(d["result"]) if d["result"] else None,
        progress=[Progress.model_validate(p) for p in d["progress"]],
        children=list(d["children"]),
        insight=d["insight"],
        prune_reason=d["prune_reason"],
        attempts=d["attempts"],
        failed_attempts=list(d.get("failed_attempts", [])),
        test=d.get("test"),
        checkpoint_deleted=bool(d.get("checkpoint_deleted", False)),
        started_at=d.get("started_at"),
        finished_at=d.get("finished_at"),
        visits=d["visits"],
        value_sum=d["value_sum"],
        best_value=d["best_value"] if d["best_value"] is not None else -math.inf,
    )


def tree_to_dict(tree: SearchTree) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "last_seq": tree.last_seq,
        "meta": tree.meta,
        "insights": tree.insights,
        "finished_reason": tree.finished_reason,
        "nodes": [node_to_dict(n) for n in tree],
    }


def tree_from_dict(d: dict[str, Any]) -> SearchTree:
    if d.get("format") != FORMAT:
        raise ValueError(f"snapshot format {d.get('format')!r}, expected {FORMAT}")
    tree = SearchTree()
    tree.last_seq = d["last_seq"]
    tree.meta = d["meta"]
    tree.insights = d["insights"]
    tree.finished_reason = d["finished_reason"]
    for nd in d["nodes"]:
        node = node_from_dict(nd)
        tree.nodes[node.id] = node
    return tree
