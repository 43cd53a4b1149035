"""A small finished run whose nodes really trained (tiny model, in this process): for export tests.

The base model is the tiny random Llama copied to a local folder with a chat template added, so that
the run's model is a local model (``model.id`` a folder) whose tokenizer has a template to carry along.
Nodes: n0 the base, n1 a full fine-tune, n2 a LoRA adapter, n3 a LoRA warm-started from n2; the base
and the best node on validation are scored on the test split, as a run does at its end.

Example::

    run = make_trained_run(tmp_path / "runs")   # run.run_dir, run.task, run.tree
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from run_builder import RunBuilder

from trex_ray.execute.context import RunContext
from trex_ray.execute.launch import InProcessLauncher
from trex_ray.execute.models import load_tokenizer, materialize_base_model
from trex_ray.execute.run_plan import run_plan, score_test
from trex_ray.spec import DataOp, DataRecipe, ModelSpec, Plan, TaskSpec, TrainRecipe, load_task
from trex_ray.tree import EventKind, SearchTree

CHAT_TEMPLATE = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
SMALL = DataRecipe(ops=[DataOp(op="subsample", params={"n": 160})], template="plain")


@dataclass
class TrainedRun:
    run_dir: Path
    cache_dir: Path
    task: TaskSpec
    tree: SearchTree
    base_dir: Path


def _local_base(cache: Path, folder: Path) -> Path:
    tiny = materialize_base_model(ModelSpec(id="builtin:tiny-llama"), cache)
    shutil.copytree(tiny, folder)
    tokenizer = load_tokenizer(folder)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(folder)
    return folder


def _plan(**train: object) -> Plan:
    return Plan(data=SMALL, train=TrainRecipe(**{"epochs": 1, "batch_size": 8, **train}))  # type: ignore[arg-type]


def make_trained_run(root: Path) -> TrainedRun:
    cache = root / "runs" / "cache"  # where `trex` looks for a run under root/runs
    base = _local_base(cache, root / "base-model")
    task = load_task({
        "name": "tiny-export", "description": "Classify the sentiment of a short review.",
        "model": {"id": str(base), "max_seq_len": 64},
        "data": {"train": [{"id": "builtin:sentiment", "split": "train"}],
                 "eval": {"id": "builtin:sentiment", "split": "eval", "limit": 40}, "val_size": 40},
        "metric": {"name": "accuracy"}, "max_new_tokens": 2,
    })
    run_dir = root / "runs" / "tiny-export-run"
    b = RunBuilder(run_dir)
    b.emit(EventKind.run_started, run_id=b.run_id, task=task.model_dump(mode="json"), profile={})
    plans = {"n0": (None, _plan(mode="none")), "n1": ("n0", _plan(mode="full", learning_rate=1e-3)),
             "n2": ("n0", _plan(mode="lora", learning_rate=3e-3, lora_r=4)),
             "n3": ("n2", _plan(mode="lora", learning_rate=1.5e-3, lora_r=4, warm_start=True))}
    for node_id, (parent, plan) in plans.items():
        assert b.add(parent, plan) == node_id
        parent_ckpt = b.tree.get(parent).result.checkpoint if parent and plan.train.warm_start else None
        ctx = RunContext(task=task, node_id=node_id, work_dir=run_dir / "nodes" / node_id, cache_dir=cache,
                         launcher=InProcessLauncher(), parent_checkpoint=parent_ckpt,
                         parent_adapter=bool(parent_ckpt))
        result = run_plan(plan, ctx)
        assert result.ok, result.error
        b.finish(node_id, result, insight=False)
    for node in ("n0", b.tree.best().id):  # type: ignore[union-attr]
        n = b.tree.get(node)
        ctx = RunContext(task=task, node_id=node, work_dir=run_dir / "nodes" / node, cache_dir=cache,
                         launcher=InProcessLauncher())
        scored = score_test(n.plan, ctx, n.result.checkpoint if n.parent else None,  # type: ignore[union-attr]
                            n.plan.train.mode.value == "lora")
        b.emit(EventKind.node_tested, node, **{k: v for k, v in scored.items() if k != "samples"})
    return TrainedRun(run_dir=run_dir, cache_dir=cache, task=task, tree=b.end(), base_dir=base)
