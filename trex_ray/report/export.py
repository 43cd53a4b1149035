"""``trex export RUN [--node ID|best] --out DIR [--merge]``: a node of a run as a Hugging Face folder.

Picks the node (``best``: the best on validation), finds its checkpoint (downloading a stored one)
and the base it applies to, writes the model card (``report/card.py``) and the folder
(``execute/export.py``).

Example::

    info = export_node("runs/tweets-20260101-120000-ab12", "best", Path("out/best"), merge=True)
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from trex_ray.execute.export import ExportError, ExportSource, export_model
from trex_ray.execute.models import checkpoint_base, materialize_base_model
from trex_ray.report.card import model_card
from trex_ray.spec import TaskSpec, TrainMode
from trex_ray.store import read_tree
from trex_ray.store.files import ensure_local, is_remote
from trex_ray.tree import Node, SearchTree


def pick_node(tree: SearchTree, which: str) -> Node:
    """``best`` (on validation) or a node id; one-line errors that say what to give instead."""
    if which == "best":
        best = tree.best()
        if best is None:
            raise ExportError("--node best: no node of this run has a validation score; give a node id")
        return best
    if which not in tree.nodes:
        ids = ", ".join(n.id for n in tree.ranked()[:8])
        raise ExportError(f"--node {which}: no such node in this run; scored nodes, best first: "
                          f"{ids or 'none'}")
    return tree.get(which)


def _checkpoint(node: Node) -> str | None:
    """The node's checkpoint folder here; None for the root (the base model itself)."""
    if node.parent is None and node.plan.train.mode is TrainMode.none:
        return None
    result = node.result
    if result is None or not result.ok:
        state = result.outcome.value if result else node.status.value
        raise ExportError(f"--node {node.id}: the node is {state}, with no trained model; "
                          "pick a finished node")
    if node.plan.train.mode is TrainMode.none:
        raise ExportError(f"--node {node.id}: the node trained nothing (it scored its parent as it is); "
                          f"export its parent {node.parent}")
    if node.checkpoint_deleted or not result.checkpoint:
        raise ExportError(f"--node {node.id}: its checkpoint was deleted (search.keep_checkpoints); "
                          "export one of the nodes `trex status` lists with a checkpoint")
    if is_remote(result.checkpoint):
        return str(ensure_local(result.checkpoint, Path(tempfile.mkdtemp(prefix="trex-export-")) / "ckpt"))
    if not Path(result.checkpoint).is_dir():
        raise ExportError(f"--node {node.id}: its checkpoint {result.checkpoint} is missing on this machine")
    return result.checkpoint


def _base_ref(task: TaskSpec, base_dir: Path, adapter_base: str) -> str:
    """How an exported adapter names its base: the hub id when the base is a hub model, else a folder."""
    if Path(adapter_base).resolve() == base_dir.resolve() and task.model.kind == "hub":
        return task.model.id
    return str(Path(adapter_base).resolve())


def export_node(run_dir: str, which: str, out: Path, merge: bool, cache_dir: Path) -> dict[str, Any]:
    """Export one node of the run at ``run_dir``; returns what ``trex_export.json`` holds."""
    tree = read_tree(run_dir)
    task = TaskSpec.model_validate(tree.meta["task"])
    node = pick_node(tree, which)
    checkpoint = _checkpoint(node)
    adapter = node.plan.train.mode is TrainMode.lora and checkpoint is not None
    base_dir = materialize_base_model(task.model, cache_dir)
    adapter_base = checkpoint_base(checkpoint, base_dir) if adapter and checkpoint else str(base_dir)
    base_ref = _base_ref(task, base_dir, adapter_base)
    kind = ("merged" if merge else "adapter") if adapter else ("base" if checkpoint is None else "full")
    card = model_card(tree, task, node, base_ref if kind == "adapter" else task.model.id, kind)
    meta = {"run_id": tree.meta.get("run_id"), "node_id": node.id, "task": task.name,
            "val_metric": node.metric, "test_metric": node.test_metric, "metric": task.metric.name.value,
            "plan": node.plan.model_dump(mode="json")}
    source = ExportSource(checkpoint=checkpoint, adapter=adapter, base_dir=adapter_base, base_ref=base_ref)
    return export_model(source, out, merge, card, meta)
