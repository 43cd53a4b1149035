"""Helpers shared by the ftbench-mini generators (``mini_text``, ``mini_struct``)."""

from __future__ import annotations

import random
from collections.abc import Callable

Make = Callable[[random.Random, bool], tuple[str, str]]
Corrupt = Callable[[random.Random, str, str], str]
LONG_WORDS = 50
MAX_INPUT_WORDS = 40


def long_input(sentences: list[str], rng: random.Random, fillers: tuple[str, ...] | list[str]) -> str:
    """Pad to an over-long input (> LONG_WORDS words) with filler sentences."""
    text = " ".join(sentences)
    while len(text.split()) <= LONG_WORDS:
        text += " " + rng.choice(list(fillers) or sentences)
    return text


def fit_words(sentences: list[str], optional: list[int]) -> list[str]:
    """Drop optional sentences (by index, last first) until the input has at most 40 words."""
    keep = list(range(len(sentences)))
    for i in sorted(optional, reverse=True):
        if sum(len(sentences[j].split()) for j in keep) <= MAX_INPUT_WORDS:
            break
        keep.remove(i)
    return [sentences[j] for j in keep]


def retry(make: Make) -> Corrupt:
    """A corruption that swaps in the target of an unrelated example."""

    def corrupt(rng: random.Random, _input: str, target: str) -> str:
        for _ in range(100):
            wrong = make(rng, False)[1]
            if wrong != target:
                return wrong
        return target

    return corrupt


def other_choice(rng: random.Random, options: list[str], target: str) -> str:
    return rng.choice([o for o in options if o != target])
