"""``trex export``, the run's side: which node, its checkpoint here, what the export records of it.

The files are written by ``execute/export.py`` and the card by ``report/card.py``; ``cli.py`` joins
them. Example::

    choice = choose("runs/tweets-20260101-120000-ab12", "best")
    choice.node.id, choice.checkpoint, choice.adapter
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trex_ray.spec import TaskSpec, TrainMode
from trex_ray.store import read_tree
from trex_ray.store.files import ensure_local, is_remote
from trex_ray.tree import Node, SearchTree


class ChoiceError(ValueError):
    """The node cannot be exported; the message names the option and what to give instead."""


@dataclass
class Choice:
    tree: SearchTree
    task: TaskSpec
    node: Node
    checkpoint: str | None  # a local folder; None: the root, the base model itself
    adapter: bool

    @property
    def meta(self) -> dict[str, Any]:
        return {"run_id": self.tree.meta.get("run_id"), "node_id": self.node.id, "task": self.task.name,
                "val_metric": self.node.metric, "test_metric": self.node.test_metric,
                "metric": self.task.metric.name.value, "plan": self.node.plan.model_dump(mode="json")}


def pick_node(tree: SearchTree, which: str) -> Node:
    """``best`` (on validation) or a node id; one-line errors that say what to give instead."""
    if which == "best":
        best = tree.best()
        if best is None:
            raise ChoiceError("--node best: no node of this run has a validation score; give a node id")
        return best
    if which not in tree.nodes:
        ids = ", ".join(n.id for n in tree.ranked()[:8])
        raise ChoiceError(f"--node {which}: no such node in this run; scored nodes, best first: "
                          f"{ids or 'none'}")
    return tree.get(which)


def _checkpoint(node: Node) -> str | None:
    """The node's checkpoint folder here; None for the root (the base model itself)."""
    if node.parent is None and node.plan.train.mode is TrainMode.none:
        return None
    result = node.result
    if result is None or not result.ok:
        state = result.outcome.value if result else node.status.value
        raise ChoiceError(f"--node {node.id}: the node is {state}, with no trained model; "
                          "pick a finished node")
    if node.plan.train.mode is TrainMode.none:
        raise ChoiceError(f"--node {node.id}: the node trained nothing (it scored its parent as it is); "
                          f"export its parent {node.parent}")
    if node.checkpoint_deleted or not result.checkpoint:
        raise ChoiceError(f"--node {node.id}: its checkpoint was deleted (search.keep_checkpoints); "
                          "export one of the nodes `trex status` lists with a checkpoint")
    if is_remote(result.checkpoint):
        return str(ensure_local(result.checkpoint, Path(tempfile.mkdtemp(prefix="trex-export-")) / "ckpt"))
    if not Path(result.checkpoint).is_dir():
        raise ChoiceError(f"--node {node.id}: its checkpoint {result.checkpoint} is missing on this machine")
    return result.checkpoint


def choose(run_dir: str, which: str) -> Choice:
    tree = read_tree(run_dir)
    node = pick_node(tree, which)
    checkpoint = _checkpoint(node)
    adapter = node.plan.train.mode is TrainMode.lora and checkpoint is not None
    return Choice(tree=tree, task=TaskSpec.model_validate(tree.meta["task"]), node=node,
                  checkpoint=checkpoint, adapter=adapter)
