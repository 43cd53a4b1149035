"""What an LLM answer may contain: pydantic models (to validate) and JSON schemas (to ask with).

Both are built from the same bounds, which are tighter than ``Plan``'s own: an LLM plan with a
learning rate of 5 or 10,000 epochs is absurd even though the executor would accept it. A
plan draft names only what changes: fields it leaves out keep the parent's values. Example::

    tool = plans_tool(k=2, ops=["dedup", "subsample"])     # -> litellm ``tools=[tool]``
    PlansAnswer.model_validate(json.loads(arguments))      # ValidationError if off-schema
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from trex_ray.spec import TEMPLATE_NAMES, MetricName

# name -> (low, high, JSON type); shared by the validation models and the tool schemas.
BOUNDS: dict[str, tuple[float, float, str]] = {
    "learning_rate": (1e-6, 0.05, "number"),
    "epochs": (0.1, 20, "number"),
    "batch_size": (1, 512, "integer"),
    "warmup_ratio": (0, 0.5, "number"),
    "weight_decay": (0, 0.5, "number"),
    "grad_clip": (0, 10, "number"),
    "lora_r": (1, 256, "integer"),
    "lora_alpha": (1, 512, "integer"),
    "zero_stage": (0, 3, "integer"),
}
MAX_PLANS = 16
MAX_OPS = 6
MAX_RATIONALE = 600
MAX_CITES = 5
MAX_INSIGHT = 400
MAX_QUERIES = 3
MAX_QUERY = 120
SEED_MAX = 2**31 - 1


def _bound(name: str) -> Any:
    low, high, _ = BOUNDS[name]
    return Field(default=None, ge=low, le=high)


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OpDraft(_Answer):
    op: str = Field(max_length=64)
    params: dict[str, Any] = Field(default_factory=dict)


class DataDraft(_Answer):
    ops: list[OpDraft] | None = Field(default=None, max_length=MAX_OPS)
    template: str | None = None


class TrainDraft(_Answer):
    mode: Literal["full", "lora"] | None = None
    learning_rate: float | None = _bound("learning_rate")
    epochs: float | None = _bound("epochs")
    batch_size: int | None = _bound("batch_size")
    warmup_ratio: float | None = _bound("warmup_ratio")
    weight_decay: float | None = _bound("weight_decay")
    grad_clip: float | None = _bound("grad_clip")
    lora_r: int | None = _bound("lora_r")
    lora_alpha: int | None = _bound("lora_alpha")
    zero_stage: int | None = _bound("zero_stage")
    warm_start: bool | None = None


class PlanDraft(_Answer):
    data: DataDraft | None = None
    train: TrainDraft | None = None
    seed: int | None = Field(default=None, ge=0, le=SEED_MAX)
    rationale: str = Field(min_length=1, max_length=MAX_RATIONALE)
    cites: list[str] = Field(default_factory=list, max_length=MAX_CITES)


class PlansAnswer(_Answer):
    plans: list[PlanDraft] = Field(min_length=1, max_length=MAX_PLANS)


class InsightAnswer(_Answer):
    insight: str = Field(min_length=1, max_length=MAX_INSIGHT)
    tags: list[str] = Field(default_factory=list, max_length=5)


class QueriesAnswer(_Answer):
    queries: list[str] = Field(min_length=1, max_length=MAX_QUERIES)


class TaskDraft(_Answer):
    """Requirement analysis: the parts of a TaskSpec the request and the data decide."""

    name: str = Field(min_length=1, max_length=64)
    description: str = Field(min_length=1, max_length=MAX_RATIONALE)
    input_field: str = Field(min_length=1, max_length=128)
    target_field: str = Field(min_length=1, max_length=128)
    metric: MetricName
    max_new_tokens: int = Field(ge=1, le=4096)
    base_model: str | None = Field(default=None, max_length=200)
    rationale: str = Field(default="", max_length=MAX_RATIONALE)


# --- JSON schemas of the functions the model is asked to call --------------------------------
def _function(name: str, description: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }


def _obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required or [],
        "additionalProperties": False,
    }


def _string(max_length: int, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "maxLength": max_length, **extra}


def plans_tool(k: int, ops: list[str]) -> dict[str, Any]:
    train = {
        name: {"type": kind, "minimum": low, "maximum": high} for name, (low, high, kind) in BOUNDS.items()
    }
    train["mode"] = {"type": "string", "enum": ["full", "lora"]}
    train["warm_start"] = {"type": "boolean", "description": "continue from the parent's checkpoint"}
    op = _obj({"op": {"type": "string", "enum": sorted(ops)}, "params": {"type": "object"}}, ["op"])
    data = _obj(
        {
            "ops": {"type": "array", "items": op, "maxItems": MAX_OPS},
            "template": {"type": "string", "enum": list(TEMPLATE_NAMES)},
        }
    )
    plan = _obj(
        {
            "data": data,
            "train": _obj(train),
            "seed": {"type": "integer", "minimum": 0, "maximum": SEED_MAX},
            "rationale": _string(
                MAX_RATIONALE, description="why this experiment, in plain prose; cite findings"
            ),
            "cites": {
                "type": "array",
                "items": _string(80),
                "maxItems": MAX_CITES,
                "description": "ids of the findings this plan relies on",
            },
        },
        ["rationale"],
    )
    plans = {"type": "array", "items": plan, "minItems": 1, "maxItems": k}
    return _function(
        "propose_plans",
        f"Propose up to {k} child experiments of the node being expanded. "
        "Fields left out keep the parent's values.",
        _obj({"plans": plans}, ["plans"]),
    )


def insight_tool() -> dict[str, Any]:
    params = _obj(
        {
            "insight": _string(MAX_INSIGHT, description="one sentence: what this result teaches"),
            "tags": {"type": "array", "items": _string(40), "maxItems": 5},
        },
        ["insight"],
    )
    return _function(
        "record_insight", "Record the lesson of the latest experiment for later planning.", params
    )


def queries_tool() -> dict[str, Any]:
    params = _obj(
        {"queries": {"type": "array", "items": _string(MAX_QUERY), "minItems": 1, "maxItems": MAX_QUERIES}},
        ["queries"],
    )
    return _function(
        "search_literature",
        "Search queries (papers, datasets, notes) useful to plan this fine-tuning task.",
        params,
    )


def task_tool(columns: list[str]) -> dict[str, Any]:
    column = {"type": "string", "enum": columns} if columns else _string(128)
    params = _obj(
        {
            "name": _string(64, pattern="^[A-Za-z0-9_.-]+$"),
            "description": _string(MAX_RATIONALE),
            "input_field": column,
            "target_field": column,
            "metric": {"type": "string", "enum": [m.value for m in MetricName]},
            "max_new_tokens": {"type": "integer", "minimum": 1, "maximum": 4096},
            "base_model": _string(200, description="base model id; leave out to keep the default"),
            "rationale": _string(MAX_RATIONALE),
        },
        ["name", "description", "input_field", "target_field", "metric", "max_new_tokens"],
    )
    return _function("draft_task", "Draft the fine-tuning task specification for the request.", params)
