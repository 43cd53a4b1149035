"""The closed vocabulary of the built-in generated tasks and the prompt templates.

Every text the built-in generators produce, and every prompt rendered from
``trex_ray.spec.plan.TEMPLATES`` for a built-in task, splits on whitespace into words of
``builtin_vocabulary()``; a word-level tokenizer built from it therefore never meets an
unknown token. The word lists here are the single source the generators draw from.

Example::

    >>> from trex_ray.ftbench.lexicon import builtin_vocabulary
    >>> vocab = set(builtin_vocabulary())
    >>> all(w in vocab for w in "task: sentiment input: the food was good . answer: positive".split())
    True
"""

from __future__ import annotations

import string

from trex_ray.ftbench.mini_lexicon import mini_vocabulary
from trex_ray.spec.plan import TEMPLATES

TASK_NAMES: tuple[str, ...] = ("sentiment", "reverse", "headline")

PUNCTUATION: tuple[str, ...] = (".", ",", "!", "?", ":", ";", "-")

# --- sentiment -----------------------------------------------------------------------------
LABELS: tuple[str, ...] = ("positive", "negative", "neutral")
NOUNS: tuple[str, ...] = (
    "food", "service", "staff", "room", "price", "music", "view", "menu",
    "coffee", "movie", "plot", "acting", "screen", "battery", "design", "delivery",
)
POSITIVE: tuple[str, ...] = ("good", "great", "excellent", "tasty", "friendly", "lovely", "clean", "fast")
NEGATIVE: tuple[str, ...] = ("bad", "awful", "terrible", "bland", "rude", "ugly", "dirty", "slow")
NEUTRAL: tuple[str, ...] = ("average", "ordinary", "standard", "typical", "normal", "usual")
NEGATION = "not"
INTENSIFIERS: tuple[str, ...] = ("very", "really", "quite", "rather")
OPENERS: tuple[str, ...] = ("overall", "honestly", "well", "so")
CONNECTORS: tuple[str, ...] = ("and", "but", ",", ".")
SENTIMENT_GLUE: tuple[str, ...] = ("the", "was", "i", "think", "say", "would")

# --- reverse -------------------------------------------------------------------------------
SYMBOLS: tuple[str, ...] = tuple("abcdefghij") + tuple(string.digits)

# --- headline ------------------------------------------------------------------------------
AGENTS: tuple[str, ...] = (
    "mayor", "council", "police", "school", "company", "team",
    "museum", "hospital", "club", "bank", "university", "army",
)
VERBS: tuple[tuple[str, str], ...] = (  # (past, present)
    ("opened", "opens"), ("closed", "closes"), ("sold", "sells"), ("bought", "buys"),
    ("built", "builds"), ("won", "wins"), ("lost", "loses"), ("launched", "launches"),
    ("cancelled", "cancels"), ("announced", "announces"),
)
OBJECTS: tuple[str, ...] = (
    "bridge", "park", "library", "station", "factory", "contest",
    "award", "festival", "market", "project", "stadium", "plan",
)
PLACES: tuple[str, ...] = (
    "paris", "london", "berlin", "tokyo", "madrid", "rome", "oslo", "cairo", "lima", "seoul",
)
DAYS: tuple[str, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
FILLERS: tuple[str, ...] = (
    "the weather was cold .",
    "many people came to watch .",
    "local news covered the story .",
    "it was a busy week .",
    "some residents were surprised .",
    "more details will follow later .",
    "the event lasted two hours .",
    "a spokesperson declined to comment .",
    "critics said little about it .",
    "the crowd was calm .",
)
HEADLINE_GLUE: tuple[str, ...] = ("on", "the", "in", "a", "earlier")


def template_words() -> set[str]:
    """Whitespace words of every prompt template, with each built-in task name substituted."""
    words: set[str] = set()
    for template in TEMPLATES.values():
        for task in TASK_NAMES:
            words.update(template.format(input="", task=task).split())
    return words


def _task_words() -> set[str]:
    words: set[str] = set(LABELS) | set(NOUNS) | set(POSITIVE) | set(NEGATIVE) | set(NEUTRAL)
    words |= {NEGATION} | set(INTENSIFIERS) | set(OPENERS) | set(CONNECTORS) | set(SENTIMENT_GLUE)
    words |= set(SYMBOLS)
    words |= set(AGENTS) | set(OBJECTS) | set(PLACES) | set(DAYS) | set(HEADLINE_GLUE)
    words |= {w for pair in VERBS for w in pair}
    for sentence in FILLERS:
        words.update(sentence.split())
    return words


def builtin_vocabulary() -> list[str]:
    """Sorted, de-duplicated list of every word the built-in tasks and templates can produce."""
    words = template_words() | _task_words() | set(TASK_NAMES) | set(PUNCTUATION)
    words |= set(mini_vocabulary())  # the ftbench-mini analogs (ftbench/mini_lexicon.py)
    return sorted(w for w in words if w)
