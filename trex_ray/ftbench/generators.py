"""Offline generated tasks, deterministic per (name, split, seed), drawn from ``lexicon``.

Three tasks, each with a learnable rule and realistic dirt in the train split only:

- ``sentiment``: short reviews of 2-4 clauses ("the food was not good"); the label is the sign
  of (positive adjectives - negative ones), ``not`` flipping the adjective it precedes; 0 is
  ``neutral``. Train has ~20 % flipped labels.
- ``reverse``: 3-6 symbols, the target is the same symbols reversed. Train has ~10 % corrupted
  targets (random symbols).
- ``headline``: a few sentences, one key fact ("on monday the mayor opened the bridge in
  paris .") among fillers and perhaps an "earlier , ..." distractor; the target is
  "mayor opens bridge in paris". Train has ~10 % targets of an unrelated fact.

Train splits also hold ~3 % exact duplicates and ~3 % over-long inputs (> 48 words). Eval
splits ("eval", "validation", "test") are clean.

Example::

    >>> from trex_ray.ftbench.generators import generate
    >>> recs = generate("reverse", "eval", n=2, seed=0)
    >>> sorted(recs[0])
    ['input', 'target']
    >>> recs[0]["target"] == " ".join(reversed(recs[0]["input"].split()))
    True
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass

from trex_ray.ftbench import lexicon as lx
from trex_ray.ftbench.mini import ANALOGS

logger = logging.getLogger(__name__)

GENERATOR_VERSION = 1  # bump when any generated text changes, so that data caches invalidate
EVAL_SPLITS = ("eval", "validation", "test")
DEFAULT_SIZES = {"train": 2000, "eval": 300}
DUP_RATE = 0.03
LONG_RATE = 0.03

Record = dict[str, object]


@dataclass(frozen=True)
class TaskGen:
    """How to make one example of a task, and how to spoil its target."""

    make: Callable[[random.Random, bool], tuple[str, str]]  # (rng, long) -> (input, target)
    corrupt: Callable[[random.Random, str, str], str]  # (rng, input, target) -> wrong target
    noise_rate: float
    is_classification: bool
    description: str


# --- sentiment -----------------------------------------------------------------------------
def _clause(rng: random.Random) -> tuple[list[str], int]:
    kind = rng.randrange(3)
    adjective = rng.choice((lx.POSITIVE, lx.NEGATIVE, lx.NEUTRAL)[kind])
    polarity = (1, -1, 0)[kind]
    words = ["the", rng.choice(lx.NOUNS), "was"]
    roll = rng.random()
    if roll < 0.3:
        words.append(lx.NEGATION)
        polarity = -polarity
    elif roll < 0.5:
        words.append(rng.choice(lx.INTENSIFIERS))
    return words + [adjective], polarity


def _sentiment(rng: random.Random, long: bool) -> tuple[str, str]:
    n_clauses = rng.randint(10, 12) if long else rng.randint(2, 4)
    words: list[str] = []
    if rng.random() < 0.3:
        words += [rng.choice(lx.OPENERS), ",", "i", "think"]
    score = 0
    for i in range(n_clauses):
        if i:
            words.append(rng.choice(lx.CONNECTORS))
        clause, polarity = _clause(rng)
        words += clause
        score += polarity
    words.append(".")
    label = "positive" if score > 0 else "negative" if score < 0 else "neutral"
    return " ".join(words), label


def _flip_label(rng: random.Random, _input: str, target: str) -> str:
    return rng.choice([label for label in lx.LABELS if label != target])


# --- reverse -------------------------------------------------------------------------------
def _reverse(rng: random.Random, long: bool) -> tuple[str, str]:
    symbols = [rng.choice(lx.SYMBOLS) for _ in range(rng.randint(50, 60) if long else rng.randint(3, 6))]
    return " ".join(symbols), " ".join(reversed(symbols))


def _random_symbols(rng: random.Random, _input: str, target: str) -> str:
    while True:
        wrong = " ".join(rng.choice(lx.SYMBOLS) for _ in target.split())
        if wrong != target:
            return wrong


# --- headline ------------------------------------------------------------------------------
def _fact(rng: random.Random) -> tuple[str, tuple[str, str], str, str]:
    return rng.choice(lx.AGENTS), rng.choice(lx.VERBS), rng.choice(lx.OBJECTS), rng.choice(lx.PLACES)


def _summary(fact: tuple[str, tuple[str, str], str, str]) -> str:
    agent, (_, present), obj, place = fact
    return f"{agent} {present} {obj} in {place}"


def _headline(rng: random.Random, long: bool) -> tuple[str, str]:
    fact = _fact(rng)
    agent, (past, _), obj, place = fact
    sentences = [f"on {rng.choice(lx.DAYS)} the {agent} {past} the {obj} in {place} ."]
    if rng.random() < 0.5:
        other_agent, (other_past, _), other_obj, _ = _fact(rng)
        sentences.append(f"earlier , the {other_agent} {other_past} a {other_obj} .")
    sentences += rng.sample(lx.FILLERS, rng.randint(8, 10) if long else rng.randint(1, 3))
    rng.shuffle(sentences)
    return " ".join(sentences), _summary(fact)


def _other_fact(rng: random.Random, _input: str, target: str) -> str:
    while True:
        wrong = _summary(_fact(rng))
        if wrong != target:
            return wrong


TASKS: dict[str, TaskGen] = {
    "sentiment": TaskGen(_sentiment, _flip_label, 0.20, True,
                         "classify a short review as positive, negative or neutral (negation flips)"),
    "reverse": TaskGen(_reverse, _random_symbols, 0.10, False,
                       "write a sequence of 3-6 symbols in reverse order"),
    "headline": TaskGen(_headline, _other_fact, 0.10, False,
                        "summarise a short news item's key fact as a five-word headline"),
}
TASKS.update({name: TaskGen(*spec) for name, spec in ANALOGS.items()})  # the ftbench-mini analogs


def _rng(name: str, split: str, seed: int, stream: str) -> random.Random:
    return random.Random(f"{name}:{split}:{seed}:{stream}")


def _dirty(task: TaskGen, name: str, split: str, n: int, seed: int) -> list[Record]:
    """Train records: over-long inputs, corrupted targets, then exact duplicates."""
    rng = _rng(name, split, seed, "dirt")
    make_rng = _rng(name, split, seed, "make")
    records: list[Record] = []
    for _ in range(n):
        long = rng.random() < LONG_RATE
        text, target = task.make(make_rng, long)
        noisy = rng.random() < task.noise_rate
        if noisy:
            target = task.corrupt(rng, text, target)
        records.append({"input": text, "target": target, "noisy": noisy, "long": long, "duplicate": False})
    for i in rng.sample(range(1, n), int(DUP_RATE * n)) if n > 1 else []:
        records[i] = {**records[rng.randrange(i)], "duplicate": True}
    return records


def _clean(task: TaskGen, name: str, split: str, n: int, seed: int) -> list[Record]:
    make_rng = _rng(name, split, seed, "make")
    records: list[Record] = []
    for _ in range(n):
        text, target = task.make(make_rng, False)
        records.append({"input": text, "target": target, "noisy": False, "long": False, "duplicate": False})
    return records


def generate(
    name: str, split: str, n: int | None = None, seed: int = 0, with_meta: bool = False
) -> list[Record]:
    """Records ``{"input", "target"}`` (+ ``"label"`` for classification) of a built-in task.

    ``with_meta=True`` adds ``noisy`` / ``long`` / ``duplicate`` booleans: the generator's
    knowledge of the dirt it put in, for tests and benchmarks only; data ops never read it.
    """
    if name not in TASKS:
        raise ValueError(f"built-in task {name!r} is unknown; use one of {sorted(TASKS)}")
    if split != "train" and split not in EVAL_SPLITS:
        raise ValueError(f"split {split!r} of builtin:{name} is unknown; use 'train' or one of {EVAL_SPLITS}")
    size = DEFAULT_SIZES["train" if split == "train" else "eval"] if n is None else n
    if size < 0:
        raise ValueError(f"n={size} for builtin:{name}; use a count >= 0")
    task = TASKS[name]
    records = (_dirty if split == "train" else _clean)(task, name, split, size, seed)
    for rec in records:
        if task.is_classification:
            rec["label"] = rec["target"]
        if not with_meta:
            for key in ("noisy", "long", "duplicate"):
                del rec[key]
    logger.debug("generated %d records of builtin:%s/%s (seed %d)", len(records), name, split, seed)
    return records


def task_names() -> list[str]:
    return sorted(TASKS)
