"""A surrogate executor fitted on real trials: plan (+ parent checkpoint) -> curve, metric, cost.

Real DeepSpeed trials take minutes each on this machine; comparing five search strategies over
several seeds needs thousands. The surrogate stands in for ``run_plan`` with the same shape of
answer, fitted on real results of the built-in ``sentiment`` task (the journals of real runs and
``benchmarks/data/real_trials.jsonl``, made by ``benchmarks/real_trials.py``).

Model (fitted by ``fit``; RESULTS.md shows the fit, trial by trial):

* learning per epoch ``eff(lr, mode) = g_mode * exp(-((log10 lr - mu_mode) / sigma)^2 / 2)``;
* effective progress ``p = p_parent + epochs * eff`` -- a warm start continues from the parent's
  ``p`` and pays only its own epochs;
* metric ``m(p) = m_inf * (1 - exp(-p / tau)) - over * max(0, p - p_over)`` where
  ``m_inf = m_maj + (m_top + d_op... + d_template + d_wd + d_warm - m_maj) * kept(lr)``: each cleaning
  op, the template, weight decay and a warm start shift the ceiling; ``kept`` falls from 1 to 0 around
  ``lc_mode`` (above it the run collapses to the majority label, as lr >= 1e-2 did); LoRA has its own
  ceiling (on this random-init model it learns little);
* validation loss ``v(p) = v_x - v_s * m(p) + (v_0 - v_x) * exp(-p / tau_v)``, reported at rungs;
* noise: a training run draws ``eps ~ N(0, sigma_run)`` from (seed, plan, lineage), ``sigma_run`` being
  the fit's residual; a warm-started child keeps ``rho`` of its parent's draw; each evaluation adds
  ``N(0, sigma_eval)``; a lr at or above ``lr_div_mode`` diverges (none did in the real trials);
* cost (compute-seconds, one resource): ``start + epoch_s * keep(ops) * epochs_trained + eval_s`` per
  evaluation, where ``keep`` is the share of rows the data ops keep. ``CostModel.epochs_only()`` drops
  the start-up term (cost proportional to epochs trained, as on a warm GPU pool).

Example::

    model = SurrogateModel.load()                      # benchmarks/data/surrogate_fit.json
    ex = SurrogateExecutor(model, CostModel.from_model(model), seed=0)
    run = ex.simulate(plan, parent=None, fractions=(0.25, 0.5, 0.75, 1.0))
    run.metric, run.points[-1].val_loss, run.cost(1.0)
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from trex_ray.spec import Plan, TrainMode

DATA = Path(__file__).resolve().parent / "data"
FIT_FILE = DATA / "surrogate_fit.json"
REAL_TRIALS = DATA / "real_trials.jsonl"
OPS = ("dedup", "label_noise_filter", "length_filter")
TEMPLATES = ("plain", "instruct", "qa")


# --- the model ---------------------------------------------------------------------------------
@dataclass
class SurrogateModel:
    # learning speed: effective epochs per epoch
    mu_full: float = -3.2  # log10 of the most efficient full fine-tuning lr
    mu_lora: float = -1.8
    sigma: float = 0.8  # width in decades
    g_lora: float = 0.5  # LoRA's peak efficiency relative to full
    # collapse: above lc the run ends up predicting the majority label (seen at lr >= 1e-2)
    lc_full: float = -2.3  # log10 lr
    lc_lora: float = -1.3
    lc_width: float = 0.15
    m_maj: float = 0.3533  # accuracy of always answering the majority label (eval set)
    lr_div_full: float = 1.0  # a lr at or above this diverges (none was seen to: see fit)
    lr_div_lora: float = 1.0
    # metric
    m_top: float = 0.80
    m_top_lora: float = 0.35
    tau: float = 1.0
    over: float = 0.0
    p_over: float = 5.0
    d_dedup: float = 0.01
    d_label_noise_filter: float = 0.02
    d_length_filter: float = 0.0
    d_instruct: float = 0.0
    d_qa: float = 0.0
    d_wd: float = 0.0
    d_warm: float = 0.0  # a warm-started run ends higher than the same epochs trained in one run
    m_base: float = 0.0  # the untrained model
    # validation loss: v = v_x - v_s * m(p) + (v_0 - v_x) * exp(-p / tau_v)
    v_x: float = 0.68
    v_s: float = 0.38
    v_0: float = 2.5
    tau_v: float = 0.3
    # noise
    sigma_run: float = 0.05
    sigma_eval: float = 0.01
    rho: float = 0.7
    # cost (seconds on this machine's CPU, one worker)
    start_s: float = 50.0
    epoch_s: float = 15.0
    eval_s: float = 5.0
    keep_dedup: float = 0.97
    keep_label_noise_filter: float = 0.90
    keep_length_filter: float = 0.98
    fit_info: dict[str, Any] = field(default_factory=dict)

    # --- persistence ---
    @classmethod
    def load(cls, path: Path = FIT_FILE) -> SurrogateModel:
        if not path.is_file():
            return cls()
        raw = json.loads(path.read_text())
        return cls(**{k: v for k, v in raw.items() if k in cls.__dataclass_fields__})

    def save(self, path: Path = FIT_FILE) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=1, sort_keys=True) + "\n")

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
        top += {"instruct": self.d_instruct, "qa": self.d_qa}.get(plan.data.template, 0.0)
        top += self.d_wd if plan.train.weight_decay > 0 else 0.0
        top += self.d_warm if plan.train.warm_start else 0.0
        c = self.kept(plan.train.learning_rate, plan.train.mode)
        return self.m_maj + (top - self.m_maj) * c

    def metric_at(self, plan: Plan, p: float) -> float:
        if p <= 0:
            return self.m_base
        m = self.m_inf(plan) * (1 - math.exp(-p / self.tau)) - self.over * max(0.0, p - self.p_over)
        return max(self.m_base, m)

    def val_at(self, plan: Plan, p: float) -> float:
        if plan.train.mode is TrainMode.lora:  # LoRA on this random-init model: the loss barely moves
            p = 0.0
        m = self.metric_at(plan, p)
        return max(
            0.05, self.v_x - self.v_s * m + (self.v_0 - self.v_x) * math.exp(-max(0.0, p) / self.tau_v)
        )

    def keep(self, plan: Plan) -> float:
        out = 1.0
        for op in OPS:
            if plan.data.has(op):
                out *= getattr(self, f"keep_{op}")
        return out


@dataclass(frozen=True)
class CostModel:
    start_s: float
    epoch_s: float
    eval_s: float

    @classmethod
    def from_model(cls, model: SurrogateModel) -> CostModel:
        return cls(model.start_s, model.epoch_s, model.eval_s)

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

    def metric_at(self, fraction: float) -> float:
        """The metric of the checkpoint at ``fraction`` (PBT and Tune evaluate every epoch)."""
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
        fractions: Sequence[float] = (0.25, 0.5, 0.75, 1.0),
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


# --- fitting -----------------------------------------------------------------------------------
@dataclass
class Observation:
    source: str
    plan: Plan
    parent: str | None  # key of the parent observation (warm start)
    key: str
    metric: float | None
    curve: list[tuple[float, float]]  # (fraction, val_loss)
    compute_s: float
    train_s: float | None
    eval_s: float | None
    steps: int


def observations_from_tree(source: str, run_dir: str | Path) -> list[Observation]:
    from trex_ray.store import read_tree

    tree = read_tree(run_dir)
    out = []
    for n in tree:
        if n.result is None or n.plan.train.mode is TrainMode.none:
            continue
        timings = n.result.provenance.get("timings", {})
        curve = [
            (p.fraction, p.val_loss)
            for p in (n.result.curve or n.progress)
            if p.val_loss is not None and math.isfinite(p.val_loss)
        ]
        out.append(
            Observation(
                source,
                n.plan,
                f"{source}:{n.parent}" if n.plan.train.warm_start else None,
                f"{source}:{n.id}",
                n.metric,
                curve,
                n.result.cost.compute_seconds,
                timings.get("loop_train_s"),
                timings.get("eval_s"),
                n.result.cost.train_steps,
            )
        )
    return out


def observations_from_trials(path: Path = REAL_TRIALS) -> list[Observation]:
    from trex_ray.spec import Result

    out: list[Observation] = []
    if not path.is_file():
        return out
    latest: dict[str, dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        if rec["result"]["outcome"] == "failed" and rec["result"].get("failure") != "diverged":
            continue  # a crash (e.g. a broken evaluation backend) says nothing about training
        latest[rec["name"]] = rec
    for rec in latest.values():
        plan, result = Plan.model_validate(rec["plan"]), Result.model_validate(rec["result"])
        timings = result.provenance.get("timings", {})
        curve = [
            (p.fraction, p.val_loss)
            for p in result.curve
            if p.val_loss is not None and math.isfinite(p.val_loss)
        ]
        parent = f"trials:{rec['parent']}" if rec.get("parent") else None
        metric = result.metric if result.ok else None
        if result.failure is not None and result.failure.value == "diverged":
            metric = -1.0  # marks divergence for the fit
        out.append(
            Observation(
                "trials",
                plan,
                parent,
                f"trials:{rec['name']}",
                metric,
                curve,
                result.cost.compute_seconds,
                timings.get("loop_train_s"),
                timings.get("eval_s"),
                result.cost.train_steps,
            )
        )
    return out


FREE = (
    "mu_full",
    "sigma",
    "m_top",
    "tau",
    "lc_full",
    "over",
    "p_over",
    "d_dedup",
    "d_label_noise_filter",
    "d_length_filter",
    "d_instruct",
    "d_wd",
    "d_warm",
    "mu_lora",
    "g_lora",
    "m_top_lora",
    "lc_lora",
)
VAL_FREE = ("v_x", "v_s", "v_0", "tau_v")
SHRINK = {
    "d_dedup": 0.05,
    "d_label_noise_filter": 0.05,
    "d_length_filter": 0.05,
    "d_instruct": 0.05,
    "d_wd": 0.05,
    "d_warm": 0.05,
    "over": 0.05,
    "g_lora": 0.5,
    "m_top_lora": 0.3,
    "mu_lora": 1.0,
    "lc_lora": 1.0,
}
PRIOR = {"mu_lora": -1.8, "g_lora": 0.5, "m_top_lora": 0.35, "lc_lora": -1.3}
BOUNDS = {
    "sigma": (0.2, 3.0),
    "tau": (0.05, 10.0),
    "p_over": (1.0, 20.0),
    "over": (0.0, 0.5),
    "g_lora": (0.0, 2.0),
    "tau_v": (0.02, 10.0),
    "m_top": (0.3, 1.0),
    "m_top_lora": (0.0, 1.0),
    "v_s": (0.0, 3.0),
    "v_0": (0.3, 10.0),
}


def _p_of(model: SurrogateModel, obs: Observation, by_key: dict[str, Observation]) -> float:
    p = 0.0
    if obs.parent and obs.parent in by_key:
        p = _p_of(model, by_key[obs.parent], by_key)
    return p + obs.plan.train.epochs * model.eff(obs.plan.train.learning_rate, obs.plan.train.mode)


def _residuals(
    model: SurrogateModel, data: list[Observation], offsets: dict[str, float]
) -> tuple[list, list]:
    by_key = {o.key: o for o in data}
    metric_res, val_res = [], []
    for o in data:
        p = _p_of(model, o, by_key)
        if o.metric is not None and o.metric >= 0:
            metric_res.append(model.metric_at(o.plan, p) + offsets.get(o.source, 0.0) - o.metric)
        p0 = p - o.plan.train.epochs * model.eff(o.plan.train.learning_rate, o.plan.train.mode)
        if o.plan.train.mode is TrainMode.lora:
            continue  # LoRA's val loss stays near its start here (val_at): not a fit target
        for f, v in o.curve:
            val_res.append(math.log(model.val_at(o.plan, p0 + (p - p0) * f)) - math.log(v))
    return metric_res, val_res


def _objective(
    names: Sequence[str], base: SurrogateModel, data: list[Observation], sources: list[str], val: bool = False
) -> Any:
    def f(x: Sequence[float]) -> float:
        values = dict(zip(names, x, strict=False))
        for k, (lo, hi) in BOUNDS.items():
            if k in values and not lo <= values[k] <= hi:
                return 1e9
        offsets = {s: values.get(f"offset:{s}", 0.0) for s in sources}
        model = replace(base, **{k: v for k, v in values.items() if not k.startswith("offset:")})
        mres, vres = _residuals(model, data, offsets)
        loss = sum(r * r for r in (vres if val else mres))
        loss += sum(
            ((values[k] - PRIOR.get(k, 0.0)) / s) ** 2 * 0.01 for k, s in SHRINK.items() if k in values
        )
        loss += sum(v * v * 0.1 for k, v in values.items() if k.startswith("offset:"))
        return loss

    return f


def nelder_mead(
    f: Any, x0: Sequence[float], step: float = 0.2, iters: int = 4000, tol: float = 1e-10
) -> list[float]:
    """A plain Nelder-Mead (no scipy here)."""
    n = len(x0)
    simplex = [list(x0)] + [
        [x + (step * (abs(x) or 1.0) if i == j else 0.0) for j, x in enumerate(x0)] for i in range(n)
    ]
    scores = [f(x) for x in simplex]
    for _ in range(iters):
        order = sorted(range(n + 1), key=lambda i: scores[i])
        simplex, scores = [simplex[i] for i in order], [scores[i] for i in order]
        if abs(scores[-1] - scores[0]) < tol:
            break
        centroid = [sum(x[j] for x in simplex[:-1]) / n for j in range(n)]
        worst = simplex[-1]
        refl = [c + (c - w) for c, w in zip(centroid, worst, strict=True)]
        fr = f(refl)
        if fr < scores[0]:
            exp = [c + 2 * (c - w) for c, w in zip(centroid, worst, strict=True)]
            fe = f(exp)
            simplex[-1], scores[-1] = (exp, fe) if fe < fr else (refl, fr)
        elif fr < scores[-2]:
            simplex[-1], scores[-1] = refl, fr
        else:
            con = [c + 0.5 * (w - c) for c, w in zip(centroid, worst, strict=True)]
            fc = f(con)
            if fc < scores[-1]:
                simplex[-1], scores[-1] = con, fc
            else:
                best = simplex[0]
                simplex = [best] + [
                    [b + 0.5 * (x - b) for b, x in zip(best, xs, strict=True)] for xs in simplex[1:]
                ]
                scores = [scores[0]] + [f(x) for x in simplex[1:]]
    return simplex[min(range(n + 1), key=lambda i: scores[i])]


def _minimize(f: Any, x0: list[float], restarts: int = 6) -> list[float]:
    x = x0
    for _ in range(restarts):
        x = nelder_mead(f, x)
    return x


def fit(data: list[Observation], base: SurrogateModel | None = None) -> SurrogateModel:
    """Least squares (with weak priors on sparse terms) of the metric and val-loss terms, then costs."""
    model = base or SurrogateModel()
    sources = sorted({o.source for o in data})
    offset_names = [f"offset:{s}" for s in sources[1:]]  # the first source is the reference
    names = [*FREE, *offset_names]
    x = _minimize(
        _objective(names, model, data, sources),
        [getattr(model, k) if not k.startswith("offset:") else 0.0 for k in names],
    )
    values = dict(zip(names, x, strict=True))
    offsets = {s: values.get(f"offset:{s}", 0.0) for s in sources}
    model = replace(model, **{k: v for k, v in values.items() if not k.startswith("offset:")})
    xv = _minimize(
        _objective(VAL_FREE, model, data, sources, val=True), [getattr(model, k) for k in VAL_FREE]
    )
    model = replace(model, **dict(zip(VAL_FREE, xv, strict=True)))
    model = _fit_divergence(model, data)
    model = _fit_costs(model, data)
    mres, vres = _residuals(model, data, offsets)
    rms = math.sqrt(sum(r * r for r in mres) / max(1, len(mres)))
    model.sigma_run = round(rms, 4)
    model.fit_info = {
        "n_metric": len(mres),
        "n_val_points": len(vres),
        "metric_rmse": round(rms, 4),
        "val_log_rmse": round(math.sqrt(sum(r * r for r in vres) / max(1, len(vres))), 4),
        "offsets": {k: round(v, 4) for k, v in offsets.items()},
        "sources": {s: sum(o.source == s for o in data) for s in sources},
        "table": _fit_table(model, data, offsets),
    }
    return model


def _fit_divergence(model: SurrogateModel, data: list[Observation]) -> SurrogateModel:
    """The divergence threshold: halfway (in log) between the highest lr that trained and the lowest that
    diverged, per mode; without a divergence seen, the prior stays."""
    out = model
    for mode, attr in ((TrainMode.full, "lr_div_full"), (TrainMode.lora, "lr_div_lora")):
        ok = [
            o.plan.train.learning_rate
            for o in data
            if o.plan.train.mode is mode and (o.metric or 0) >= 0 and o.metric is not None
        ]
        bad = [o.plan.train.learning_rate for o in data if o.plan.train.mode is mode and o.metric == -1.0]
        if bad:
            lo = max([lr for lr in ok if lr < min(bad)], default=min(bad) / 2)
            out = replace(out, **{attr: math.sqrt(lo * min(bad))})
    return out


def _fit_costs(model: SurrogateModel, data: list[Observation]) -> SurrogateModel:
    """epoch_s: median training-loop seconds per full-data epoch; eval_s: median evaluation seconds;
    start_s: median of what is left of a finished trial's compute (launch, load, data) in the runs made
    through Ray Train (the trex path; real_trials.py trains in-process, without that start-up)."""
    per_epoch, evals, rest = [], [], []
    for o in data:
        if o.source == "trials":
            if o.train_s and o.plan.train.epochs:
                per_epoch.append(o.train_s / (o.plan.train.epochs * model.keep(o.plan)))
            if o.eval_s:
                evals.append(o.eval_s)
            continue
        if o.train_s and o.plan.train.epochs:
            per_epoch.append(o.train_s / (o.plan.train.epochs * model.keep(o.plan)))
        if o.eval_s:
            evals.append(o.eval_s)
        if o.train_s and o.eval_s and o.metric is not None and o.metric >= 0:
            rest.append(o.compute_s - o.train_s - o.eval_s)
    med = lambda xs, d: sorted(xs)[len(xs) // 2] if xs else d  # noqa: E731
    return replace(
        model,
        epoch_s=round(med(per_epoch, model.epoch_s), 2),
        eval_s=round(med(evals, model.eval_s), 2),
        start_s=round(max(0.0, med(rest, model.start_s)), 2),
    )


def _fit_table(
    model: SurrogateModel, data: list[Observation], offsets: dict[str, float]
) -> list[dict[str, Any]]:
    by_key = {o.key: o for o in data}
    rows = []
    for o in data:
        t = o.plan.train
        p = _p_of(model, o, by_key)
        pred = (
            None
            if model.diverges(t.learning_rate, t.mode)
            else model.metric_at(o.plan, p) + offsets.get(o.source, 0)
        )
        rows.append(
            {
                "key": o.key,
                "mode": t.mode.value,
                "lr": t.learning_rate,
                "epochs": t.epochs,
                "warm": t.warm_start,
                "ops": [op.op for op in o.plan.data.ops],
                "template": o.plan.data.template,
                "real": o.metric,
                "pred": None if pred is None else round(pred, 3),
            }
        )
    return rows


def default_data() -> list[Observation]:
    """The real trials we fit on: /tmp/demo1/run, /tmp/explorer-demo, runs/*/ of the sentiment task, and
    benchmarks/data/real_trials.jsonl."""
    data: list[Observation] = []
    candidates = [("demo1", Path("/tmp/demo1/run")), ("explorer", Path("/tmp/explorer-demo"))]
    candidates += [(p.parent.name, p.parent) for p in Path("runs").glob("*/journal.jsonl")]
    for source, folder in candidates:
        if (folder / "journal.jsonl").is_file():
            obs = observations_from_tree(source, folder)
            data += [o for o in obs if _is_sentiment_2000(folder)]
    return data + observations_from_trials()


def _is_sentiment_2000(folder: Path) -> bool:
    from trex_ray.store import read_tree

    tree = read_tree(folder)
    task, profile = tree.meta.get("task", {}), tree.meta.get("profile", {})
    return task.get("name") == "sentiment" and profile.get("train_examples") == 2000


# --- helpers -----------------------------------------------------------------------------------
def _hash(*parts: Any) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:16]


def _gauss(seed: int, key: str, what: str) -> float:
    return random.Random(_hash(seed, key, what)).gauss(0.0, 1.0)


def _clip(x: float) -> float:
    return min(1.0, max(0.0, x))


def describe(model: SurrogateModel) -> str:
    rows = model.fit_info.get("table", [])
    lines = [
        "| trial | mode | lr | epochs | warm | ops | template | real | surrogate |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        real = "diverged" if r["real"] == -1.0 else ("stopped" if r["real"] is None else f"{r['real']:.3f}")
        pred = "diverges" if r["pred"] is None else f"{max(0.0, r['pred']):.3f}"
        lines.append(
            f"| {r['key']} | {r['mode']} | {r['lr']:g} | {r['epochs']:g} | {'yes' if r['warm'] else ''} | "
            f"{' '.join(r['ops'])} | {r['template']} | {real} | {pred} |"
        )
    return "\n".join(lines)


def main(argv: Iterable[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description="Fit the surrogate on real trials and save it.")
    ap.add_argument("--out", type=Path, default=FIT_FILE)
    args = ap.parse_args(list(argv) if argv is not None else None)
    data = default_data()
    model = fit(data)
    model.save(args.out)
    print(describe(model))
    info = {k: v for k, v in model.fit_info.items() if k != "table"}
    params = {
        k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(model).items() if k != "fit_info"
    }
    print(json.dumps({"fit": info, "params": params}))


if __name__ == "__main__":
    main()
