"""The offline default planner: diagnose the parent, then propose the fixes an engineer would try.

* root (the base model): diverse drafts — full fine-tuning at a few learning rates, LoRA,
  and a cleaned-data variant when the data profile shows noise or duplicates;
* diverged / failed: the same plan at a lower learning rate;
* under-fit (validation loss still falling at the end): warm-start from the parent and train
  longer, paying only the extra epochs; or a higher learning rate;
* over-fit (validation loss rose after its minimum): fewer epochs, data cleaning, weight decay;
* otherwise: data-recipe ops not yet tried, another prompt template, LoRA → full, a gentle
  warm-started refinement.

Insights veto what failed before (a learning rate at or above one that diverged) and rank
changes that helped elsewhere first. Example::

    HeuristicPlanner(task).propose(tree, tree.root, k=2)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from trex_ray.research.insights import InsightMemory, plan_changes
from trex_ray.research.planner import register_planner
from trex_ray.spec import DataOp, FailureKind, Outcome, Plan, TaskSpec, TrainMode, TrainRecipe
from trex_ray.tree import Node, SearchTree

log = logging.getLogger(__name__)

CLEANING_OPS = ("label_noise_filter", "dedup", "length_filter")
MAX_WARM_CHAIN = 4  # warm starts in a row, after which a checkpoint is not continued again
MIN_LR_FRACTION = 1 / 8  # a gentle continuation stays at or above this share of its chain's first lr


class HeuristicPlanner:
    name = "heuristic"

    def __init__(self, task: TaskSpec) -> None:
        self.task = task

    def reflect(self, tree: SearchTree, node: Node) -> tuple[str, dict[str, Any]] | None:
        return None  # the built-in distiller says it well enough

    def propose(self, tree: SearchTree, node: Node, k: int) -> list[Plan]:
        memory = InsightMemory(tree.insights)
        profile: dict[str, Any] = tree.meta.get("profile", {})
        if node.parent is None:
            candidates = self._drafts(node.plan, profile)
        else:
            candidates = self._refinements(node, diagnose(node), profile, warm_chain(tree, node))
        chosen: list[Plan] = []
        for plan in self._rank(node.plan, candidates, memory):
            if len(chosen) == k:
                break
            if tree.has_plan(plan, node.id) or any(p.hash == plan.hash for p in chosen):
                continue
            if self._vetoed(plan, memory):
                continue
            chosen.append(plan)
        return chosen

    # --- drafts from the base model ---------------------------------------------------
    def _drafts(self, base: Plan, profile: dict[str, Any]) -> list[Plan]:
        seed = self.task.search.seed
        full = TrainRecipe(mode=TrainMode.full, learning_rate=2e-3, epochs=2)
        drafts = [
            Plan(train=full, seed=seed, rationale="baseline: full fine-tune, moderate learning rate"),
            Plan(
                data=base.data.model_copy(update={"ops": [DataOp(op="dedup"), DataOp(op="label_noise_filter")]}),
                train=full,
                seed=seed,
                rationale=f"clean the data first (noise estimate {profile.get('noise_estimate', '?')}, "
                f"duplicates {profile.get('duplicate_fraction', '?')})",
            ),
            Plan(
                train=TrainRecipe(mode=TrainMode.lora, learning_rate=5e-3, epochs=2, lora_r=16, lora_alpha=32),
                seed=seed,
                rationale="LoRA: far fewer trainable weights; is it enough for this task?",
            ),
            Plan(train=full.model_copy(update={"learning_rate": 5e-4, "epochs": 3}), seed=seed,
                 rationale="a slower, longer full fine-tune"),
            Plan(train=full.model_copy(update={"learning_rate": 5e-3}), seed=seed,
                 rationale="a faster learning rate"),
        ]
        noisy = (profile.get("noise_estimate") or 0) > 0.05 or (profile.get("duplicate_fraction") or 0) > 0.01
        if not noisy:
            drafts.append(drafts.pop(1))  # cleaning is a long shot on clean data
        return drafts

    # --- refinements of a trained node ------------------------------------------------
    def _refinements(self, node: Node, diagnosis: str, profile: dict[str, Any],
                     chain: list[Node] | None = None) -> list[Plan]:
        """``chain``: the node and the warm-started runs it continues (``warm_chain``). A variant trained
        from scratch re-runs the whole chain's training (its first lr, all its epochs), not only the
        last epoch; a checkpoint is continued at most ``MAX_WARM_CHAIN`` times in a row, and a gentle
        continuation never halves the lr below ``MIN_LR_FRACTION`` of the chain's first."""
        plan, train = node.plan, node.plan.train
        chain = chain or [node]
        start = chain[-1].plan.train
        epochs = min(1000.0, sum(n.plan.train.epochs for n in chain))
        cold = train if len(chain) == 1 else start.model_copy(
            update={"epochs": epochs, "weight_decay": train.weight_decay})
        fresh = plan.model_copy(update={"train": cold.model_copy(update={"warm_start": False})})
        train = fresh.train if len(chain) > 1 else train
        may_continue = len(chain) - 1 < MAX_WARM_CHAIN

        def with_train(rationale: str, base: Plan = fresh, **changes: Any) -> Plan:
            return base.model_copy(update={"train": base.train.model_copy(update=changes), "rationale": rationale})

        def with_op(op: str, rationale: str) -> Plan:
            ops = [*plan.data.ops, DataOp(op=op, params=_op_defaults(op, profile))]
            return fresh.model_copy(update={"data": plan.data.model_copy(update={"ops": ops}), "rationale": rationale})

        warm = plan.model_copy(update={"train": plan.train.model_copy(update={"warm_start": True})})
        unused_ops = [op for op in CLEANING_OPS if not plan.data.has(op)]
        if diagnosis == "diverged":
            return [with_train(f"{node.id} diverged: lower the learning rate", learning_rate=train.learning_rate / 3),
                    with_train(f"{node.id} diverged: lower lr, clip harder", learning_rate=train.learning_rate / 10,
                               grad_clip=0.5)]
        if diagnosis == "failed":
            return [with_train(f"{node.id} failed: a safer recipe", learning_rate=train.learning_rate / 2,
                               zero_stage=0, batch_size=max(1, train.batch_size // 2))]
        out: list[Plan] = []
        if diagnosis in ("underfit", "stopped") and may_continue:
            out.append(with_train(f"{node.id} still improving: continue from its checkpoint for 1 more epoch",
                                  base=warm, epochs=1.0, warmup_ratio=0.0))
        if diagnosis in ("underfit", "stopped"):
            out.append(with_train(f"{node.id} under-fit: a higher learning rate",
                                  learning_rate=min(train.learning_rate * 2, 0.05)))
        if diagnosis == "overfit":
            out.append(with_train(f"{node.id} over-fit: fewer epochs", epochs=max(0.5, train.epochs * 0.6)))
            out += [with_op(op, f"{node.id} over-fit: clean the data ({op})") for op in unused_ops[:1]]
            out.append(with_train(f"{node.id} over-fit: weight decay", weight_decay=0.1))
        out += [with_op(op, f"refine {node.id}: try {op}") for op in unused_ops]
        if train.mode is TrainMode.lora:
            out.append(with_train(f"{node.id} used LoRA: try full fine-tuning", mode=TrainMode.full,
                                  learning_rate=min(train.learning_rate, 2e-3)))
        gentle = plan.train.learning_rate / 2
        if may_continue and gentle >= start.learning_rate * MIN_LR_FRACTION:
            out.append(with_train(f"refine {node.id}: continue gently from its checkpoint", base=warm,
                                  epochs=1.0, learning_rate=gentle, warmup_ratio=0.0))
        out.append(with_train(f"refine {node.id}: train longer from scratch", epochs=train.epochs + 1))
        for template in ("instruct", "qa", "plain"):
            if template != plan.data.template:
                out.append(fresh.model_copy(update={"data": plan.data.model_copy(update={"template": template}),
                                                    "rationale": f"refine {node.id}: prompt template {template}"}))
                break
        return out

    # --- insights -----------------------------------------------------------------------
    @staticmethod
    def _vetoed(plan: Plan, memory: InsightMemory) -> bool:
        ceiling = memory.lr_ceiling(plan.train.mode.value)
        if ceiling is not None and plan.train.learning_rate >= ceiling * 0.9:
            log.debug("veto %s: lr %g at or above a diverged %g", plan.hash, plan.train.learning_rate, ceiling)
            return True
        return False

    @staticmethod
    def _rank(parent: Plan, candidates: list[Plan], memory: InsightMemory) -> list[Plan]:
        """Stable order, but changes that helped elsewhere go first and ones that hurt go last."""

        def score(item: tuple[int, Plan]) -> tuple[float, int]:
            index, plan = item
            effects = [memory.change_effect(c) for c in plan_changes(parent, plan)]
            known = [e for e in effects if e is not None]
            return (-(sum(known) / len(known)) if known else 0.0, index)

        return [p for _, p in sorted(enumerate(candidates), key=score)]


def warm_chain(tree: SearchTree, node: Node) -> list[Node]:
    """The node, then each run it continues from a checkpoint, ending with the run trained from scratch."""
    chain = [node]
    while chain[-1].plan.train.warm_start and chain[-1].parent is not None:
        parent = tree.nodes.get(chain[-1].parent)
        if parent is None or parent.parent is None or parent.plan.train.mode is TrainMode.none:
            break
        chain.append(parent)
    return chain


def diagnose(node: Node) -> str:
    """diverged | failed | stopped | underfit | overfit | good — from the node's result and curve."""
    result = node.result
    if result is None:
        return "failed"
    if result.outcome is Outcome.failed:
        return "diverged" if result.failure is FailureKind.diverged else "failed"
    if result.outcome is Outcome.stopped:
        return "stopped"
    losses = [p.val_loss for p in result.curve if p.val_loss is not None]
    if len(losses) >= 2:
        best = min(losses)
        if losses[-1] > best * 1.05 and losses.index(best) < len(losses) - 1:
            return "overfit"
        if losses[-1] < losses[-2] * 0.97:
            return "underfit"
    return "good"


def _op_defaults(op: str, profile: dict[str, Any]) -> dict[str, Any]:
    if op == "length_filter":
        limit = profile.get("suggested_max_words")
        return {"max_words": int(limit)} if limit else {}
    return {}


@register_planner("heuristic")
def _make(task: TaskSpec, run_dir: Path | None = None) -> HeuristicPlanner:
    return HeuristicPlanner(task)
