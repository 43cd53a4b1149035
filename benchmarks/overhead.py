"""Orchestration overhead: no-op trials through trex vs Ray Tune, and decision latency vs tree size.

1. **Dispatch**: ``--trials`` no-op trials through the real ``ResearcherActor`` + ``NodeRunner`` path
   (heuristic planner, fsync'd journal, warm NodeRunner actors reused across nodes) with ``run_plan``
   replaced by a no-op in every Ray worker (a ``worker_process_setup_hook``: ``bench_hooks.setup_noop``),
   against the same number of no-op function trials through ``ray.tune.Tuner`` with the same concurrency.
   ``overhead_ratio`` = trex wall / Tune wall. With ``--launch`` every trial also launches its Ray Train
   run (a TorchTrainer with a loop that returns at once) on both sides: trex through its NodeRunner's
   launcher (``bench_hooks.setup_launch``), Tune through a function trainable that launches the same
   TorchTrainer (``RayTrainLauncher``), as a Tune user tunes a Ray Train run; both at the same
   concurrency (one CPU a Train worker). ``overhead_ratio_launch`` = trex wall / Tune wall.
2. **Decision latency**: result in -> next dispatch (``Researcher.on_result`` + ``next_nodes(1)``, journal
   on tmpfs, snapshots every 50 events as in a run) on synthetic trees of 10^2, 10^3, 10^4 nodes built
   from events. Goal: <= 10 ms at 10^4 nodes.

    python benchmarks/overhead.py --quick --json
    python benchmarks/overhead.py --trials 100 --sizes 100 1000 10000
    python benchmarks/overhead.py --launch --trials 20 --skip-latency --json   # the real trial launch
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from common import BENCH, ROOT, emit, machine

TMP = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())


# --- 1. dispatch: trex vs Tune -------------------------------------------------------------------
def _hf_eval(task: Any) -> Any:
    """The hooks replace evaluation, so the run's vLLM evaluator (``eval.backend: auto``) is not started."""
    return task.model_copy(update={"eval": task.eval.model_copy(update={"backend": "hf"})})


def _init_ray(cpus: int, hook: bool | str) -> None:
    """A fresh local cluster; ``hook``: every worker's run_plan is a no-op (trex's side only), or the
    named ``bench_hooks`` setup function."""
    import ray

    from trex_ray.runtime.env import worker_env

    env = {
        **worker_env(),
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(BENCH), os.environ.get("PYTHONPATH", "")]),
    }
    os.environ["PYTHONPATH"] = env["PYTHONPATH"]
    runtime_env: dict[str, Any] = {"env_vars": env}
    if hook:
        runtime_env["worker_process_setup_hook"] = hook if isinstance(hook, str) else "bench_hooks.setup_noop"
    ray.init(
        address="local",
        num_cpus=cpus,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
        namespace="trex",
        runtime_env=runtime_env,
    )


def trex_noop(trials: int, cpus_per_trial: float) -> dict[str, Any]:
    """Wall seconds for ``trials`` no-op nodes through the ResearcherActor (actor start to run() return)."""
    import ray

    from trex_ray.ftbench.registry import builtin_task
    from trex_ray.runtime.researcher_actor import ResearcherActor
    from trex_ray.spec import Budget, Resources
    from trex_ray.store import read_tree

    base = _hf_eval(builtin_task("sentiment"))
    task = base.model_copy(
        update={"budget": Budget(max_nodes=trials), "resources": Resources(cpus_per_worker=cpus_per_trial)}
    )
    run_dir = Path(tempfile.mkdtemp(prefix="trex-overhead-"))  # disk, as a run's journal is
    try:
        t0 = time.perf_counter()
        actor = ResearcherActor.remote(
            str(run_dir / "run"),
            task.model_dump(mode="json"),
            "overhead",
            str(run_dir),
            str(run_dir / "cache"),
        )
        ray.get(actor.ping.remote(), timeout=600)  # the actor is up: its data profile is done
        setup = time.perf_counter() - t0
        t1 = time.perf_counter()
        out = ray.get(actor.run.remote(), timeout=3600)
        wall = time.perf_counter() - t1
        ray.kill(actor)
        tree = read_tree(run_dir / "run")
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    done = sum(1 for n in tree if n.result is not None)
    return {
        **_where_time_goes(tree),
        "wall_s": round(wall, 2),
        "setup_s": round(setup, 2),
        "trials": trials,
        "results": done,
        "per_trial_ms": round(1000 * wall / max(1, done), 1),
        "peak_running": out.get("peak_running"),
        "reason": out.get("reason"),
    }


def _where_time_goes(tree: Any) -> dict[str, Any]:
    """From the journal's clock: how long a node was in flight (NodeRunner actor start, imports, the
    no-op, result back: node_started -> node_finished) and how long a slot waited between one node's
    result and the next start (the Researcher's decision and dispatch)."""
    spans = sorted((n.started_at, n.finished_at) for n in tree if n.started_at and n.finished_at)
    flight = [b - a for a, b in spans]
    starts = sorted(a for a, _ in spans)
    ends = sorted(b for _, b in spans)
    gaps = []
    for end in ends:
        later = [s for s in starts if s >= end]
        if later:
            gaps.append(later[0] - end)
    med = lambda xs: round(statistics.median(xs), 3) if xs else None  # noqa: E731
    return {
        "in_flight_s_median": med(flight),
        "in_flight_s_max": round(max(flight), 3) if flight else None,
        "result_to_next_start_s_median": med(gaps),
    }


def _noop_trainable(config: dict[str, Any]) -> dict[str, float]:
    return {"score": float(config["x"])}


def _launch_trainable(config: dict[str, Any]) -> dict[str, float]:
    """A Tune trial that launches a Ray Train run (the loop returns at once), as trex's trials do."""
    from bench_hooks import noop_loop

    from trex_ray.runtime.train_launcher import RayTrainLauncher

    storage = tempfile.mkdtemp(prefix="tune-launch-")
    try:
        RayTrainLauncher(cpus_per_worker=config["cpus"], storage_path=storage).launch(noop_loop, {})
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    return {"score": float(config["x"])}


def tune_noop(trials: int, cpus_per_trial: float, launch: bool = False, cpus: int = 2) -> dict[str, Any]:
    """``launch``: each trial launches a Ray Train run holding ``cpus_per_trial`` (the Tune trial itself
    holds 0.01 CPU), at most ``cpus / cpus_per_trial`` at once, as trex's slots."""
    from ray import tune

    storage = Path(tempfile.mkdtemp(prefix="tune-overhead-"))
    trainable = (
        tune.with_resources(_launch_trainable, {"cpu": 0.01})
        if launch
        else tune.with_resources(_noop_trainable, {"cpu": cpus_per_trial})
    )
    space = {"x": tune.uniform(0, 1), "cpus": cpus_per_trial}
    concurrent = max(1, int(cpus / cpus_per_trial)) if launch else None
    try:
        tuner = tune.Tuner(
            trainable,
            param_space=space,
            tune_config=tune.TuneConfig(
                num_samples=trials, metric="score", mode="max", max_concurrent_trials=concurrent
            ),
            run_config=tune.RunConfig(storage_path=str(storage), name="noop", verbose=0),
        )
        t0 = time.perf_counter()
        results = tuner.fit()
        wall = time.perf_counter() - t0
        errors = sum(1 for r in results if r.error)
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    return {
        "wall_s": round(wall, 2),
        "trials": trials,
        "per_trial_ms": round(1000 * wall / trials, 1),
        "errors": errors,
    }


# --- 2. decision latency -------------------------------------------------------------------------
def build_researcher(n: int, seed: int = 0, running: int = 4) -> tuple[Any, Path]:
    """A Researcher over a synthetic tree of ``n`` nodes (finished, pruned, stopped, failed, with curves
    and insights), built through the Researcher's own events, with ``running`` nodes in flight."""
    from trex_ray.ftbench.registry import builtin_task
    from trex_ray.research import Researcher
    from trex_ray.research.insights import distill
    from trex_ray.spec import Budget
    from trex_ray.store import Store
    from trex_ray.tree import EventKind

    rng = random.Random(seed)
    run_dir = Path(tempfile.mkdtemp(prefix="trex-latency-", dir=TMP))
    task = _hf_eval(builtin_task("sentiment"))
    task = task.model_copy(update={"budget": Budget(max_nodes=min(100_000, 10 * n + 100))})
    store = Store(run_dir, snapshot_every=10**9)  # no snapshots while building
    r = Researcher.open(
        run_dir, task, profile={"noise_estimate": 0.1, "duplicate_fraction": 0.03}, store=store
    )
    emit_ = r._emit
    emit_(EventKind.node_started, "n0", attempt=1)
    emit_(EventKind.node_finished, "n0", result=_result(0.3, rng, none=True).model_dump(mode="json"))
    open_ = ["n0"]
    for i in range(1, n):
        parent = rng.choice(open_[-200:]) if rng.random() < 0.8 else rng.choice(open_)
        node_id = f"n{i}"
        emit_(EventKind.node_added, node_id, parent=parent, plan=_plan(rng, i).model_dump(mode="json"))
        if i >= n - running:
            emit_(EventKind.node_started, node_id, attempt=1)
            continue
        emit_(EventKind.node_started, node_id, attempt=1)
        roll = rng.random()
        result = _result(rng.uniform(0.4, 0.9), rng, stopped=roll < 0.2, failed=0.2 <= roll < 0.25)
        node = emit_(EventKind.node_finished, node_id, result=result.model_dump(mode="json"))
        if node is not None and node.ok:
            if len(r.tree.get(parent).children) >= 8:
                open_ = [x for x in open_ if x != parent] or ["n0"]
            open_.append(node_id)
            if rng.random() < 0.3:
                emit_(EventKind.node_pruned, node_id, reason="lost to its siblings")
        text, facts = distill(r.tree, r.tree.get(node_id))
        emit_(EventKind.insight, node_id, text=text, facts=facts)
    store.snapshot(r.tree)
    store.snapshot_every = 50  # as in a run
    return r, run_dir


def _plan(rng: random.Random, i: int) -> Any:
    from trex_ray.spec import DataOp, DataRecipe, Plan, TrainMode, TrainRecipe

    ops = [DataOp(op=o) for o in ("dedup", "label_noise_filter", "length_filter") if rng.random() < 0.4]
    train = TrainRecipe(
        mode=TrainMode.lora if rng.random() < 0.2 else TrainMode.full,
        learning_rate=10 ** rng.uniform(-4.5, -2),
        epochs=rng.choice([1.0, 2.0, 3.0]),
        warm_start=rng.random() < 0.3,
    )
    return Plan(
        data=DataRecipe(ops=ops, template=rng.choice(["plain", "instruct", "qa"])),
        train=train,
        seed=i,
        rationale=f"synthetic node {i}: " + "x" * 60,
    )


def _result(
    metric: float, rng: random.Random, none: bool = False, stopped: bool = False, failed: bool = False
) -> Any:
    from trex_ray.spec import Cost, FailureKind, Outcome, Progress, Result

    losses = sorted((rng.uniform(0.3, 2.0) for _ in range(4)), reverse=True)
    curve = (
        []
        if none
        else [
            Progress(fraction=f, step=int(100 * f), train_loss=v * 1.1, val_loss=v)
            for f, v in zip((0.25, 0.5, 0.75, 1.0), losses, strict=True)
        ]
    )
    cost = Cost(wall_seconds=60.0, compute_seconds=60.0, train_steps=100, train_tokens=6400)
    if failed:
        return Result(outcome=Outcome.failed, failure=FailureKind.lost, error="worker died", cost=cost)
    if stopped:
        return Result(outcome=Outcome.stopped, curve=curve[:2], cost=cost)
    return Result(
        outcome=Outcome.finished,
        metric=metric,
        metrics={"accuracy": metric},
        curve=curve,
        cost=cost,
        checkpoint="ckpt",
        samples=[{"input": "x" * 40, "target": "y", "output": "y"}] * 3,
    )


def decision_latency(n: int, decisions: int, seed: int = 0, warmup: int = 3) -> dict[str, Any]:
    """``warmup`` decisions first (the first one after a start builds the tree's indexes: reported as
    ``first_ms``), then ``decisions`` timed ones."""
    from trex_ray.tree import NodeStatus

    rng = random.Random(seed + 1)
    t0 = time.perf_counter()
    r, run_dir = build_researcher(n, seed)
    build_s = time.perf_counter() - t0
    times, first = [], None
    try:
        for i in range(decisions + warmup):
            running = r.tree.with_status(NodeStatus.running)
            node_id = rng.choice(running).id
            result = _result(rng.uniform(0.4, 0.9), rng)
            t = time.perf_counter()
            r.on_result(node_id, result)
            started = r.next_nodes(1)
            if i >= warmup:
                times.append(time.perf_counter() - t)
            elif first is None:
                first = time.perf_counter() - t
            if not started:  # keep the same number in flight
                break
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    times.sort()
    ms = [1000 * x for x in times]
    return {
        "nodes": n,
        "decisions": len(ms),
        "p50_ms": round(statistics.median(ms), 3),
        "p95_ms": round(ms[min(len(ms) - 1, math.ceil(0.95 * len(ms)) - 1)], 3),
        "mean_ms": round(statistics.fmean(ms), 3),
        "max_ms": round(ms[-1], 3),
        "first_ms": round(1000 * (first or 0.0), 3),
        "build_s": round(build_s, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="40 trials; trees of 10^2, 10^3 and 10^4 nodes")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--trials", type=int, default=None)
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--cpus-per-trial", type=float, default=1.0)
    ap.add_argument("--sizes", type=int, nargs="*", default=[100, 1000, 10000])
    ap.add_argument("--decisions", type=int, default=None)
    ap.add_argument("--skip-dispatch", action="store_true")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--launch", action="store_true", help="each trial launches its Ray Train run")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    trials = args.trials or (40 if args.quick else 100)
    decisions = args.decisions or (30 if args.quick else 100)
    t0 = time.perf_counter()
    summary: dict[str, Any] = {"benchmark": "overhead", "mode": "quick" if args.quick else "full"}
    if not args.skip_latency:
        rows = [decision_latency(n, decisions) for n in args.sizes]
        summary["latency"] = rows
        summary["latency_ms_p50_at_max_size"] = rows[-1]["p50_ms"]
        summary["latency_ms_p95_at_max_size"] = rows[-1]["p95_ms"]
    if not args.skip_dispatch:
        import ray

        load_before = os.getloadavg()
        _init_ray(args.cpus, hook=False)
        try:
            tune = tune_noop(trials, args.cpus_per_trial, launch=args.launch, cpus=args.cpus)
        finally:
            ray.shutdown()
        _init_ray(args.cpus, hook="bench_hooks.setup_launch" if args.launch else True)
        try:
            trex = trex_noop(trials, args.cpus_per_trial)
        finally:
            ray.shutdown()
        summary.update(
            {
                "trials": trials,
                "cpus": args.cpus,
                "cpus_per_trial": args.cpus_per_trial,
                "trex": trex,
                "tune": tune,
                "trial": "Ray Train launch, no-op loop" if args.launch else "no-op",
                "overhead_ratio" + ("_launch" if args.launch else ""): round(
                    trex["wall_s"] / tune["wall_s"], 3
                ),
                "overhead_ratio_incl_setup": round((trex["wall_s"] + trex["setup_s"]) / tune["wall_s"], 3),
                "load_before_dispatch": [round(x, 2) for x in load_before],
            }
        )
    summary.update({"wall_s": round(time.perf_counter() - t0, 1), "machine": machine()})
    emit(summary, args.json, f"overhead-{summary['mode']}{'-launch' if args.launch else ''}.json")


if __name__ == "__main__":
    main()
