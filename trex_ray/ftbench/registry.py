"""Registry of the built-in offline tasks as ready-to-run TaskSpecs.

Example::

    >>> from trex_ray.ftbench.registry import builtin_task, list_builtin_tasks
    >>> [name for name, _ in list_builtin_tasks()]
    ['headline', 'reverse', 'sentiment']
    >>> builtin_task("sentiment").metric.name.value
    'accuracy'
"""

from __future__ import annotations

from trex_ray.ftbench.generators import TASKS
from trex_ray.spec import Budget, DataSource, DataSpec, MetricName, MetricSpec, ModelSpec, TaskSpec

BUILTIN_MODEL = "builtin:tiny-llama"

# name -> (metric, max_new_tokens): new-token budgets sized to the targets (word-level tokenizer).
_SETTINGS: dict[str, tuple[MetricName, int]] = {
    "sentiment": (MetricName.accuracy, 2),
    "reverse": (MetricName.exact_match, 8),
    "headline": (MetricName.rougeL, 8),
}


def list_builtin_tasks() -> list[tuple[str, str]]:
    """(name, one-line description) of every built-in task, sorted by name."""
    return [(name, TASKS[name].description) for name in sorted(_SETTINGS)]


def builtin_task(name: str) -> TaskSpec:
    """The TaskSpec of a built-in task: tiny built-in model, generated data, its metric."""
    if name not in _SETTINGS:
        raise ValueError(f"built-in task {name!r} is unknown; use one of {sorted(_SETTINGS)}")
    metric, max_new_tokens = _SETTINGS[name]
    source = f"builtin:{name}"
    return TaskSpec(
        name=name,
        description=TASKS[name].description,
        model=ModelSpec(id=BUILTIN_MODEL),
        data=DataSpec(train=[DataSource(id=source, split="train")], eval=DataSource(id=source, split="eval")),
        metric=MetricSpec(name=metric),
        budget=Budget(max_nodes=12),
        max_new_tokens=max_new_tokens,
    )
