"""A model-based sampler for the learning rate: a small Gaussian process over the tree's results.

The drafts try each training mode at a rate set by rules about the model (``heuristic.draft_rates``);
where those rules are off for a task, the results say so. This sampler reads the metrics of runs
trained from scratch, places each at ``x = log10(lr / draft rate of its mode)`` (so that a full
fine-tune and a LoRA run at the same distance from their rules' rates share what they teach: the
rules put LoRA's rate at a fixed multiple of full fine-tuning's), fits a Gaussian process with a
correlation ``MODE_CORRELATION`` between the modes, and proposes, for each mode, the rate of highest
expected improvement over the best prediction: away from rates already tried in that mode, and
within a trust region (``TRUST``) of the rates tried, so that it steps out from what it knows rather
than jumping to the edge of its range, where the uncertainty alone is largest.

Example::

    for s in suggest_rates(points, {"full": 3e-4, "lora": 3e-3}):
        s.mode, s.lr, s.gain
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LENGTH = 0.5  # decades: how far a result informs its neighbours (0.25, 0.35, 0.7 measured worse)
MODE_CORRELATION = 0.8  # how much a full fine-tune's result says of a LoRA run at the same relative rate
NOISE = 0.05  # a run's metric noise (one standard deviation): seeds and the validation set's size
GRID = tuple(round(-1.5 + 0.1 * i, 2) for i in range(20))  # x from -1.5 to +0.4 decades
# decades: proposals stay this close to a rate tried (in either mode), a trust region (2 and 3 x: worse)
TRUST = 1.5 * LENGTH
MIN_GAP = 0.15  # decades: a rate this close to one tried in its mode is not proposed again


@dataclass(frozen=True)
class RatePoint:
    mode: str
    lr: float
    metric: float


@dataclass(frozen=True)
class RateSuggestion:
    mode: str
    lr: float
    gain: float  # expected improvement over the best prediction
    mean: float  # the model's prediction of its metric


def suggest_rates(
    points: list[RatePoint], rule_rates: dict[str, float], limit: int = 2
) -> list[RateSuggestion]:
    """Up to ``limit`` rates (at most one a mode), the highest expected improvement first; [] without
    two results to fit. ``rule_rates``: each mode's draft rate (the origin of its ``x``)."""
    pts = [p for p in points if p.mode in rule_rates and p.lr > 0 and math.isfinite(p.metric)]
    if len(pts) < 2:
        return []
    xs = [(p.mode, math.log10(p.lr / rule_rates[p.mode])) for p in pts]
    ys = [p.metric for p in pts]
    mean0 = sum(ys) / len(ys)
    scale = max(NOISE**2, sum((y - mean0) ** 2 for y in ys) / len(ys))
    gram = [[scale * _k(a, b) + (NOISE**2 if i == j else 0.0) for j, b in enumerate(xs)]
            for i, a in enumerate(xs)]
    chol = _cholesky(gram)
    alpha = _solve(chol, [y - mean0 for y in ys])
    best = max(_predict(chol, alpha, xs, scale, mean0, x)[0] for x in xs)
    out = []
    for mode, rate in rule_rates.items():
        tried = [x for m, x in xs if m == mode]
        scored = []
        for g in GRID:
            if any(abs(g - t) < MIN_GAP for t in tried) or all(abs(g - x) > TRUST + 1e-9 for _, x in xs):
                continue
            mu, sd = _predict(chol, alpha, xs, scale, mean0, (mode, g))
            scored.append((_expected_improvement(mu, sd, best), mu, g))
        if scored:
            gain, mu, g = max(scored)
            out.append(RateSuggestion(mode, float(f"{rate * 10**g:.2g}"), gain, mu))
    return sorted(out, key=lambda s: -s.gain)[:limit]


def _k(a: tuple[str, float], b: tuple[str, float]) -> float:
    same = 1.0 if a[0] == b[0] else MODE_CORRELATION
    return same * math.exp(-((a[1] - b[1]) ** 2) / (2 * LENGTH**2))


def _predict(chol: list[list[float]], alpha: list[float], xs: list[tuple[str, float]], scale: float,
             mean0: float, x: tuple[str, float]) -> tuple[float, float]:
    kx = [scale * _k(x, p) for p in xs]
    mu = mean0 + sum(k * a for k, a in zip(kx, alpha, strict=True))
    v = _forward(chol, kx)
    var = max(1e-12, scale - sum(t * t for t in v))
    return mu, math.sqrt(var)


def _expected_improvement(mu: float, sd: float, best: float) -> float:
    z = (mu - best) / sd
    return (mu - best) * _phi_cdf(z) + sd * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def _phi_cdf(z: float) -> float:
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def _cholesky(a: list[list[float]]) -> list[list[float]]:
    n = len(a)
    low = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1):
            s = a[i][j] - sum(low[i][k] * low[j][k] for k in range(j))
            low[i][j] = math.sqrt(max(s, 1e-12)) if i == j else s / low[j][j]
    return low


def _forward(low: list[list[float]], b: list[float]) -> list[float]:
    y: list[float] = []
    for i, row in enumerate(low):
        y.append((b[i] - sum(row[k] * y[k] for k in range(i))) / row[i])
    return y


def _solve(low: list[list[float]], b: list[float]) -> list[float]:
    """``(L L^T)^-1 b``."""
    y = _forward(low, b)
    n = len(y)
    x = [0.0] * n
    for i in reversed(range(n)):
        x[i] = (y[i] - sum(low[k][i] * x[k] for k in range(i + 1, n))) / low[i][i]
    return x
