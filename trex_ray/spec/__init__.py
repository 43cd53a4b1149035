"""Typed records of a task, a plan and a result; no Ray, no torch."""

from trex_ray.spec.load import SpecError, load_task, validate
from trex_ray.spec.plan import (
    TEMPLATE_NAMES,
    TEMPLATES,
    DataOp,
    DataRecipe,
    EvalRecipe,
    Plan,
    TrainMode,
    TrainRecipe,
)
from trex_ray.spec.plan_text import describe_plan, plan_changes
from trex_ray.spec.result import Cost, Decision, FailureKind, Outcome, Progress, Result
from trex_ray.spec.task import (
    Budget,
    DataSource,
    DataSpec,
    EvalSpec,
    MetricName,
    MetricSpec,
    ModelSpec,
    Resources,
    SearchSpec,
    TaskSpec,
)

__all__ = [
    "TEMPLATES", "TEMPLATE_NAMES", "Budget", "Cost", "DataOp", "DataRecipe", "DataSource", "DataSpec",
    "Decision", "EvalRecipe",
    "EvalSpec", "FailureKind", "MetricName", "MetricSpec", "ModelSpec", "Outcome", "Plan", "Progress",
    "Resources", "Result", "SearchSpec", "SpecError", "TaskSpec", "TrainMode", "TrainRecipe",
    "describe_plan", "load_task", "plan_changes", "validate",
]
