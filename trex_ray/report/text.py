"""Run reports from the tree alone: a JSON summary and a text leaderboard.

Example::

    tree = Store(run_dir).replay()
    print(json.dumps(summary(tree, task)))
    print(leaderboard(tree, task))
"""

from __future__ import annotations

from typing import Any

from trex_ray.spec import TaskSpec, TrainMode
from trex_ray.tree import ROOT_ID, Node, NodeStatus, SearchTree


def describe(node: Node) -> str:
    """A short human summary of a node's plan."""
    t = node.plan.train
    if t.mode is TrainMode.none:
        return "base model"
    parts = [t.mode.value, f"lr={t.learning_rate:g}", f"ep={t.epochs:g}"]
    if t.mode is TrainMode.lora:
        parts.append(f"r={t.lora_r}")
    if t.warm_start:
        parts.append("warm")
    if t.weight_decay:
        parts.append(f"wd={t.weight_decay:g}")
    parts += [o.op for o in node.plan.data.ops]
    if node.plan.data.template != "plain":
        parts.append(f"tpl={node.plan.data.template}")
    return " ".join(parts)


def node_record(node: Node) -> dict[str, Any]:
    r = node.result
    return {
        "id": node.id,
        "parent": node.parent,
        "status": node.status.value,
        "metric": node.metric,
        "plan_hash": node.plan.hash,
        "plan": describe(node),
        "rationale": node.plan.rationale,
        "seed": node.plan.seed,
        "eval_backend": r.eval_backend if r else None,
        "failure": r.failure.value if r and r.failure else None,
        "error": r.error if r else None,
        "insight": node.insight,
        "prune_reason": node.prune_reason,
        "compute_seconds": round(r.cost.compute_seconds, 2) if r else None,
        "wall_seconds": round(r.cost.wall_seconds, 2) if r else None,
        "train_steps": r.cost.train_steps if r else None,
        "checkpoint": r.checkpoint if r else None,
    }


def summary(tree: SearchTree, task: TaskSpec, **extra: Any) -> dict[str, Any]:
    root = tree.nodes.get(ROOT_ID)
    best = tree.best()
    counts: dict[str, int] = {}
    for n in tree:
        counts[n.status.value] = counts.get(n.status.value, 0) + 1
    return {
        "task": task.name,
        "run_id": tree.meta.get("run_id"),
        "metric_name": task.metric.name.value,
        "higher_is_better": task.metric.higher_is_better,
        "base_metric": root.metric if root else None,
        "best": {"node_id": best.id, "metric": best.metric, "plan": describe(best)} if best else None,
        "gain": (best.metric - root.metric) if best and root and root.metric is not None else None,
        "counts": counts,
        "finished_nodes": sum(1 for n in tree if n.status in (NodeStatus.finished, NodeStatus.pruned)),
        "peak_concurrency": tree.peak_concurrency(),
        "compute_seconds": round(sum(n.result.cost.compute_seconds for n in tree if n.result), 1),
        "stop_reason": tree.finished_reason,
        "insights": [i.get("text") for i in tree.insights],
        "eval_backends": eval_backends(tree),
        "nodes": [node_record(n) for n in tree],
        **extra,
    }


def eval_backends(tree: SearchTree) -> dict[str, int]:
    """How many nodes each evaluation backend scored (``vllm``, ``hf``, ``openai``)."""
    counts: dict[str, int] = {}
    for n in tree:
        if n.result is not None and n.result.eval_backend:
            counts[n.result.eval_backend] = counts.get(n.result.eval_backend, 0) + 1
    return counts


def leaderboard(tree: SearchTree, task: TaskSpec, top: int = 15) -> str:
    """Plain-text leaderboard, best first; unscored nodes follow."""
    metric = task.metric.name.value
    root = tree.nodes.get(ROOT_ID)
    base = root.metric if root else None
    nodes = sorted(tree, key=lambda n: (n.metric is None, -(n.metric or 0.0), int(n.id[1:])))
    header = f"{'rank':>4}  {'node':<5} {'parent':<6} {'status':<9} {metric:>10} {'vs base':>8}  plan"
    lines = [header, "-" * len(header)]
    for rank, n in enumerate(nodes[:top], 1):
        score = f"{n.metric:.4f}" if n.metric is not None else "-"
        delta = f"{n.metric - base:+.4f}" if n.metric is not None and base is not None else ""
        note = f"  [{n.result.failure.value}]" if n.result and n.result.failure else ""
        lines.append(f"{rank:>4}  {n.id:<5} {n.parent or '-':<6} {n.status.value:<9} {score:>10} {delta:>8}  "
                     f"{describe(n)}{note}")
    if len(nodes) > top:
        lines.append(f"      ... {len(nodes) - top} more")
    return "\n".join(lines)
