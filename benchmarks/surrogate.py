"""A surrogate executor fitted on real trials: plan (+ parent checkpoint) -> curve, metric, cost.

Real trials take minutes each on this machine; comparing search strategies over many seeds needs
thousands. The surrogate stands in for ``run_plan`` with the same shape of answer, fitted
(``surrogate_fit.py``) on the real trials of ``benchmarks/data/real_trials.jsonl`` only — the embedded
pretrained ``builtin:smollm2-135m`` on the built-in ``tweet_sentiment`` task, made by
``benchmarks/real_trials.py`` over the shared search space of ``space.py``. RESULTS.md shows the fit,
trial by trial. ``python benchmarks/surrogate.py`` rebuilds ``benchmarks/data/surrogate_fit.json`` from
that committed file; ``--check`` exits 1 when the committed fit differs from the rebuild.

Model:

* learning per epoch ``eff(lr, mode) = g_mode * exp(-((log10 lr - mu_mode) / sigma)^2 / 2)``;
* effective progress ``p = p_parent + epochs * eff`` -- a warm start continues from the parent's
  ``p`` and pays only its own epochs;
* metric ``m(p) = m_base + (m_inf - m_base) * (1 - exp(-p / tau)) - over * max(0, p - p_over)``: the
  pretrained base scores ``m_base``; ``m_inf = m_maj + (m_top + d_op... + d_template + d_wd + d_warm -
  m_maj) * kept(lr)``: each cleaning op, a prompt template other than the model's chat template, weight
  decay and a warm start shift the ceiling; ``kept`` falls from 1 to 0 around ``lc_mode`` (above it the run
  collapses to answering one label, ``m_maj``); LoRA has its own ceiling;
* validation loss ``v(p) = v_x - v_s * m(p) + (v_0 - v_x) * exp(-p / tau_v)``, reported at rungs;
* noise: a training run draws ``eps ~ N(0, sigma_run)`` from (seed, plan, lineage), ``sigma_run`` being
  the fit's residual; a warm-started child keeps ``rho`` of its parent's draw; each evaluation adds
  ``N(0, sigma_eval)``; a lr at or above ``lr_div_mode`` diverges;
* cost (compute-seconds, one resource): ``start + launch + epoch_s * keep(ops) * epochs_trained +
  eval_s`` per metric evaluation; ``start`` is what an in-process trial spends besides training and
  scoring (model load, data), ``launch`` the Ray Train start of a trial (measured by ``trial_start.py``);
  ``keep`` is the share of rows the data ops keep. ``CostModel.epochs_only()`` drops both start terms
  (cost proportional to epochs trained, as on a warm pool).

Example::

    model = SurrogateModel.load()                      # benchmarks/data/surrogate_fit.json
    ex = SurrogateExecutor(model, CostModel.from_model(model), seed=0)
    run = ex.simulate(plan, parent=None, fractions=(0.5, 1.0))
    run.metric, run.points[-1].val_loss, run.cost(1.0)
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:  # run as a script from a clean clone
    sys.path.insert(0, _ROOT)

from trex_ray.spec import Plan, TrainMode  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
FIT_FILE = DATA / "surrogate_fit.json"
REAL_TRIALS = DATA / "real_trials.jsonl"
OPS = ("dedup", "label_noise_filter", "length_filter")
TEMPLATES = ("plain", "instruct", "qa")  # besides the model's own chat template ("auto")


# --- the model ---------------------------------------------------------------------------------
@dataclass
class SurrogateModel:
    # learning speed: effective epochs per epoch
    mu_full: float = -3.5  # log10 of the most efficient full fine-tuning lr
    mu_lora: float = -3.0
    sigma: float = 0.7  # width in decades
    g_lora: float = 0.5  # LoRA's peak efficiency relative to full
    # collapse: above lc the run ends up answering one label
    lc_full: float = -2.3  # log10 lr
    lc_lora: float = -1.5
    lc_width: float = 0.15
    m_maj: float = 0.35  # accuracy of answering one label (validation set)
    lr_div_full: float = 1.0  # a lr at or above this diverges (see fit)
    lr_div_lora: float = 1.0
    # metric
    m_base: float = 0.44  # the pretrained base model, not trained
    m_top: float = 0.65
    m_top_lora: float = 0.6
    tau: float = 1.0
    over: float = 0.0
    p_over: float = 5.0
    d_dedup: float = 0.0
    d_label_noise_filter: float = 0.0
    d_length_filter: float = 0.0
    d_plain: float = 0.0
    d_instruct: float = 0.0
    d_qa: float = 0.0
    d_wd: float = 0.0
    d_warm: float = 0.0  # a warm-started run ends higher than the same epochs trained in one run
    # validation loss: v = v_x - v_s * m(p) + (v_0 - v_x) * exp(-p / tau_v)
    v_x: float = 0.5
    v_s: float = 0.5
    v_0: float = 1.5
    tau_v: float = 0.5
    # noise
    sigma_run: float = 0.05
    sigma_eval: float = 0.01
    rho: float = 0.7
    # cost (seconds on this machine's CPU, one worker)
    start_s: float = 20.0
    launch_s: float = 18.0
    epoch_s: float = 60.0
    eval_s: float = 30.0
    keep_dedup: float = 0.97
    keep_label_noise_filter: float = 0.90
    keep_length_filter: float = 0.98
    fit_info: dict[str, Any] = field(default_factory=dict)

    # --- persistence ---
    @classmethod
    def load(cls, path: Path = FIT_FILE) -> SurrogateModel:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no fitted surrogate; run python benchmarks/surrogate.py")
        raw = json.loads(path.read_text())
        return cls(**{k: v for k, v in raw.items() if k in cls.__dataclass_fields__})

    def to_json(self) -> str:
        return json.dumps(_rounded(asdict(self)), indent=1, sort_keys=True) + "\n"

    def save(self, path: Path = FIT_FILE) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json())

    # --- terms ---
    def eff(self, lr: float, mode: TrainMode) -> float:
        if mode is TrainMode.none:
            return 0.0
        mu, gain = (self.mu_lora, self.g_lora) if mode is TrainMode.lora else (self.mu_full, 1.0)
        z = (math.log10(lr) - mu) / self.sigma
        return gain * math.exp(-0.5 * z * z)

    def diverges(self, lr: float, mode: TrainMode) -> bool:
        limit = self.lr_div_lora if mode is TrainMode.lora else self.lr_div_full
        return mode is not TrainMode.none and lr >= limit

    def kept(self, lr: float, mode: TrainMode) -> float:
        """1 below the collapse threshold, 0 well above it."""
        lc = self.lc_lora if mode is TrainMode.lora else self.lc_full
        z = (math.log10(lr) - lc) / self.lc_width
        return 1.0 / (1.0 + math.exp(min(50.0, z)))

    def m_inf(self, plan: Plan) -> float:
        top = self.m_top_lora if plan.train.mode is TrainMode.lora else self.m_top
        top += sum(getattr(self, f"d_{op}") for op in OPS if plan.data.has(op))
        top += getattr(self, f"d_{plan.data.template}", 0.0) if plan.data.template in TEMPLATES else 0.0
        top += self.d_wd if plan.train.weight_decay > 0 else 0.0
        top += self.d_warm if plan.train.warm_start else 0.0
        c = self.kept(plan.train.learning_rate, plan.train.mode)
        return self.m_maj + (top - self.m_maj) * c

    def metric_at(self, plan: Plan, p: float) -> float:
        if p <= 0:
            return self.m_base
        gain = (self.m_inf(plan) - self.m_base) * (1 - math.exp(-p / self.tau))
        return self.m_base + gain - self.over * max(0.0, p - self.p_over)

    def val_at(self, plan: Plan, p: float) -> float:
        m = self.metric_at(plan, p)
        start = (self.v_0 - self.v_x) * math.exp(-max(0.0, p) / self.tau_v)
        return max(0.05, self.v_x - self.v_s * m + start)

    def keep(self, plan: Plan) -> float:
        out = 1.0
        for op in OPS:
            if plan.data.has(op):
                out *= getattr(self, f"keep_{op}")
        return out


@dataclass(frozen=True)
class CostModel:
    start_s: float  # a trial's start: in-process start-up + the Ray Train launch
    epoch_s: float
    eval_s: float

    @classmethod
    def from_model(cls, model: SurrogateModel) -> CostModel:
        return cls(model.start_s + model.launch_s, model.epoch_s, model.eval_s)

    def epochs_only(self) -> CostModel:
        return replace(self, start_s=0.0)


# --- executing a plan --------------------------------------------------------------------------
@dataclass(frozen=True)
class State:
    """What a checkpoint carries: its effective progress and its noise draw (for warm starts)."""

    p: float = 0.0
    eps: float = 0.0
    key: str = "base"


@dataclass(frozen=True)
class Point:
    fraction: float
    epochs: float  # epochs trained in this run at this point
    val_loss: float
    train_loss: float


@dataclass
class Simulation:
    """One trial's whole trajectory; the caller replays it and may stop it at a point."""

    plan: Plan
    points: list[Point]
    metric: float | None  # at the end; None when it diverged
    diverged_at: float | None
    end_state: State
    epochs: float
    keep: float
    costs: CostModel
    model: SurrogateModel
    start: State
    seed: int

    def train_seconds(self, fraction: float) -> float:
        return self.costs.epoch_s * self.keep * self.epochs * fraction

    def cost(self, fraction: float = 1.0, evals: int = 1) -> float:
        """Compute-seconds of running this trial to ``fraction`` with ``evals`` metric evaluations."""
        return self.costs.start_s + self.train_seconds(fraction) + self.costs.eval_s * evals

    def state_at(self, fraction: float) -> State:
        p = self.start.p + self.epochs * fraction * self.model.eff(
            self.plan.train.learning_rate, self.plan.train.mode
        )
        return replace(self.end_state, p=p)

    def true_metric_at(self, fraction: float) -> float:
        """The checkpoint's noise-free metric (a large test set's view)."""
        return _clip(self.model.metric_at(self.plan, self.state_at(fraction).p))

    def metric_at(self, fraction: float) -> float:
        """The metric of the checkpoint at ``fraction`` as one evaluation measures it."""
        state = self.state_at(fraction)
        jitter = _gauss(self.seed, state.key, f"eval{fraction:.4f}") * self.model.sigma_eval
        return _clip(self.model.metric_at(self.plan, state.p) + state.eps + jitter)


class SurrogateExecutor:
    def __init__(self, model: SurrogateModel, costs: CostModel, seed: int) -> None:
        self.model, self.costs, self.seed = model, costs, seed

    def simulate(
        self,
        plan: Plan,
        parent: State | None = None,
        fractions: Sequence[float] = (0.5, 1.0),
        same_run: bool = False,
    ) -> Simulation:
        """``parent``: the checkpoint a warm start continues from; ``same_run``: the parent's own run goes
        on (PBT between perturbations), so its noise draw is kept rather than partly redrawn."""
        m, t = self.model, plan.train
        start = parent if (parent is not None and t.warm_start) else State()
        key = _hash(start.key, plan.hash, self.seed)
        fresh = _gauss(self.seed, key, "run") * m.sigma_run
        if start.key == "base":
            eps = fresh
        elif same_run:
            eps = start.eps
        else:
            eps = m.rho * start.eps + math.sqrt(1 - m.rho**2) * fresh
        epochs = 0.0 if t.mode is TrainMode.none else t.epochs
        eff = m.eff(t.learning_rate, t.mode)
        diverged_at = 0.5 if m.diverges(t.learning_rate, t.mode) else None
        points = []
        for f in fractions if epochs else ():
            if diverged_at is not None and f > diverged_at:
                break
            p = start.p + epochs * f * eff
            val = m.val_at(plan, p) * (1 + 0.01 * _gauss(self.seed, key, f"val{f:.3f}"))
            if diverged_at is not None and f >= diverged_at:
                val = float("nan")
            points.append(Point(f, epochs * f, val, val * 1.02 + 0.4 * math.exp(-3 * epochs * f)))
        end = State(p=start.p + epochs * eff, eps=eps, key=key)
        sim = Simulation(
            plan, points, None, diverged_at, end, epochs, m.keep(plan), self.costs, m, start, self.seed
        )
        if diverged_at is None:
            sim.metric = sim.metric_at(1.0)
        return sim


# --- helpers -----------------------------------------------------------------------------------
def _hash(*parts: Any) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:16]


def _gauss(seed: int, key: str, what: str) -> float:
    return random.Random(_hash(seed, key, what)).gauss(0.0, 1.0)


def _clip(x: float) -> float:
    return min(1.0, max(0.0, x))


def _rounded(value: Any) -> Any:
    """Floats to 6 significant digits: a rebuild on another machine compares equal."""
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def main(argv: Iterable[str] | None = None) -> int:
    import argparse

    from surrogate_fit import describe, differences, fit, observations_from_trials

    ap = argparse.ArgumentParser(description="Fit the surrogate on the committed real trials and save it.")
    ap.add_argument("--out", type=Path, default=FIT_FILE)
    ap.add_argument("--trials", type=Path, default=REAL_TRIALS)
    ap.add_argument("--check", action="store_true", help="exit 1 when --out differs from the rebuild")
    args = ap.parse_args(list(argv) if argv is not None else None)
    model = fit(observations_from_trials(args.trials))
    if args.check:
        diffs = differences(json.loads(args.out.read_text()), json.loads(model.to_json()))
        for line in diffs:
            print(line)
        print(f"{args.out}: {'differs from' if diffs else 'matches'} the rebuild from {args.trials}")
        return 1 if diffs else 0
    model.save(args.out)
    print(describe(model))
    info = {k: v for k, v in model.fit_info.items() if k != "table"}
    params = {k: v for k, v in _rounded(asdict(model)).items() if k != "fit_info"}
    print(json.dumps({"fit": info, "params": params}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
