"""What ftbench lends the rest of trex (``spec/builtin.py``): its data sets, conversions, tasks and words.

Imported by ``trex_ray.ftbench`` itself, so that importing any of ftbench registers all of it.
"""

from __future__ import annotations

import functools

from trex_ray.ftbench import convert, corpora, generators, lexicon, registry
from trex_ray.spec import builtin


def word_classes() -> dict[str, list[str]]:
    """Groups of words that play the same part in every built-in task (sentiment adjectives by
    polarity, intensifiers, openers, review nouns). Words a task must copy (headline names and
    verbs, reverse symbols) keep their own identity: a shared direction would blur them."""
    names = ("POSITIVE", "NEGATIVE", "NEUTRAL", "INTENSIFIERS", "OPENERS", "NOUNS")
    return {name.lower(): list(getattr(lexicon, name)) for name in names if hasattr(lexicon, name)}


def register() -> None:
    for name in corpora.corpus_names():
        builtin.register_data(name, functools.partial(corpora.corpus_records, name), generated=False)
    for name in generators.task_names():
        builtin.register_data(name, functools.partial(generators.generate, name), generated=True)
    for name, fn in convert.CONVERTERS.items():
        builtin.register_conversion(name, fn)
    for name, description in registry.list_builtin_tasks():
        builtin.register_task(name, description)
    builtin.register_version("generators", generators.GENERATOR_VERSION)
    builtin.register_version("convert", convert.VERSION)
    builtin.register_words(builtin.Words(lexicon.builtin_vocabulary, word_classes))


register()
