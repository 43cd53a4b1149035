"""Registry of the built-in offline tasks as ready-to-run TaskSpecs.

Example::

    >>> from trex_ray.ftbench.registry import builtin_task, list_builtin_tasks
    >>> [name for name, _ in list_builtin_tasks()]
    ['sotu_party', 'tweet_sentiment', 'headline', 'reverse', 'sentiment']
    >>> builtin_task("tweet_sentiment").model.id
    'builtin:smollm2-135m'

Two tasks run the embedded real model on real text shipped in packages (``ftbench/corpora.py``);
three generated ones run the tiny random model: fast test fixtures.
"""

from __future__ import annotations

from trex_ray.ftbench.corpora import CORPORA
from trex_ray.ftbench.generators import TASKS
from trex_ray.spec import (
    Budget,
    DataSource,
    DataSpec,
    MetricName,
    MetricSpec,
    ModelSpec,
    Resources,
    SearchSpec,
    TaskSpec,
)

BUILTIN_MODEL = "builtin:tiny-llama"
REAL_MODEL = "builtin:smollm2-135m"
# Sized for 2 CPU cores: a draft's epoch over 128 rows is 16 steps of 8 (about 2.5 min on one core),
# validation and test large enough to tell nodes apart (test >= 300 rows); the best node on validation
# (test_top_k 1) and the base are scored on test.
_REAL: dict[str, dict[str, int]] = {
    "tweet_sentiment": {"train": 128, "val": 128, "test": 320},
    "sotu_party": {"train": 128, "val": 128, "test": 320},
}

# name -> (metric, max_new_tokens): new-token budgets sized to the targets (word-level tokenizer).
_SETTINGS: dict[str, tuple[MetricName, int]] = {
    "sentiment": (MetricName.accuracy, 2),
    "reverse": (MetricName.exact_match, 8),
    "headline": (MetricName.rougeL, 8),
}


def list_builtin_tasks() -> list[tuple[str, str]]:
    """(name, one-line description) of every built-in task: the real ones first, then the generated."""
    real = [(name, f"{CORPORA[name].description} [real data, {REAL_MODEL}]") for name in sorted(_REAL)]
    generated = [(name, f"{TASKS[name].description} [generated, {BUILTIN_MODEL}]")
                 for name in sorted(_SETTINGS)]
    return real + generated


def real_task(name: str) -> TaskSpec:
    """A built-in task on real text: the embedded pretrained model, sizes for 2 CPU cores."""
    size, source = _REAL[name], f"builtin:{name}"
    return TaskSpec(
        name=name,
        description=CORPORA[name].description,
        model=ModelSpec(id=REAL_MODEL),
        data=DataSpec(train=[DataSource(id=source, split="train", limit=size["train"] + size["val"])],
                      eval=DataSource(id=source, split="test", limit=size["test"]), val_size=size["val"]),
        metric=MetricSpec(name=MetricName.accuracy),
        budget=Budget(max_nodes=8),
        resources=Resources(cpus_per_worker=1),
        search=SearchSpec(children_per_expansion=2, test_top_k=1),
    )


def builtin_task(name: str) -> TaskSpec:
    """The TaskSpec of a built-in task: a real one (``real_task``) or a generated one (tiny model)."""
    if name in _REAL:
        return real_task(name)
    if name not in _SETTINGS:
        raise ValueError(f"built-in task {name!r} is unknown; use one of {sorted([*_REAL, *_SETTINGS])}")
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
