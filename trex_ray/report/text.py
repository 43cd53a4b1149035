"""Run reports from the tree alone: a JSON summary and a text leaderboard.

Example::

    tree = Store(run_dir).replay()
    print(json.dumps(summary(tree, task)))
    print(leaderboard(tree, task))
"""

from __future__ import annotations

from typing import Any

from trex_ray.spec import TaskSpec, TrainMode
from trex_ray.spec.plan_text import describe_plan
from trex_ray.tree import ROOT_ID, Node, NodeStatus, SearchTree


def describe(node: Node) -> str:
    """A short human summary of a node's plan."""
    return describe_plan(node.plan)


def node_record(node: Node) -> dict[str, Any]:
    r = node.result
    return {
        "id": node.id,
        "parent": node.parent,
        "status": node.status.value,
        "metric": node.metric,
        "val_metric": node.metric,
        "test_metric": node.test_metric,
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
    base_test = root.test_metric if root else None
    best_record = None
    if best is not None:
        best_record = {"node_id": best.id, "metric": best.metric, "val_metric": best.metric,
                       "test_metric": best.test_metric, "plan": describe(best)}
    return {
        "task": task.name,
        "run_id": tree.meta.get("run_id"),
        "model": task.model.id,
        "metric_name": task.metric.name.value,
        "higher_is_better": task.metric.higher_is_better,
        # "base_metric" and "best.metric" are on the validation split (what the search selected on);
        # the test split, never seen by the search, is in the *_test_metric fields.
        "base_metric": root.metric if root else None,
        "base_test_metric": base_test,
        "best": best_record,
        "gain": (best.metric - root.metric) if best and root and root.metric is not None else None,
        "test_gain": (best.test_metric - base_test) if best and best.test_metric is not None
        and base_test is not None else None,
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


def checkpoint_usage(tree: SearchTree) -> dict[str, Any]:
    """Checkpoints on disk (or in the bucket) now, and those ``search.keep_checkpoints`` deleted."""
    from trex_ray.store.files import dir_size

    kept = [n for n in tree if n.result is not None and n.result.checkpoint and not n.checkpoint_deleted
            and n.plan.train.mode is not TrainMode.none]  # a node that trained nothing names its parent's
    deleted = [n for n in tree if n.checkpoint_deleted]
    return {"kept": [n.id for n in kept], "bytes": sum(dir_size(str(n.result.checkpoint)) for n in kept
                                                       if n.result is not None),
            "deleted": [n.id for n in deleted]}


def usage_line(usage: dict[str, Any]) -> str:
    line = f"checkpoints: {len(usage['kept'])} kept, {usage['bytes'] / 2**20:.1f} MiB"
    if usage["deleted"]:
        line += f"; {len(usage['deleted'])} deleted by search.keep_checkpoints"
    return line


def eval_backends(tree: SearchTree) -> dict[str, int]:
    """How many nodes each evaluation backend scored (``vllm``, ``hf``, ``openai``)."""
    counts: dict[str, int] = {}
    for n in tree:
        if n.result is not None and n.result.eval_backend:
            counts[n.result.eval_backend] = counts.get(n.result.eval_backend, 0) + 1
    return counts


def leaderboard(tree: SearchTree, task: TaskSpec, top: int = 15) -> str:
    """Plain-text leaderboard, best on validation first; unscored nodes follow. ``test`` is the score on
    the test split, made after the search for the base model and the best nodes only."""
    metric = task.metric.name.value
    root = tree.nodes.get(ROOT_ID)
    base = root.metric if root else None
    nodes = sorted(tree, key=lambda n: (n.metric is None, -(n.metric or 0.0), int(n.id[1:])))
    header = (f"{'rank':>4}  {'node':<5} {'parent':<6} {'status':<9} {'val ' + metric:>14} {'vs base':>8} "
              f"{'test':>7}  plan")
    lines = [header, "-" * len(header)]
    for rank, n in enumerate(nodes[:top], 1):
        score = f"{n.metric:.4f}" if n.metric is not None else "-"
        delta = f"{n.metric - base:+.4f}" if n.metric is not None and base is not None else ""
        test = f"{n.test_metric:.4f}" if n.test_metric is not None else ""
        note = f"  [{n.result.failure.value}]" if n.result and n.result.failure else ""
        lines.append(f"{rank:>4}  {n.id:<5} {n.parent or '-':<6} {n.status.value:<9} {score:>14} {delta:>8} "
                     f"{test:>7}  {describe(n)}{note}")
    if len(nodes) > top:
        lines.append(f"      ... {len(nodes) - top} more")
    return "\n".join(lines)


def verdict(tree: SearchTree, task: TaskSpec) -> str:
    """The run's last word: the best node (chosen on validation) against the base, on the test split."""
    info = summary(tree, task)
    best, name = info["best"], task.metric.name.value
    if best is None:
        return "NO NODE WAS SCORED: nothing to compare with the base model; see the leaderboard's errors"
    base_test, best_test = info["base_test_metric"], best["test_metric"]
    if base_test is None or best_test is None:
        return (f"best {best['node_id']} (on validation) {name} {best['val_metric']:.4f}; no test score "
                "(see the node's test error)")
    line = (f"test split: best {best['node_id']} (chosen on validation) {name} {best_test:.4f} vs base "
            f"{base_test:.4f} ({best_test - base_test:+.4f})")
    if best["node_id"] == ROOT_ID or best_test <= base_test:
        line = "NO NODE BEAT THE BASE MODEL on the test split. " + line
    return line


def untrained_reason(tree: SearchTree, task: TaskSpec) -> str | None:
    """Why a run that ended scored no trained node (a failure the caller must not call success), or None
    when one was scored."""
    if any(n.parent is not None and n.ok for n in tree):
        return None
    ended: dict[str, int] = {}
    for node in tree:
        if node.parent is not None:
            ended[node.status.value] = ended.get(node.status.value, 0) + 1
    what = ", ".join(f"{count} {status}" for status, count in sorted(ended.items())) or "none was started"
    return (f"NO TRAINED NODE WAS SCORED: the run ended ({tree.finished_reason or 'no reason recorded'}) "
            f"with only the base model scored; trained nodes: {what}")
