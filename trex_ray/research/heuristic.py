"""The offline default planner: diagnose the parent, then propose the fixes an engineer would try.

* root (the base model): diverse drafts — full fine-tuning at a few learning rates, LoRA,
  and a cleaned-data variant when the data profile shows noise or duplicates; once they are used,
  the rate model's bets (``rates.py``: a small Gaussian process over the drafts' metrics against
  the learning rate, relative to each mode's rule rate, so that one mode's result informs the other);
* every refinement starts with the rate model's bets (from scratch, the node's data recipe), fitted
  on the results near the node (the drafts, its siblings and children);
* diverged / failed: the same plan at a lower learning rate;
* under-fit (validation loss still falling at the end): warm-start from the parent and train
  longer, paying only the extra epochs; or a higher learning rate;
* over-fit (validation loss rose after its minimum): fewer epochs, data cleaning, weight decay;
* otherwise: data-recipe ops not yet tried, another prompt template, LoRA → full, a gentle
  warm-started refinement.

A change of data or template continues the node's checkpoint (PBT's explore step) and is compared
with the plain continuation beside it; a continuation trains ``continuation_epochs`` epochs, more
where a fixed per-trial cost (start-up, evaluation) would dominate a one-epoch trial.

Insights veto what failed before (a learning rate at or above one that diverged) and rank
changes that helped elsewhere first. Example::

    HeuristicPlanner(task).propose(tree, tree.root, k=2)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trex_ray.research.insights import InsightMemory
from trex_ray.research.planner import register_planner
from trex_ray.research.rates import RatePoint, suggest_rates
from trex_ray.spec import DataOp, DataRecipe, FailureKind, Outcome, Plan, TaskSpec, TrainMode, TrainRecipe
from trex_ray.spec.plan_text import plan_changes
from trex_ray.tree import Node, SearchTree

log = logging.getLogger(__name__)

CLEANING_OPS = ("label_noise_filter", "dedup", "length_filter")
MAX_WARM_CHAIN = 4  # warm starts in a row, after which a checkpoint is not continued again
MIN_LR_FRACTION = 1 / 8  # a gentle continuation stays at or above this share of its chain's first lr
MAX_CONTINUATION_EPOCHS = 4  # a continuation trains at most this many epochs (continuation_epochs)
# A continuation loads the weights, not the optimizer: Adam's first steps from fresh moments move every
# weight by about the lr, which at the parent's peak lr threw trained models off (FT-Bench: loss 0.7 → 15
# at step 2). A short warm-up, as at the start of any run, avoids it.
CONTINUATION_WARMUP = 0.2


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
            candidates = [*self._drafts(node.plan, profile), *self._rate_moves(tree, node, profile)]
        else:
            candidates = [*self._rate_moves(tree, node, profile, limit=2),
                          *self._refinements(node, diagnose(node), profile, warm_chain(tree, node),
                                             continuation_epochs(tree, node))]
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
        rates = draft_rates(profile.get("model") or {})
        # a pretrained model's short runs report twice (each report costs a validation-loss pass)
        full = _draft_recipe(TrainMode.full, rates.full, rates)
        lora = _draft_recipe(TrainMode.lora, rates.lora, rates)
        drafts = [
            Plan(train=full, seed=seed,
                 rationale=f"baseline: full fine-tune at lr {rates.full:g} ({rates.why})"),
            Plan(
                data=base.data.model_copy(
                    update={"ops": [DataOp(op="dedup"), DataOp(op="label_noise_filter")]}),
                train=full,
                seed=seed,
                rationale=f"clean the data first (noise estimate {profile.get('noise_estimate', '?')}, "
                f"duplicates {profile.get('duplicate_fraction', '?')})",
            ),
            Plan(train=lora, seed=seed,
                 rationale="LoRA: far fewer trainable weights; is it enough for this task?"),
            Plan(train=full.model_copy(update={"learning_rate": rates.full / 4,
                                               "epochs": rates.epochs * 1.5}),
                 seed=seed, rationale="a slower, longer full fine-tune"),
            Plan(train=full.model_copy(update={"learning_rate": rates.full * rates.faster}),
                 seed=seed, rationale="a faster learning rate"),
        ]
        noisy = (profile.get("noise_estimate") or 0) > 0.05 or (profile.get("duplicate_fraction") or 0) > 0.01
        if not noisy:
            drafts.append(drafts.pop(1))  # cleaning is a long shot on clean data
        if rates.pretrained:  # LoRA is the usual first try on a pretrained model: try it second
            lora_at = next(i for i, d in enumerate(drafts) if d.train.mode is TrainMode.lora)
            drafts.insert(1, drafts.pop(lora_at))
        return drafts

    def _rate_moves(self, tree: SearchTree, node: Node, profile: dict[str, Any],
                    limit: int = 2) -> list[Plan]:
        """Runs from scratch at the rates a Gaussian process over the results near ``node`` (the drafts,
        its siblings and children) expects to improve most (``rates.suggest_rates``), with ``node``'s
        data recipe and each mode's draft recipe."""
        rates = draft_rates(profile.get("model") or {})
        near = {n.id: n for n in (*tree.children(tree.root), *tree.siblings(node), *tree.children(node))} \
            if tree.root is not None else {}
        points = [RatePoint(n.plan.train.mode.value, n.plan.train.learning_rate, n.metric)
                  for n in near.values()
                  if n.ok and n.metric is not None and not n.plan.train.warm_start
                  and n.plan.train.mode is not TrainMode.none]
        out = []
        for s in suggest_rates(points, {"full": rates.full, "lora": rates.lora}, limit):
            train = _draft_recipe(TrainMode(s.mode), s.lr, rates)
            out.append(node.plan.model_copy(update={
                "train": train, "seed": self.task.search.seed,
                "rationale": f"{s.mode} at lr {s.lr:g}: the rate model's best bet "
                f"(predicted {s.mean:.3f} from {len(points)} results)"}))
        return out

    # --- refinements of a trained node ------------------------------------------------
    def _refinements(self, node: Node, diagnosis: str, profile: dict[str, Any],
                     chain: list[Node] | None = None, step: float = 1.0) -> list[Plan]:
        """``chain``: the node and the warm-started runs it continues (``warm_chain``); ``step``: the
        epochs of a continuation (``continuation_epochs``). A change of data or template continues the
        node's checkpoint, as PBT's explore step does, so that it costs ``step`` epochs and is compared
        with the plain continuation beside it; past ``MAX_WARM_CHAIN`` links (or for a change of lr or
        mode) a variant trains from scratch and re-runs the whole chain's training (its first lr, all
        its epochs). A gentle continuation never halves the lr below ``MIN_LR_FRACTION`` of the
        chain's first."""
        b = _Bases.of(node, chain or [node], step)
        if diagnosis in ("diverged", "failed"):
            return _repairs(b, diagnosis)
        plan, train = node.plan, b.fresh.train
        unused_ops = [op for op in CLEANING_OPS if not plan.data.has(op)]
        out = _fixes(b, diagnosis, unused_ops, profile)
        out += [b.variant(_with_op(plan.data, op, profile), f"refine {node.id}: try {op}")
                for op in unused_ops]
        if train.mode is TrainMode.lora:
            out.append(b.with_train(f"{node.id} used LoRA: try full fine-tuning", mode=TrainMode.full,
                                    learning_rate=_full_rate_of_lora(train.learning_rate, profile)))
        gentle = plan.train.learning_rate / 2
        if b.may_continue and gentle >= b.start.learning_rate * MIN_LR_FRACTION:
            out.append(b.with_train(f"refine {node.id}: continue gently from its checkpoint", base=b.warm,
                                    learning_rate=gentle))
        out.append(b.with_train(f"refine {node.id}: train longer from scratch", epochs=train.epochs + 1))
        if not (profile.get("model") or {}).get("chat"):  # a chat model is prompted through its template
            template = next(t for t in ("instruct", "qa", "auto") if t != plan.data.template)
            out.append(b.variant(plan.data.model_copy(update={"template": template}),
                                 f"refine {node.id}: prompt template {template}"))
        return out

    # --- insights -----------------------------------------------------------------------
    @staticmethod
    def _vetoed(plan: Plan, memory: InsightMemory) -> bool:
        ceiling = memory.lr_ceiling(plan.train.mode.value)
        if ceiling is not None and plan.train.learning_rate >= ceiling * 0.9:
            log.debug("veto %s: lr %g at or above a diverged %g", plan.hash, plan.train.learning_rate,
                      ceiling)
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


@dataclass(frozen=True)
class DraftRates:
    full: float
    lora: float
    epochs: float
    lora_dropout: float
    pretrained: bool
    why: str
    faster: float = 2.0  # the "faster learning rate" draft's factor
    batch_size: int = 16


# A random-init model (the tiny test ones) learns from scratch: high rates, more epochs. A pretrained
# one is fine-tuned gently, for one epoch: full fine-tuning at 3e-4 for 135 M parameters (measured on
# tweet_sentiment, 16 steps: 1e-4 left the validation score at the base's, 3e-4 gained 0.14), lower for
# larger models (~ 1/sqrt(size): ~8e-5 at 1.7 B, ~4e-5 at 8 B), LoRA at ten times that.
RANDOM_INIT = DraftRates(2e-3, 5e-3, 2.0, 0.0, False, "a model trained from random weights", faster=2.5)
REFERENCE_PARAMS = 1.35e8
REFERENCE_FULL_LR = 3e-4


def draft_rates(model: dict[str, Any]) -> DraftRates:
    """Learning rates and epochs of the drafts, from what is known of the model (``model_facts``)."""
    if not model.get("pretrained", False):
        return RANDOM_INIT
    params = model.get("params") or 1.7e9  # unknown hub model: assume a small LLM
    full = float(f"{min(5e-4, max(1e-5, REFERENCE_FULL_LR * (REFERENCE_PARAMS / params) ** 0.5)):.2g}")
    # batch 8: on small data, more updates for the same compute (16 steps of 8 rows: +0.11 on
    # tweet_sentiment's validation in half the time of 16 steps of 16 rows, +0.14)
    return DraftRates(full, float(f"{min(3e-3, 10 * full):.2g}"), 1.0, 0.05, True,
                      f"pretrained, {params / 1e6:.0f} M parameters", batch_size=8)


def _draft_recipe(mode: TrainMode, lr: float, rates: DraftRates) -> TrainRecipe:
    """A draft's recipe for ``mode`` at ``lr``: a pretrained model's short runs report twice (each
    report costs a validation-loss pass)."""
    every = 0.5 if rates.pretrained else TrainRecipe().eval_every_fraction
    lora = ({"lora_r": 16, "lora_alpha": 32, "lora_dropout": rates.lora_dropout}
            if mode is TrainMode.lora else {})
    return TrainRecipe(mode=mode, learning_rate=lr, epochs=rates.epochs, batch_size=rates.batch_size,
                       eval_every_fraction=every, **lora)


@dataclass(frozen=True)
class _Bases:
    """What a refinement of ``node`` builds on: ``fresh`` — its recipe trained from scratch (a warm
    chain re-run whole); ``warm`` — its plan continuing its checkpoint for ``step`` epochs."""

    node: Node
    fresh: Plan
    warm: Plan
    start: TrainRecipe  # the chain's first recipe: the one trained from the base model
    may_continue: bool

    @classmethod
    def of(cls, node: Node, chain: list[Node], step: float) -> _Bases:
        plan, train, start = node.plan, node.plan.train, chain[-1].plan.train
        epochs = min(1000.0, sum(n.plan.train.epochs for n in chain))
        cold = train if len(chain) == 1 else start.model_copy(
            update={"epochs": epochs, "weight_decay": train.weight_decay})
        fresh = plan.model_copy(update={"train": cold.model_copy(update={"warm_start": False})})
        warm = plan.model_copy(update={"train": train.model_copy(
            update={"warm_start": True, "epochs": step, "warmup_ratio": CONTINUATION_WARMUP})})
        # a checkpoint to continue: a trial stopped early (or failed) saved none
        has_checkpoint = node.ok or bool(node.result is not None and node.result.checkpoint)
        return cls(node, fresh, warm, start, len(chain) - 1 < MAX_WARM_CHAIN and has_checkpoint)

    def with_train(self, rationale: str, base: Plan | None = None, **changes: Any) -> Plan:
        base = base or self.fresh
        train = base.train.model_copy(update=changes)
        return base.model_copy(update={"train": train, "rationale": rationale})

    def variant(self, data: DataRecipe, rationale: str) -> Plan:
        """A change of data or template: continued from the checkpoint while the chain may grow."""
        if self.may_continue:
            why = f"{rationale} (continuing its checkpoint)"
            return self.warm.model_copy(update={"data": data, "rationale": why})
        return self.fresh.model_copy(update={"data": data, "rationale": rationale})


def _repairs(b: _Bases, diagnosis: str) -> list[Plan]:
    node, lr, batch = b.node, b.fresh.train.learning_rate, b.fresh.train.batch_size
    if diagnosis == "diverged":
        return [b.with_train(f"{node.id} diverged: lower the learning rate", learning_rate=lr / 3),
                b.with_train(f"{node.id} diverged: lower lr, clip harder", learning_rate=lr / 10,
                             grad_clip=0.5)]
    return [b.with_train(f"{node.id} failed: a safer recipe", learning_rate=lr / 2, zero_stage=0,
                         batch_size=max(1, batch // 2))]


def _fixes(b: _Bases, diagnosis: str, unused_ops: list[str], profile: dict[str, Any]) -> list[Plan]:
    """What the diagnosis calls for first: train on (under-fit) or train less and regularise (over-fit)."""
    node, train, out = b.node, b.fresh.train, []
    if diagnosis in ("underfit", "stopped") and b.may_continue:
        out.append(b.with_train(f"{node.id} still improving: continue from its checkpoint for "
                                f"{b.warm.train.epochs:g} more epoch(s)", base=b.warm))
    if diagnosis in ("underfit", "stopped"):
        out.append(b.with_train(f"{node.id} under-fit: a higher learning rate",
                                learning_rate=min(train.learning_rate * 2, _max_rate(train.mode, profile))))
    if diagnosis == "overfit":
        out.append(b.with_train(f"{node.id} over-fit: fewer epochs", epochs=max(0.5, train.epochs * 0.6)))
        out += [b.fresh.model_copy(update={"data": _with_op(node.plan.data, op, profile),
                                           "rationale": f"{node.id} over-fit: clean the data ({op})"})
                for op in unused_ops[:1]]
        out.append(b.with_train(f"{node.id} over-fit: weight decay", weight_decay=0.1))
    return out


def _full_rate_of_lora(lora_lr: float, profile: dict[str, Any]) -> float:
    """A full fine-tune's learning rate in place of a LoRA one, by the drafts' ratio for this model
    (a LoRA rate run as a full fine-tune of a pretrained model would throw it off)."""
    rates = draft_rates(profile.get("model") or {})
    return float(f"{lora_lr * rates.full / rates.lora:.2g}")


def _max_rate(mode: TrainMode, profile: dict[str, Any]) -> float:
    """The highest learning rate a refinement goes to: 0.05 for a random-init model; for a pretrained
    one, 2.5x the draft's rate for its mode (beyond that the drafts' model diverges or forgets)."""
    rates = draft_rates(profile.get("model") or {})
    if not rates.pretrained:
        return 0.05
    return 2.5 * (rates.lora if mode is TrainMode.lora else rates.full)


def _with_op(data: DataRecipe, op: str, profile: dict[str, Any]) -> DataRecipe:
    return data.model_copy(update={"ops": [*data.ops, DataOp(op=op, params=_op_defaults(op, profile))]})


def continuation_epochs(tree: SearchTree, node: Node) -> float:
    """Epochs a continuation of ``node`` trains: 1, or more where every trial pays a fixed cost (start-up,
    evaluation) large against an epoch, so that its training is worth about half that fixed cost.

    The costs are fitted (least squares, ``compute = fixed + per_epoch * epochs``) on finished runs near
    the node — its chain, siblings and children, and the drafts — so that no decision scans the tree."""
    near = [*warm_chain(tree, node), *tree.siblings(node), *tree.children(node)]
    if tree.root is not None:
        near += tree.children(tree.root)
    points = {n.id: (n.plan.train.epochs, n.result.cost.compute_seconds)
              for n in near if n.ok and n.result is not None and n.plan.train.mode is not TrainMode.none}
    fit = _line(list(points.values()))
    if fit is None or fit[0] <= 0 or fit[1] <= 0:
        return 1.0
    fixed, per_epoch = fit
    return float(min(MAX_CONTINUATION_EPOCHS, max(1, round(fixed / (2 * per_epoch)))))


def _line(points: list[tuple[float, float]]) -> tuple[float, float] | None:
    """Least-squares ``(intercept, slope)`` of y on x; None without two distinct x."""
    if len({x for x, _ in points}) < 2:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    slope = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)
    return my - slope * mx, slope


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
