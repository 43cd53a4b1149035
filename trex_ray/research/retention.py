"""Checkpoint retention (``search.keep_checkpoints: K``): which checkpoints a run may delete now.

Kept: the checkpoints of the ``max(K, search.test_top_k)`` best nodes on validation (that have one),
and everything those need, and everything a pending or running warm start needs. What a checkpoint
needs: a LoRA adapter trained on a full fine-tune (a LoRA warm start from a full node) applies to that
node's weights, so it keeps that checkpoint; an adapter continued from another adapter applies to that
adapter's base, so it needs what the parent needs. A full fine-tune needs nothing. ``None`` (the
default) keeps every checkpoint, as Hugging Face's ``save_total_limit`` and Ray Tune's ``num_to_keep``
do: a run never deletes trained models unless asked to.

Pure: reads the tree, returns nodes; the Researcher journals ``checkpoint_deleted`` and deletes.

Example::

    for node in deletable(tree, keep=3, test_top_k=1):
        ...   # journal checkpoint_deleted, then remove node.result.checkpoint
"""

from __future__ import annotations

from trex_ray.spec import TrainMode
from trex_ray.tree import Node, NodeStatus, SearchTree


def has_checkpoint(node: Node) -> bool:
    """The node made a checkpoint of its own that is still there (a node that trained nothing has none:
    whatever it names is its parent's)."""
    return (node.plan.train.mode is not TrainMode.none and node.result is not None
            and bool(node.result.checkpoint) and not node.checkpoint_deleted)


def base_dependency(tree: SearchTree, node: Node) -> Node | None:
    """The node whose checkpoint this node's checkpoint applies to (a LoRA adapter on a full
    fine-tune), or None when it stands alone (full weights, or an adapter on the base model)."""
    while node.plan.train.mode is TrainMode.lora and node.plan.train.warm_start and node.parent is not None:
        parent = tree.get(node.parent)
        if parent.plan.train.mode is TrainMode.full:
            return parent
        if parent.plan.train.mode is not TrainMode.lora:
            return None
        node = parent  # an adapter continued from an adapter applies to that adapter's base
    return None


def _with_dependencies(tree: SearchTree, nodes: list[Node]) -> set[str]:
    needed: set[str] = set()
    for node in nodes:
        current: Node | None = node
        while current is not None and current.id not in needed:
            needed.add(current.id)
            current = base_dependency(tree, current)
    return needed


def needed_by_warm_starts(tree: SearchTree) -> set[str]:
    """Checkpoints a pending or running warm start will load (its parent and what that needs)."""
    parents = [tree.get(n.parent) for n in tree.with_status(NodeStatus.pending, NodeStatus.running)
               if n.plan.train.warm_start and n.parent is not None]
    return _with_dependencies(tree, parents)


def kept(tree: SearchTree, keep: int, test_top_k: int = 0) -> set[str]:
    """Ids whose checkpoints stay: the ``max(keep, test_top_k)`` best with one, what they need, and
    what the pending or running warm starts need."""
    best = [n for n in tree.ranked() if has_checkpoint(n)][: max(keep, test_top_k)]
    return _with_dependencies(tree, best) | needed_by_warm_starts(tree)


def deletable(tree: SearchTree, keep: int | None, test_top_k: int = 0) -> list[Node]:
    """Nodes whose checkpoints may be deleted now (none when ``keep`` is None), in tree order."""
    if keep is None:
        return []
    stay = kept(tree, keep, test_top_k)
    return [n for n in tree if has_checkpoint(n) and n.status.done and n.id not in stay]
