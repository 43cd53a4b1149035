"""Label-noise scoring from the data alone: the ``label_noise_filter`` op's judgement and the profile's
noise estimate. Class labels are scored by a cross-validated naive Bayes over the inputs (a flipped
label is unlikely under the other folds' model), free text by word overlap of input and target.

Example::

    flags = noise_flags(inputs, targets, {"max_drop": 0.3})   # True: likely mislabeled
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

from trex_ray.execute.metrics import normalize
from trex_ray.spec.data_ops import MAX_DROP


def _words(text: str) -> list[str]:
    return str(text).split()


def looks_like_labels(targets: list[str]) -> bool:
    """Targets are class labels: short (<= 3 words) and few distinct values."""
    if not targets:
        return False
    parts = [p.strip() for t in targets for p in normalize(t).split(",")]  # multi-label sets too
    distinct = set(parts)
    few = len(distinct) <= min(50, max(2, len(targets) // 5))
    return few and all(len(_words(p)) <= 3 for p in parts)


_NEGATIONS = frozenset({"not", "no", "never", "without"})


def _features(text: str) -> list[str]:
    """Bag of words with negation marking: the word after "not" becomes "not_<word>"."""
    out: list[str] = []
    negate = False
    for word in normalize(text).split():
        if word in _NEGATIONS:
            negate = True
            continue
        out.append(f"not_{word}" if negate else word)
        negate = False
    return out


@dataclass
class _NaiveBayes:
    """Multinomial naive Bayes with add-one smoothing over string features."""

    log_prior: dict[str, float]
    log_lik: dict[str, dict[str, float]]
    log_unseen: dict[str, float]

    @classmethod
    def fit(cls, rows: list[tuple[list[str], str]]) -> _NaiveBayes:
        priors: Counter[str] = Counter(label for _, label in rows)
        counts: dict[str, Counter[str]] = {label: Counter() for label in priors}
        for feats, label in rows:
            counts[label].update(feats)
        vocab = len({f for c in counts.values() for f in c}) + 1
        log_prior, log_lik, log_unseen = {}, {}, {}
        for label, c in counts.items():
            denom = sum(c.values()) + vocab
            log_prior[label] = math.log(priors[label] / len(rows))
            log_lik[label] = {f: math.log((k + 1) / denom) for f, k in c.items()}
            log_unseen[label] = math.log(1 / denom)
        return cls(log_prior, log_lik, log_unseen)

    def prob(self, feats: list[str], label: str) -> float:
        """P(label | features); 0 for a label never seen in training."""
        if label not in self.log_prior:
            return 0.0
        logp = {
            y: prior + sum(self.log_lik[y].get(f, self.log_unseen[y]) for f in feats)
            for y, prior in self.log_prior.items()
        }
        top = max(logp.values())
        return math.exp(logp[label] - top) / sum(math.exp(v - top) for v in logp.values())


def label_scores(inputs: list[str], labels: list[str], folds: int = 5, seed: int = 0) -> list[float]:
    """Out-of-fold naive-Bayes probability of each example's own label (low = suspicious)."""
    rows = [(_features(x), normalize(y)) for x, y in zip(inputs, labels, strict=True)]
    order = list(range(len(rows)))
    random.Random(f"noise:{seed}").shuffle(order)
    scores = [1.0] * len(rows)
    for k in range(min(folds, len(rows))):
        held = set(order[k::folds])
        rest = [rows[i] for i in order if i not in held]
        if not rest:
            continue
        model = _NaiveBayes.fit(rest)
        for i in held:
            scores[i] = model.prob(*rows[i])
    return scores


def overlap_scores(inputs: list[str], targets: list[str]) -> list[float]:
    """Fraction of each target's words that occur in its input (low = unrelated target)."""
    out = []
    for x, y in zip(inputs, targets, strict=True):
        source, words = set(normalize(x).split()), normalize(y).split()
        out.append(sum(w in source for w in words) / len(words) if words else 0.0)
    return out


def noise_flags(inputs: list[str], targets: list[str], params: dict[str, Any], seed: int = 0) -> list[bool]:
    """Which examples the noise filter would drop (True = likely noisy)."""
    mode = params.get("mode", "auto")
    if mode == "label" or (mode == "auto" and looks_like_labels(targets)):
        scores = label_scores(inputs, targets, int(params.get("folds", 5)), seed)
        cutoff = params.get("threshold", 0.2)
    else:
        scores = overlap_scores(inputs, targets)
        cutoff = params.get("min_overlap", 0.5)
    return _cap_drops(scores, cutoff, float(params.get("max_drop", MAX_DROP)))


def _cap_drops(scores: list[float], cutoff: float, max_drop: float) -> list[bool]:
    """Flag scores below ``cutoff``, but never more than ``max_drop`` of the data (the worst first):
    a scorer that does not fit the data (e.g. multi-label sets) must not wipe the data out."""
    flagged = [i for i, s in enumerate(scores) if s < cutoff]
    limit = int(max_drop * len(scores))
    if len(flagged) > limit:
        flagged = sorted(flagged, key=lambda i: scores[i])[:limit]
    keep = set(flagged)
    return [i in keep for i in range(len(scores))]
