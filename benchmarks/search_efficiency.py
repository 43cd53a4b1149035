"""Search efficiency: best score vs compute for trex and four peers, same executor, budget and seeds.

Every strategy runs on the surrogate executor fitted on real trials (``surrogate.py``; RESULTS.md has
the fit) on a simulated cluster of ``--slots`` trial slots (``sim.py``), with the same compute budget
and the same seeds. Headline: ``compute_to_target_ratio`` = compute trex needs to reach the target
score / what the best peer needs, where the target is the best score any strategy reaches within the
full budget minus ``--tolerance`` (per seed; the summary is the geometric mean over seeds). A score is
the *test* score of the model a strategy would pick: the one with the best measured (noisy) metric,
scored by the surrogate's noise-free metric, so that many noisy draws do not win by luck.

Every figure it writes is simulated (its JSON says ``"simulated": true``); ``real_check.py`` runs the
same strategies on real trials. Seeds come in two sets: ``dev`` (0-9), on which every change to a
strategy was decided, and ``heldout`` (1000-1029), which no change was tuned on: the headline.

    python benchmarks/search_efficiency.py --quick --json
    python benchmarks/search_efficiency.py --seed-set heldout --cost fitted
"""

from __future__ import annotations

import argparse
import logging
import math
import statistics
import time
from pathlib import Path
from typing import Any

from common import RESULTS, emit, finite, machine  # also puts benchmarks/ and the repo on sys.path
from peers import simulate
from sim import Outcome, best_at, compute_to
from strategies import STRATEGIES, TreeSearch
from surrogate import CostModel, SurrogateExecutor, SurrogateModel

PEERS = ("greedy", "random", "tune-tpe-asha", "tune-pbt")
SEED_SETS = {"dev": range(0, 10), "heldout": range(1000, 1030)}
BUDGET_TRIALS = {"quick": 12, "full": 24}  # the budget in one-epoch trials (start-up + epoch + evaluation)


def run_one(
    name: str, seed: int, model: SurrogateModel, costs: CostModel, slots: int, budget: float
) -> Outcome:
    strategy = STRATEGIES[name](seed)
    t0 = time.perf_counter()
    surrogate = SurrogateExecutor(model, costs, seed)
    try:
        if isinstance(strategy, TreeSearch):  # trex and greedy: the Researcher in the production loop
            out = strategy.run(surrogate, slots, budget)
        else:  # the peers: their strategy as searcher and scheduler of the same loop
            out = simulate(strategy, surrogate, slots, budget)
    finally:
        if isinstance(strategy, TreeSearch):
            strategy.close()
    out.wall = time.perf_counter() - t0  # type: ignore[attr-defined]
    return out


def summarize(runs: dict[str, dict[int, Outcome]], budget: float, tolerance: float) -> dict[str, Any]:
    """Per seed: target = best test score any strategy has at the budget - tolerance; each strategy's
    compute to reach it; ratio = trex's / the best peer's. A strategy that never reaches it counts as
    needing the whole budget (so a ratio is then a bound: ``censored`` says how many seeds)."""
    seeds = sorted(next(iter(runs.values())))
    per_seed, ratios, censored = [], [], 0
    for seed in seeds:
        finals = {name: best_at(r[seed].curve, budget) or 0.0 for name, r in runs.items()}
        target = max(finals.values()) - tolerance
        needs = {name: compute_to(r[seed].curve, target) for name, r in runs.items()}
        peer = min((needs[p], p) for p in runs if p != "trex")
        trex_need, peer_need = min(needs["trex"], budget), min(peer[0], budget)
        censored += not (math.isfinite(needs["trex"]) and math.isfinite(peer[0]))
        ratio = trex_need / max(peer_need, 1e-9)
        ratios.append(ratio)
        per_seed.append(
            {
                "seed": seed,
                "target": round(target, 4),
                "best_peer": peer[1],
                "compute_to_target": {k: finite(round(v, 1)) for k, v in needs.items()},
                "best_at_budget": {k: round(v, 4) for k, v in finals.items()},
                "ratio": round(ratio, 3),
            }
        )
    geo = math.exp(statistics.fmean(math.log(max(r, 1e-9)) for r in ratios))
    vs = {}  # trex against each peer alone (geometric mean over seeds; never reached = the budget)
    for peer_name in (p for p in runs if p != "trex"):
        logs = []
        for row in per_seed:
            need = row["compute_to_target"]
            mine, theirs = need["trex"] or budget, need[peer_name] or budget
            logs.append(math.log(mine / theirs))
        vs[peer_name] = round(math.exp(statistics.fmean(logs)), 3)
    strategies = {}
    for name, r in runs.items():
        finals = [best_at(o.curve, budget) or 0.0 for o in r.values()]
        needs = [s["compute_to_target"][name] for s in per_seed]
        reached = [n for n in needs if n is not None]
        strategies[name] = {
            "best_at_budget_mean": round(statistics.fmean(finals), 4),
            "best_at_budget_min": round(min(finals), 4),
            "observed_best_at_budget_mean": round(
                statistics.fmean(best_at(o.observed, budget) or 0.0 for o in r.values()), 4
            ),
            "reached_target": f"{len(reached)}/{len(needs)}",
            "compute_to_target_median": finite(
                statistics.median([n if n is not None else math.inf for n in needs])
            ),
            "trials_mean": round(statistics.fmean(o.trials for o in r.values()), 1),
            "stopped_mean": round(statistics.fmean(o.stopped for o in r.values()), 1),
            "wall_s": round(sum(getattr(o, "wall", 0.0) for o in r.values()), 2),
        }
    return {
        "compute_to_target_ratio": round(geo, 3),
        "ratio_median": round(statistics.median(ratios), 3),
        "censored_seeds": censored,
        "ratio_vs_each_peer": vs,
        "ratio_per_seed": [round(r, 3) for r in ratios],
        "trex_beats_best_peer_seeds": f"{sum(r < 1 for r in ratios)}/{len(ratios)}",
        "trex_loses_to_best_peer_seeds": f"{sum(r > 1 for r in ratios)}/{len(ratios)}",
        "strategies": strategies,
        "per_seed": per_seed,
    }


def plot(runs: dict[str, dict[int, Outcome]], budget: float, path: Any, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = [budget * i / 200 for i in range(201)]
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=120)
    for name, r in runs.items():
        rows = [[best_at(o.curve, c) for c in grid] for o in r.values()]
        mean = [statistics.fmean(v if v is not None else 0.0 for v in col) for col in zip(*rows, strict=True)]
        lo = [min(v if v is not None else 0.0 for v in col) for col in zip(*rows, strict=True)]
        hi = [max(v if v is not None else 0.0 for v in col) for col in zip(*rows, strict=True)]
        (line,) = ax.plot(grid, mean, label=name, lw=2.2 if name == "trex" else 1.4)
        ax.fill_between(grid, lo, hi, color=line.get_color(), alpha=0.12)
    ax.set_xlabel("compute-seconds spent (simulated: surrogate, all slots)")
    ax.set_ylabel("test accuracy of the selected model\n(mean over seeds; band: min-max)")
    ax.set_ylim(0.3, 1.0)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 seeds, a smaller budget")
    ap.add_argument("--json", action="store_true", help="print the summary as one compact JSON line")
    ap.add_argument("--seed-set", choices=sorted(SEED_SETS), default="dev")
    ap.add_argument("--seeds", type=int, default=None, help="only the first N seeds of the set")
    ap.add_argument(
        "--budget", type=float, default=None, help="compute-seconds per strategy and seed (default: "
        "12 quick / 24 full one-epoch trials' cost)"
    )
    ap.add_argument("--slots", type=int, default=4)
    ap.add_argument(
        "--cost",
        choices=("epochs", "fitted"),
        default="epochs",
        help="epochs: cost proportional to epochs trained (+ evaluations); fitted: + the start-up "
        "seconds measured per trial on this CPU",
    )
    ap.add_argument("--tolerance", type=float, default=0.01)
    ap.add_argument("--results-dir", type=Path, default=RESULTS)
    ap.add_argument("--strategies", nargs="*", default=["trex", *PEERS])
    ap.add_argument("--tag", default="", help="appended to the result files' names (e.g. slots1)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for name in ("trex_ray", "ray", "ray.tune"):
        logging.getLogger(name).setLevel(logging.WARNING)
    seeds = list(SEED_SETS[args.seed_set])[: args.seeds or (3 if args.quick else None)]
    model = SurrogateModel.load()
    costs = CostModel.from_model(model)
    costs = costs.epochs_only() if args.cost == "epochs" else costs
    size = "quick" if args.quick else "full"
    budget = args.budget or BUDGET_TRIALS[size] * (costs.start_s + costs.epoch_s + costs.eval_s)
    t0 = time.perf_counter()
    runs = {
        name: {s: run_one(name, s, model, costs, args.slots, budget) for s in seeds}
        for name in args.strategies
    }
    summary = summarize(runs, budget, args.tolerance)
    tag = f"{size}-{args.cost}-{args.seed_set}" + (f"-{args.tag}" if args.tag else "")
    png = args.results_dir / f"search_efficiency-{tag}.png"
    args.results_dir.mkdir(parents=True, exist_ok=True)
    title = (f"SIMULATED, {args.seed_set} seeds {seeds[0]}-{seeds[-1]}, {args.slots} slots, "
             f"budget {budget:.0f} s, cost={args.cost}")
    plot(runs, budget, png, title)
    summary = {
        "benchmark": "search_efficiency",
        "simulated": True,
        "surrogate": "benchmarks/data/surrogate_fit.json (fitted on benchmarks/data/real_trials.jsonl)",
        "mode": tag,
        "seed_set": args.seed_set,
        "seeds": len(seeds),
        "first_seed": seeds[0],
        "slots": args.slots,
        "budget_compute_s": budget,
        "cost_model": {"start_s": costs.start_s, "epoch_s": costs.epoch_s, "eval_s": costs.eval_s},
        "tolerance": args.tolerance,
        **summary,
        "plot": str(png),
        "wall_s": round(time.perf_counter() - t0, 1),
        "machine": machine(),
    }
    emit(summary, args.json, f"search_efficiency-{tag}.json", args.results_dir)


if __name__ == "__main__":
    main()
