"""Evaluation metrics on generated text; pure Python, no torch.

Every metric takes lists of predictions and references (strings) and returns the mean
score over examples, a float in [0, 1] where higher is better.

Example::

    >>> from trex_ray.execute.metrics import score, all_scores
    >>> score("accuracy", ["Positive. really", "neutral"], ["positive", "negative"])
    0.5
    >>> round(all_scores(["the cat sat"], ["the cat sat down"])["rougeL"], 3)
    0.857
"""

from __future__ import annotations

import logging
import re
import string
from collections import Counter
from collections.abc import Callable, Sequence

from trex_ray.execute.bench_metrics import (
    lawbench_score,
    mc_accuracy,
    ome_score,
    tomg_score,
    tool_call_accuracy,
)
from trex_ray.spec.task import MetricName

logger = logging.getLogger(__name__)

_SPACES = re.compile(r"\s+")
_WORD = re.compile(r"[a-z0-9]+")
_PUNCT = string.punctuation


def normalize(text: str) -> str:
    """Lowercase, strip, collapse whitespace and strip trailing punctuation."""
    text = _SPACES.sub(" ", str(text).lower()).strip()
    return text.rstrip(_PUNCT + " ").strip()


def _check(preds: Sequence[str], refs: Sequence[str]) -> None:
    if len(preds) != len(refs):
        raise ValueError(
            f"metrics: {len(preds)} predictions but {len(refs)} references; pass one prediction per reference"
        )


def _first_words(pred: str, k: int) -> str:
    """The first ``k`` words of a prediction, each stripped of surrounding punctuation."""
    words = [w.strip(_PUNCT) for w in normalize(pred).split()[:k]]
    return " ".join(w for w in words if w)


def _label_of(pred: str, ref: str) -> str:
    return _first_words(pred, max(1, len(normalize(ref).split())))


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def accuracy(preds: Sequence[str], refs: Sequence[str]) -> float:
    """Classification accuracy: the prediction's first word(s) must equal the label."""
    _check(preds, refs)
    return _mean([float(_label_of(p, r) == normalize(r)) for p, r in zip(preds, refs, strict=True)])


def exact_match(preds: Sequence[str], refs: Sequence[str]) -> float:
    """Fraction of predictions equal to their reference after ``normalize``."""
    _check(preds, refs)
    return _mean([float(normalize(p) == normalize(r)) for p, r in zip(preds, refs, strict=True)])


def _label_set(text: str) -> set[str]:
    return {normalize(part) for part in str(text).split(",") if normalize(part)}


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def _macro(labels: set[str], pairs: list[tuple[set[str], set[str]]]) -> float:
    """Per-label F1 from (predicted set, reference set) pairs, averaged over ``labels``."""
    scores = []
    for label in sorted(labels):
        tp = sum(label in p and label in r for p, r in pairs)
        fp = sum(label in p and label not in r for p, r in pairs)
        fn = sum(label not in p and label in r for p, r in pairs)
        scores.append(_f1(tp, fp, fn))
    return _mean(scores)


def macro_f1(preds: Sequence[str], refs: Sequence[str]) -> float:
    """Macro-averaged F1 over the labels that occur in the references.

    Single-label: a prediction is read like ``accuracy`` does; one outside the label set is
    a miss for its reference's label. Multi-label (any reference holds a comma): references
    and predictions are comma-separated label sets, scored per label.
    """
    _check(preds, refs)
    if any("," in r for r in refs):
        pairs = [(_label_set(p), _label_set(r)) for p, r in zip(preds, refs, strict=True)]
    else:
        pairs = [({_label_of(p, r)}, {normalize(r)}) for p, r in zip(preds, refs, strict=True)]
    labels = set().union(*(r for _, r in pairs)) if pairs else set()
    return _macro(labels, pairs)


def _tokens(text: str) -> list[str]:
    return _WORD.findall(str(text).lower())


def _fmeasure(overlap: int, n_pred: int, n_ref: int) -> float:
    if n_pred == 0 and n_ref == 0:
        return 1.0
    if overlap == 0:
        return 0.0
    precision, recall = overlap / n_pred, overlap / n_ref
    return 2 * precision * recall / (precision + recall)


def _rouge1_one(pred: str, ref: str) -> float:
    p, r = _tokens(pred), _tokens(ref)
    overlap = sum((Counter(p) & Counter(r)).values())
    return _fmeasure(overlap, len(p), len(r))


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists."""
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def _rougeL_one(pred: str, ref: str) -> float:
    p, r = _tokens(pred), _tokens(ref)
    return _fmeasure(lcs_length(p, r), len(p), len(r))


def rouge1(preds: Sequence[str], refs: Sequence[str]) -> float:
    """Unigram-overlap F-measure (alphanumeric tokens, lowercased), averaged over examples."""
    _check(preds, refs)
    return _mean([_rouge1_one(p, r) for p, r in zip(preds, refs, strict=True)])


def rougeL(preds: Sequence[str], refs: Sequence[str]) -> float:  # noqa: N802 - the metric's name
    """Longest-common-subsequence F-measure, averaged over examples."""
    _check(preds, refs)
    return _mean([_rougeL_one(p, r) for p, r in zip(preds, refs, strict=True)])


METRICS: dict[str, Callable[[Sequence[str], Sequence[str]], float]] = {
    MetricName.accuracy.value: accuracy,
    MetricName.exact_match.value: exact_match,
    MetricName.macro_f1.value: macro_f1,
    MetricName.rouge1.value: rouge1,
    MetricName.rougeL.value: rougeL,
    MetricName.mc_accuracy.value: mc_accuracy,
    MetricName.tool_call_accuracy.value: tool_call_accuracy,
    MetricName.tomg_score.value: tomg_score,
    MetricName.ome_score.value: ome_score,
    MetricName.lawbench_score.value: lawbench_score,
}


def score(metric_name: str | MetricName, preds: Sequence[str], refs: Sequence[str]) -> float:
    """The named metric; raises ``ValueError`` listing the known names for an unknown one."""
    name = metric_name.value if isinstance(metric_name, MetricName) else str(metric_name)
    if name not in METRICS:
        raise ValueError(f"metric {name!r} is unknown; use one of {sorted(METRICS)}")
    return METRICS[name](preds, refs)


def all_scores(preds: Sequence[str], refs: Sequence[str]) -> dict[str, float]:
    """Every metric at once, keyed by metric name."""
    return {name: fn(preds, refs) for name, fn in METRICS.items()}
