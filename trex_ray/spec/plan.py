"""Plan: one experiment = a data recipe + a training recipe + an evaluation recipe.

A plan is plain data. Its hash (everything but the free-text rationale) names the experiment:
two nodes with the same hash would repeat the same work, so planners avoid it.

Example::

    Plan(
        data=DataRecipe(ops=[DataOp(op="dedup"), DataOp(op="subsample", params={"n": 500})]),
        train=TrainRecipe(mode="lora", learning_rate=3e-3, epochs=2),
        seed=1,
        rationale="LoRA is cheap; check whether it is enough here",
    )
"""

from __future__ import annotations

import hashlib
import json
from enum import Enum
from typing import Any

from pydantic import Field

from trex_ray.spec.task import Strict

TEMPLATES: dict[str, str] = {
    "plain": "{input}\n=>",
    "instruct": "task: {task}\ninput: {input}\nanswer:",
    "qa": "question: {input}\nanswer:",
}
# ``chat``: the model's own chat template with the task's instruction (execute/prompts.py);
# ``auto``: ``chat`` for a model that has one, else ``plain``.
TEMPLATE_NAMES: tuple[str, ...] = ("auto", "chat", *TEMPLATES)


class DataOp(Strict):
    """One step of a data recipe; ``op`` names an entry of the executor's data-op registry."""

    op: str
    params: dict[str, Any] = Field(default_factory=dict)


class DataRecipe(Strict):
    ops: list[DataOp] = Field(default_factory=list)
    template: str = "auto"

    def has(self, op: str) -> bool:
        return any(o.op == op for o in self.ops)


class TrainMode(str, Enum):
    none = "none"  # evaluate the base model (or the parent's checkpoint) as it is
    full = "full"
    lora = "lora"


class TrainRecipe(Strict):
    mode: TrainMode = TrainMode.full
    learning_rate: float = Field(default=1e-3, gt=0, le=1)
    epochs: float = Field(default=2.0, gt=0, le=1000)
    batch_size: int = Field(default=16, ge=1, le=4096)
    warmup_ratio: float = Field(default=0.05, ge=0, lt=1)
    weight_decay: float = Field(default=0.0, ge=0, le=1)
    grad_clip: float = Field(default=1.0, ge=0)
    lora_r: int = Field(default=8, ge=1, le=1024)
    lora_alpha: int = Field(default=16, ge=1)
    lora_dropout: float = Field(default=0.0, ge=0, lt=1)
    # module names (suffixes) that get adapters; None: every attention and MLP projection the model has
    lora_targets: tuple[str, ...] | None = None
    zero_stage: int = Field(default=0, ge=0, le=3)
    warm_start: bool = False  # continue from the parent's checkpoint, paying only these epochs
    eval_every_fraction: float = Field(default=0.25, gt=0, le=1)


class EvalRecipe(Strict):
    max_new_tokens: int | None = Field(default=None, ge=1)
    batch_size: int = Field(default=64, ge=1)
    backend: str = "auto"  # auto: the task's eval.backend (see spec/task.py EvalSpec); or vllm, hf, openai


class Plan(Strict):
    data: DataRecipe = DataRecipe()
    train: TrainRecipe = TrainRecipe()
    eval: EvalRecipe = EvalRecipe()
    seed: int = 0
    rationale: str = Field(default="", exclude=False)

    def identity(self) -> dict[str, Any]:
        """What the experiment is, without why it was proposed."""
        return self.model_dump(mode="json", exclude={"rationale"})

    @property
    def hash(self) -> str:
        blob = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def plan_hash(plan: Plan) -> str:
    return plan.hash
