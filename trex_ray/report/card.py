"""The model card (``README.md``) of an exported node: what it is, how it was made, how well it does.

Example::

    text = model_card(tree, task, tree.get("n5"), base_ref="HuggingFaceTB/SmolLM2-135M-Instruct",
                      kind="merged")
"""

from __future__ import annotations

import json
import time
from typing import Any

from trex_ray.report.text import describe
from trex_ray.spec import TaskSpec, TrainMode
from trex_ray.tree import ROOT_ID, Node, SearchTree


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _front_matter(task: TaskSpec, base_ref: str, kind: str) -> list[str]:
    library = "peft" if kind == "adapter" else "transformers"
    return ["---", f"base_model: {json.dumps(base_ref)}", f"library_name: {library}",
            "pipeline_tag: text-generation", "tags: [trex_ray, fine-tuned]", "---", ""]


def _scores(tree: SearchTree, task: TaskSpec, node: Node) -> list[str]:
    root = tree.nodes.get(ROOT_ID)
    metric = task.metric.name.value
    rank = next((i for i, n in enumerate(tree.ranked(), 1) if n.id == node.id), None)
    lines = ["## Scores", "",
             f"`{metric}`; validation: {task.data.val_size or 'default'} rows cut from the training data "
             "before any data op, what the search selected on; test: never seen by the search.", "",
             "| split | this model | base model |", "| --- | --- | --- |",
             f"| validation | {_score(node.metric)} | {_score(root.metric if root else None)} |",
             f"| test | {_score(node.test_metric)} | {_score(root.test_metric if root else None)} |", ""]
    if rank is not None:
        lines.append(f"Rank on validation: {rank} of {len(tree.ranked())} scored nodes.")
    if node.test_metric is None:
        lines.append("No test score was made for this node (only the best nodes on validation are tested).")
    return [*lines, ""]


def _plan(node: Node) -> list[str]:
    t, d = node.plan.train, node.plan.data
    rows = [("mode", t.mode.value), ("learning rate", f"{t.learning_rate:g}"), ("epochs", f"{t.epochs:g}"),
            ("batch size", t.batch_size), ("warmup ratio", t.warmup_ratio), ("weight decay", t.weight_decay),
            ("grad clip", t.grad_clip), ("ZeRO stage", t.zero_stage),
            ("warm start from parent", t.warm_start), ("seed", node.plan.seed)]
    if t.mode is TrainMode.lora:
        rows += [("LoRA r / alpha / dropout", f"{t.lora_r} / {t.lora_alpha} / {t.lora_dropout}"),
                 ("LoRA targets", ", ".join(t.lora_targets) if t.lora_targets else "all projections")]
    lines = ["## Training plan", "", f"{describe(node)}. {node.plan.rationale}".strip(), "",
             "| setting | value |", "| --- | --- |", *[f"| {k} | {v} |" for k, v in rows], "",
             "## Data recipe", "", f"Prompt template: `{d.template}`.", ""]
    if d.ops:
        lines += [f"{i}. `{op.op}` {json.dumps(op.params) if op.params else ''}".rstrip()
                  for i, op in enumerate(d.ops, 1)]
    else:
        lines.append("No data ops: the training split as it is.")
    return [*lines, ""]


def _data(task: TaskSpec) -> list[str]:
    lines = ["Sources:", ""]
    for s in task.data.train:
        limit = f", first {s.limit} rows" if s.limit else ""
        lines.append(f"* train: `{s.id}` split `{s.split}`{limit}")
    if task.data.eval is not None:
        e = task.data.eval
        limit = f", first {e.limit} rows" if e.limit else ""
        lines.append(f"* test: `{e.id}` split `{e.split}`{limit}")
    else:
        lines.append(f"* test: a seeded cut of the training data ({task.data.test_size or 'default'} rows)")
    return [*lines, ""]


def _lineage(tree: SearchTree, node: Node) -> list[str]:
    path = [*reversed(tree.ancestors(node)), node]
    steps = " → ".join(f"{n.id} ({describe(n)}{', warm' if n.plan.train.warm_start else ''})" for n in path)
    return ["## Lineage", "", steps, ""]


def _provenance(tree: SearchTree, task: TaskSpec, node: Node, base_ref: str, kind: str) -> list[str]:
    prov: dict[str, Any] = node.result.provenance if node.result else {}
    cost = node.result.cost if node.result else None
    rows = [("run", tree.meta.get("run_id")), ("node", node.id), ("task", task.name),
            ("base model", f"`{task.model.id}` (loaded from `{base_ref}`)"), ("exported as", kind),
            ("plan hash", prov.get("plan_hash", node.plan.hash)), ("device", prov.get("device")),
            ("train steps / tokens", f"{cost.train_steps} / {cost.train_tokens}" if cost else "-"),
            ("compute seconds", f"{cost.compute_seconds:.1f}" if cost else "-"),
            ("versions", ", ".join(f"{k} {v}" for k, v in (prov.get("versions") or {}).items())),
            ("exported", time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))]
    return ["## Provenance", "", "| | |", "| --- | --- |", *[f"| {k} | {v} |" for k, v in rows], ""]


def _usage(kind: str) -> list[str]:
    load = ("from transformers import AutoModelForCausalLM, AutoTokenizer  # peft must be installed\n"
            if kind == "adapter" else "from transformers import AutoModelForCausalLM, AutoTokenizer\n")
    return ["## Use", "", "```python", load.rstrip(),
            "model = AutoModelForCausalLM.from_pretrained(\"THIS_FOLDER\")",
            "tokenizer = AutoTokenizer.from_pretrained(\"THIS_FOLDER\")", "```", "",
            *(["Serve it: `vllm serve THIS_FOLDER`.", ""] if kind != "adapter" else
              ["Serve it on its base: `vllm serve BASE --enable-lora --lora-modules this=THIS_FOLDER`.", ""])]


def model_card(tree: SearchTree, task: TaskSpec, node: Node, base_ref: str, kind: str) -> str:
    """Markdown with YAML front matter, as the Hugging Face hub reads model cards."""
    title = f"# {task.name} — node {node.id} of run {tree.meta.get('run_id')}"
    intro = f"Fine-tuned from `{task.model.id}` by trex_ray's tree search. {task.description}".strip()
    if node.plan.train.mode is TrainMode.none:
        intro = f"The base model `{task.model.id}`, as it is."
    lines = [*_front_matter(task, base_ref, kind), title, "", intro, "",
             *_scores(tree, task, node), *_plan(node), *_data(task), *_lineage(tree, node),
             *_provenance(tree, task, node, base_ref, kind), *_usage(kind)]
    return "\n".join(lines)
