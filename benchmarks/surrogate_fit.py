"""Fitting the surrogate (``surrogate.py``) on the committed real trials, and checking a committed fit.

``observations_from_trials`` reads ``benchmarks/data/real_trials.jsonl`` (``real_trials.py``: header
lines with command, machine and date, then one trial a line); ``fit`` is least squares with weak
priors on the sparse terms (a plain Nelder-Mead: no scipy here), then the costs from the trials' own
timings and the Ray Train launch that ``trial_start.py`` measured; ``differences`` compares a
committed fit with a rebuild; ``describe`` is the trial-by-trial table RESULTS.md shows.

    model = fit(observations_from_trials())
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from surrogate import DATA, REAL_TRIALS, SurrogateModel

from trex_ray.spec import Plan, Result, TrainMode

# The Ray Train launch of one trial (no-op loop: actors, worker group, imports, teardown), measured by
# benchmarks/trial_start.py; the median over its runs is added to every trial's start in --cost fitted.
TRIAL_START = DATA.parent / "results" / "trial_start-h200-cpu.json"
VAL_ROWS = 128  # the validation rows of tweet_sentiment (ftbench/registry.py real_task)


@dataclass
class Observation:
    source: str
    plan: Plan
    parent: str | None  # key of the parent observation (warm start)
    key: str
    metric: float | None  # -1.0: diverged
    curve: list[tuple[float, float]]  # (fraction, val_loss)
    compute_s: float
    train_s: float | None  # the training loop (with its validation-loss reports)
    eval_s: float | None  # scoring the validation rows
    steps: int
    train_cpu_s: float | None = None  # the training loop's CPU seconds (one thread)


def observations_from_trials(path: Path = REAL_TRIALS) -> list[Observation]:
    """The trials of the committed file; the last record of a name wins; crashes are left out."""
    latest: dict[str, dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        if "header" in rec:
            continue
        if rec["result"]["outcome"] == "failed" and rec["result"].get("failure") != "diverged":
            continue  # a crash says nothing about training
        latest[rec["name"]] = rec
    out = []
    for rec in latest.values():
        plan, result = Plan.model_validate(rec["plan"]), Result.model_validate(rec["result"])
        timings = result.provenance.get("timings", {})
        curve = [(p.fraction, p.val_loss) for p in result.curve
                 if p.val_loss is not None and math.isfinite(p.val_loss)]
        metric = result.metric if result.ok else None
        if result.failure is not None and result.failure.value == "diverged":
            metric = -1.0
        out.append(Observation(
            "trials", plan, f"trials:{rec['parent']}" if rec.get("parent") else None, f"trials:{rec['name']}",
            metric, curve, result.cost.compute_seconds, timings.get("loop_train_s"), timings.get("eval_s"),
            result.cost.train_steps, timings.get("loop_train_cpu_s")))
    return out


FREE = ("mu_full", "sigma", "m_top", "tau", "lc_full", "m_base", "m_maj", "over", "p_over", "d_dedup",
        "d_label_noise_filter", "d_length_filter", "d_plain", "d_instruct", "d_qa", "d_wd", "d_warm",
        "mu_lora", "g_lora", "m_top_lora", "lc_lora")
VAL_FREE = ("v_x", "v_s", "v_0", "tau_v")
# weak priors (value, scale): a term few trials inform stays near its prior. The learning-rate centres sit
# mid-space in log (space.py: 1e-5..1e-2, -3.5), the ceilings at "fine-tuning helps a little", never at a
# value read off the planner's drafts.
PRIOR = {"mu_full": (-3.5, 1.5), "m_top": (0.55, 0.2), "tau": (1.0, 2.0),
         "d_dedup": (0.0, 0.05), "d_label_noise_filter": (0.0, 0.05), "d_length_filter": (0.0, 0.05),
         "d_plain": (0.0, 0.05), "d_instruct": (0.0, 0.05), "d_qa": (0.0, 0.05), "d_wd": (0.0, 0.05),
         "d_warm": (0.0, 0.05), "over": (0.0, 0.05), "g_lora": (0.5, 0.5), "m_top_lora": (0.6, 0.3),
         "mu_lora": (-3.0, 1.5), "lc_lora": (-1.5, 1.0), "lc_full": (-2.3, 1.0), "m_maj": (0.35, 0.1),
         "m_base": (0.44, 0.1)}
BOUNDS = {"sigma": (0.2, 3.0), "tau": (0.05, 10.0), "p_over": (0.5, 20.0), "over": (0.0, 0.5),
          "g_lora": (0.0, 2.0), "tau_v": (0.02, 10.0), "m_top": (0.3, 1.0), "m_top_lora": (0.0, 1.0),
          "m_base": (0.0, 1.0), "m_maj": (0.0, 1.0), "v_s": (0.0, 3.0), "v_0": (0.05, 10.0)}


def _p_of(model: SurrogateModel, obs: Observation, by_key: dict[str, Observation]) -> float:
    p = _p_of(model, by_key[obs.parent], by_key) if obs.parent and obs.parent in by_key else 0.0
    return p + obs.plan.train.epochs * model.eff(obs.plan.train.learning_rate, obs.plan.train.mode)


def _residuals(model: SurrogateModel, data: list[Observation]) -> tuple[list[float], list[float]]:
    by_key = {o.key: o for o in data}
    metric_res, val_res = [], []
    for o in data:
        p = _p_of(model, o, by_key)
        if o.metric is not None and o.metric >= 0:
            metric_res.append(model.metric_at(o.plan, p) - o.metric)
        p0 = p - o.plan.train.epochs * model.eff(o.plan.train.learning_rate, o.plan.train.mode)
        for f, v in o.curve:
            val_res.append(math.log(model.val_at(o.plan, p0 + (p - p0) * f)) - math.log(v))
    return metric_res, val_res


def _objective(names: Sequence[str], base: SurrogateModel, data: list[Observation], val: bool = False) -> Any:
    def f(x: Sequence[float]) -> float:
        values = dict(zip(names, x, strict=True))
        for k, (lo, hi) in BOUNDS.items():
            if k in values and not lo <= values[k] <= hi:
                return 1e9
        mres, vres = _residuals(replace(base, **values), data)
        loss = sum(r * r for r in (vres if val else mres))
        return loss + sum(((values[k] - mu) / s) ** 2 * 0.01 for k, (mu, s) in PRIOR.items() if k in values)

    return f


def nelder_mead(f: Any, x0: Sequence[float], step: float = 0.2, iters: int = 4000,
                tol: float = 1e-10) -> list[float]:
    """A plain Nelder-Mead (no scipy here)."""
    n = len(x0)
    simplex = [list(x0)] + [[x + (step * (abs(x) or 1.0) if i == j else 0.0) for j, x in enumerate(x0)]
                            for i in range(n)]
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
                simplex = [best] + [[b + 0.5 * (x - b) for b, x in zip(best, xs, strict=True)]
                                    for xs in simplex[1:]]
                scores = [scores[0]] + [f(x) for x in simplex[1:]]
    return simplex[min(range(n + 1), key=lambda i: scores[i])]


def _minimize(f: Any, x0: list[float], restarts: int = 6) -> list[float]:
    x = x0
    for _ in range(restarts):
        x = nelder_mead(f, x)
    return x


def fit(data: list[Observation], base: SurrogateModel | None = None,
        trial_start: Path = TRIAL_START) -> SurrogateModel:
    """Least squares of the metric terms, then of the validation-loss terms, then divergence and costs."""
    model = base or SurrogateModel()
    x = _minimize(_objective(FREE, model, data), [getattr(model, k) for k in FREE])
    model = replace(model, **dict(zip(FREE, x, strict=True)))
    xv = _minimize(_objective(VAL_FREE, model, data, val=True), [getattr(model, k) for k in VAL_FREE])
    model = replace(model, **dict(zip(VAL_FREE, xv, strict=True)))
    model = _fit_costs(_fit_divergence(model, data), data, trial_start)
    mres, vres = _residuals(model, data)
    rms = math.sqrt(sum(r * r for r in mres) / max(1, len(mres)))
    # a run's noise is at least the sampling noise of the validation score (128 rows: +-0.044 at 0.5);
    # with few trials and many terms the residual alone would understate it
    floor = math.sqrt(0.25 / VAL_ROWS)
    model.sigma_run = max(rms, floor)
    model.fit_info = {
        "sigma_run_floor": round(floor, 4),
        "n_trials": len(data),
        "n_metric": len(mres),
        "n_val_points": len(vres),
        "metric_rmse": round(rms, 4),
        "val_log_rmse": round(math.sqrt(sum(r * r for r in vres) / max(1, len(vres))), 4),
        "table": _fit_table(model, data),
    }
    return model


def _fit_divergence(model: SurrogateModel, data: list[Observation]) -> SurrogateModel:
    """Halfway (in log) between the highest lr that trained and the lowest that diverged, per mode; without
    a divergence seen, the prior (none) stays."""
    out = model
    for mode, attr in ((TrainMode.full, "lr_div_full"), (TrainMode.lora, "lr_div_lora")):
        rows = [o for o in data if o.plan.train.mode is mode and o.metric is not None]
        ok = [o.plan.train.learning_rate for o in rows if o.metric >= 0]
        bad = [o.plan.train.learning_rate for o in rows if o.metric == -1.0]
        if bad:
            lo = max([lr for lr in ok if lr < min(bad)], default=min(bad) / 2)
            out = replace(out, **{attr: math.sqrt(lo * min(bad))})
    return out


def _median(xs: list[float], default: float) -> float:
    return sorted(xs)[len(xs) // 2] if xs else default


def _fit_costs(model: SurrogateModel, data: list[Observation], trial_start: Path) -> SurrogateModel:
    """Seconds of one core, not wall seconds: the trials ran on a shared machine (load 15-47 on 2 cores)
    where a trial got a fifth of a core. epoch_s: median CPU seconds of the training loop per full-data
    epoch (its validation-loss reports included); eval_s: median seconds scoring the validation rows, and
    start_s: median of the rest of a finished trial (data, model load, checkpoint), both scaled by the
    share of a core that trial's training loop got (its CPU / wall seconds); launch_s: the Ray Train
    launch that trial_start.py measured (wall seconds on an idle 16-core machine)."""
    trained = [o for o in data if o.train_s and o.train_cpu_s and o.plan.train.mode is not TrainMode.none]
    per_epoch = [o.train_cpu_s / (o.plan.train.epochs * model.keep(o.plan)) for o in trained]
    share = {o.key: min(1.0, o.train_cpu_s / o.train_s) for o in trained}
    evals = [o.eval_s * share[o.key] for o in trained if o.eval_s]
    rest = [(o.compute_s - o.train_s - o.eval_s) * share[o.key] for o in trained
            if o.eval_s and o.metric is not None and o.metric >= 0]
    launch = model.launch_s
    if trial_start.is_file():
        medians = json.loads(trial_start.read_text()).get("median_total_s", {})
        launch = _median(list(medians.values()), launch)
    return replace(model, epoch_s=_median(per_epoch, model.epoch_s), eval_s=_median(evals, model.eval_s),
                   start_s=max(0.0, _median(rest, model.start_s)), launch_s=launch)


def _fit_table(model: SurrogateModel, data: list[Observation]) -> list[dict[str, Any]]:
    by_key = {o.key: o for o in data}
    rows = []
    for o in data:
        t = o.plan.train
        diverges = model.diverges(t.learning_rate, t.mode)
        pred = None if diverges else model.metric_at(o.plan, _p_of(model, o, by_key))
        rows.append({"key": o.key, "mode": t.mode.value, "lr": t.learning_rate, "epochs": t.epochs,
                     "warm": t.warm_start, "ops": [op.op for op in o.plan.data.ops],
                     "template": o.plan.data.template, "wd": t.weight_decay, "real": o.metric,
                     "pred": None if pred is None else round(pred, 3), "compute_s": round(o.compute_s, 1)})
    return rows


def differences(committed: dict[str, Any], rebuilt: dict[str, Any], rel: float = 1e-3) -> list[str]:
    """Where a committed fit and a rebuild disagree (numbers beyond ``rel``), one line each."""
    out: list[str] = []

    def walk(a: Any, b: Any, where: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                if k not in a or k not in b:
                    out.append(f"{where}.{k}: only in the {'rebuild' if k in b else 'committed fit'}")
                else:
                    walk(a[k], b[k], f"{where}.{k}")
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                walk(x, y, f"{where}[{i}]")
        elif isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
            if abs(a - b) > rel * max(1.0, abs(a), abs(b)):
                out.append(f"{where}: committed {a} != rebuilt {b}")
        elif a != b:
            out.append(f"{where}: committed {a!r} != rebuilt {b!r}")

    walk(committed, rebuilt, "fit")
    return out


def describe(model: SurrogateModel) -> str:
    lines = ["| trial | mode | lr | epochs | warm | ops | template | wd | real | surrogate "
             "| wall s (shared box) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in model.fit_info.get("table", []):
        real = "diverged" if r["real"] == -1.0 else ("stopped" if r["real"] is None else f"{r['real']:.3f}")
        pred = "diverges" if r["pred"] is None else f"{max(0.0, r['pred']):.3f}"
        name = r["key"].removeprefix("trials:")
        lines.append(f"| {name} | {r['mode']} | {r['lr']:.3g} | {r['epochs']:g} | "
                     f"{'yes' if r['warm'] else ''} | {' '.join(r['ops'])} | {r['template']} | {r['wd']:g} | "
                     f"{real} | {pred} | {r['compute_s']:.0f} |")
    return "\n".join(lines)
