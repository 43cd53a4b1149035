"""Data preparation: load sources, apply a recipe's data ops, render prompts, cache by hash.

A recipe is a list of ops from the ``OPS`` registry, applied in order to the task's train
sources; the result is split into train / val, rendered with ``TEMPLATES[recipe.template]``
and saved under ``cache_dir/data/<hash>/``, where any later node or run with the same recipe,
data spec, template and seed finds it.

Example::

    from trex_ray.ftbench import builtin_task   # (importing ftbench registers the built-in data)
    from trex_ray.spec import DataOp, DataRecipe

    recipe = DataRecipe(ops=[DataOp(op="dedup"), DataOp(op="label_noise_filter")], template="instruct")
    prepared = prepare(recipe, builtin_task("sentiment"), Path("/tmp/trex-cache"))
    prepared.train[0]["prompt"], prepared.stats["ops"]

A new op: ``@register_op("name")`` on ``def op(ds, params, ctx) -> Dataset``, and its summary and
param schema in ``spec/data_ops.py``. The noise filter's scoring is ``noise.py``; the data profile
for the planner, ``profile.py``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
from datasets import Dataset, DatasetDict

from trex_ray.execute.metrics import normalize
from trex_ray.execute.noise import noise_flags
from trex_ray.execute.prompts import render_prompts, resolve_template, template_identity
from trex_ray.execute.sources import DataError
from trex_ray.execute.splits import task_splits
from trex_ray.spec import TEMPLATES, DataRecipe, DataSource, TaskSpec
from trex_ray.spec import builtin as builtin_data
from trex_ray.spec.data_ops import check_op

logger = logging.getLogger(__name__)

DATA_FORMAT_VERSION = 3  # bump when prepare's output changes, so that caches invalidate


@dataclass(frozen=True)
class OpContext:
    """What an op may know besides its input: the task (its sources, name) and the seed."""

    task: TaskSpec
    seed: int = 0

    def rng(self, op: str) -> random.Random:
        return random.Random(f"{op}:{self.seed}")


Op = Callable[[Dataset, dict[str, Any], OpContext], Dataset]
OPS: dict[str, Op] = {}


def register_op(name: str) -> Callable[[Op], Op]:
    """Decorator adding a data op to ``OPS`` under ``name``."""

    def wrap(fn: Op) -> Op:
        OPS[name] = fn
        return fn

    return wrap


@dataclass
class PreparedData:
    train: Dataset
    val: Dataset
    eval: Dataset
    hash: str
    path: Path
    stats: dict[str, Any] = field(default_factory=dict)


# --- op helpers ------------------------------------------------------------------------------
def _words(text: str) -> list[str]:
    return str(text).split()


def _col(ds: Dataset, name: str) -> list[Any]:
    return list(ds[name])


# --- ops: each checks its params against bounds first (spec/data_ops.py), then touches the data ---
@register_op("source_mix")
def source_mix(ds: Dataset, params: dict[str, Any], ctx: OpContext) -> Dataset:
    """Resample to ``n`` examples, each train source in proportion to its weight.

    Weights come from the task's ``DataSource.weight`` unless ``weights: {source_id: w}``
    overrides them; a source smaller than its quota is repeated (upsampled).
    """
    p = check_op("source_mix", params, len(ds), ctx.task)
    n, weights = p["n"], p["weights"]
    groups: dict[str, list[int]] = defaultdict(list)
    has_source = "source" in ds.column_names
    for i, source in enumerate(_col(ds, "source") if has_source else [ctx.task.data.train[0].id] * len(ds)):
        groups[source].append(i)
    total = sum(weights[s] for s in groups) or 1.0
    rng, chosen = ctx.rng("source_mix"), []
    for source in sorted(groups):
        quota, pool = round(n * weights[source] / total), groups[source]
        rng.shuffle(pool)
        chosen += [pool[i % len(pool)] for i in range(quota)]
    rng.shuffle(chosen)
    return ds.select(chosen)


@register_op("dedup")
def dedup(ds: Dataset, params: dict[str, Any], ctx: OpContext) -> Dataset:
    """Drop exact duplicates of the normalized input (``key: input_target`` also compares the target)."""
    p = check_op("dedup", params, len(ds), ctx.task)
    targets = _col(ds, "target") if p["key"] == "input_target" else [""] * len(ds)
    seen: set[tuple[str, str]] = set()
    keep = []
    for i, (text, target) in enumerate(zip(_col(ds, "input"), targets, strict=True)):
        key = (normalize(text), normalize(target))
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return ds.select(keep)


@register_op("length_filter")
def length_filter(ds: Dataset, params: dict[str, Any], ctx: OpContext) -> Dataset:
    """Keep examples whose input + target word count lies in [``min_words``, ``max_words``]."""
    p = check_op("length_filter", params, len(ds), ctx.task)
    low, high = p["min_words"], p["max_words"]
    pairs = zip(_col(ds, "input"), _col(ds, "target"), strict=True)
    sizes = [len(_words(x)) + len(_words(y)) for x, y in pairs]
    keep = [i for i, size in enumerate(sizes) if low <= size <= high]
    return ds.select(keep)


@register_op("subsample")
def subsample(ds: Dataset, params: dict[str, Any], ctx: OpContext) -> Dataset:
    """A seeded random subset of ``n`` examples or of a ``fraction`` of them (order kept)."""
    p = check_op("subsample", params, len(ds), ctx.task)
    k = p["n"] if p["n"] is not None else round(len(ds) * p["fraction"])
    k = min(k, len(ds))
    return ds.select(sorted(ctx.rng("subsample").sample(range(len(ds)), k)))


@register_op("label_noise_filter")
def label_noise_filter(ds: Dataset, params: dict[str, Any], ctx: OpContext) -> Dataset:
    """Drop likely-mislabeled examples, judged from the data alone.

    Label targets: out-of-fold naive Bayes; drop an example when its given label's
    probability is below ``threshold``. Free-text targets: drop an example when less than
    ``min_overlap`` of its target's words occur in its input. ``mode``: auto / label / text.
    """
    p = check_op("label_noise_filter", params, len(ds), ctx.task)
    flags = noise_flags(_col(ds, "input"), _col(ds, "target"), p, ctx.seed)
    return ds.select([i for i, bad in enumerate(flags) if not bad])


# --- prepare ---------------------------------------------------------------------------------
def _file_stamp(src: DataSource) -> list[int] | None:
    path = Path(src.id).expanduser()
    if src.kind != "local" or not path.is_file():
        return None
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def data_hash(recipe: DataRecipe, task: TaskSpec, seed: int = 0, template: str | None = None) -> str:
    """Content hash of a prepared dataset: recipe, data spec, rendering (``template_identity``), task
    name and description (the chat instruction), seed, file stamps."""
    blob = {
        "format": DATA_FORMAT_VERSION,
        "generators": builtin_data.version("generators"),
        "recipe": recipe.model_dump(mode="json"),
        "data": task.data.model_dump(mode="json"),
        "task": task.name,
        "description": task.description,
        "template": template or TEMPLATES.get(recipe.template, recipe.template),
        "seed": seed,
        "files": [_file_stamp(s) for s in [*task.data.train, task.data.eval] if s is not None],
    }
    if any(s is not None and s.convert for s in [*task.data.train, task.data.eval]):
        # only converted sources: other tasks keep their cache keys
        blob["convert"] = builtin_data.version("convert")
    text = json.dumps(blob, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def render(ds: Dataset, template: str, task_name: str) -> Dataset:
    """Add the ``prompt`` column with a text template (no tokenizer): ``TEMPLATES[template]``."""
    if template not in TEMPLATES:
        raise DataError(f"data recipe template {template!r} is unknown; use one of {sorted(TEMPLATES)}")
    fmt = TEMPLATES[template]
    prompts = [fmt.format(input=x, task=task_name) for x in _col(ds, "input")]
    return ds.add_column("prompt", prompts)


def apply_ops(ds: Dataset, recipe: DataRecipe, ctx: OpContext) -> tuple[Dataset, list[dict[str, Any]]]:
    """Run the recipe's ops in order; returns the result and per-op counts."""
    log = []
    for op in recipe.ops:
        if op.op not in OPS:
            raise DataError(f"data op {op.op!r} is unknown; use one of {sorted(OPS)}")
        before = len(ds)
        ds = OPS[op.op](ds, dict(op.params), ctx)
        log.append({"op": op.op, "params": dict(op.params), "before": before, "after": len(ds)})
        logger.info("data op %s: %d -> %d examples", op.op, before, len(ds))
    if len(ds) == 0:
        names = [o.op for o in recipe.ops]
        raise DataError(f"data recipe {names} removed every train example; loosen its params")
    return ds, log


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence datasets' progress bars for a moment, restoring the caller's choice after."""
    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


def _save_atomic(parts: DatasetDict, stats: dict[str, Any], path: Path) -> None:
    tmp = path.parent / f".tmp-{path.name}-{uuid.uuid4().hex[:8]}"
    try:
        with _quiet():
            parts.save_to_disk(str(tmp))
        (tmp / "stats.json").write_text(json.dumps(stats, indent=1, sort_keys=True))
        os.replace(tmp, path)
    except OSError:
        if not (path / "stats.json").is_file():  # not a lost race with another writer
            raise
        logger.debug("prepared data %s was written meanwhile by another process", path.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _load_cached(path: Path, digest: str) -> PreparedData:
    parts = datasets.load_from_disk(str(path))
    stats = {**json.loads((path / "stats.json").read_text()), "cached": True}
    return PreparedData(parts["train"], parts["val"], parts["eval"], digest, path, stats)


def prepare(recipe: DataRecipe, task: TaskSpec, cache_dir: Path, seed: int = 0,
            base_dir: str | Path | None = None) -> PreparedData:
    """Prepared train / val / eval (test) sets for a recipe, from the cache when already made.

    The splits are the run's (``splits.task_splits``): validation and test rows are the same for every
    recipe and never pass through its ops. ``base_dir``: the base model, whose tokenizer renders the
    ``chat`` template (``auto`` is ``plain`` without it). ``stats["labels"]``: the task's classes.
    """
    tokenizer = _tokenizer(base_dir)
    template = resolve_template(recipe.template, tokenizer)
    digest = data_hash(recipe, task, seed, template_identity(template, tokenizer))
    path = Path(cache_dir) / "data" / digest
    if (path / "stats.json").is_file():
        logger.info("prepared data %s: cache hit", digest)
        return _load_cached(path, digest)
    start = time.monotonic()
    splits = task_splits(task)
    train, op_log = apply_ops(splits.pool, recipe, OpContext(task=task, seed=seed))
    parts = DatasetDict({name: render_prompts(ds, template, task, splits.labels, tokenizer)
                         for name, ds in (("train", train), ("val", splits.val), ("eval", splits.test))})
    stats = {"hash": digest, "loaded": splits.stats["raw_train"], "ops": op_log, "train": len(train),
             "val": len(splits.val), "eval": len(splits.test), "template": template,
             "labels": splits.labels, "splits": splits.stats,
             "seconds": round(time.monotonic() - start, 3), "cached": False}
    path.parent.mkdir(parents=True, exist_ok=True)
    _save_atomic(parts, stats, path)
    logger.info("prepared data %s: %d train, %d val, %d test", digest, len(train), len(splits.val),
                len(splits.test))
    return PreparedData(parts["train"], parts["val"], parts["eval"], digest, path, stats)


def _tokenizer(base_dir: str | Path | None) -> Any:
    if base_dir is None:
        return None
    from trex_ray.execute.models import load_tokenizer

    return load_tokenizer(base_dir)
