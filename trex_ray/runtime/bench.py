"""Parallel sweeps: every task of a suite searched at once, one Researcher actor per task.

All Researchers start together and share the cluster's trial slots through one named
``SlotPool`` (round-robin), so that a slow task cannot starve the others and no slot idles
while any task has work. Tasks with the same base model (and evaluation settings) share one
evaluator, so one vLLM engine serves every task's LoRA nodes instead of one engine per task.
Each task's run lives in ``OUT_DIR/<task>/`` like a ``trex run``
directory (``trex report OUT_DIR/hoc`` works); running the same OUT_DIR again resumes.

Example::

    rows = run_bench({"hoc": suite_task("ftbench-mini/hoc")}, Path("runs/bench-mini"))
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayActorError

from trex_ray.runtime.driver import await_restart, connect
from trex_ray.runtime.evaluator import close_evaluator, evaluator_for
from trex_ray.runtime.pool import SlotPool, pool_name
from trex_ray.runtime.researcher_actor import NAMESPACE, ResearcherActor, actor_name, trial_slots, wait_ready
from trex_ray.spec import TaskSpec
from trex_ray.store import read_tree
from trex_ray.store.lease import Lease, acquire_lease

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 30.0


@dataclass
class _Job:
    name: str
    task: TaskSpec
    run_dir: Path
    actor: Any = None
    ref: Any = None
    started: float = 0.0
    ended: float | None = None
    outcome: dict[str, Any] | None = None
    error: str | None = None


def _cache_dir(out_dir: Path) -> Path:
    return Path(os.environ.get("TREX_CACHE_DIR", out_dir.parent / "cache")).absolute()


def _evaluator_key(task: TaskSpec) -> str:
    """Tasks with the same key can share an evaluator: same base model, same engine settings."""
    return json.dumps([task.model.model_dump(mode="json"), task.eval.model_dump(mode="json")], sort_keys=True)


def _shared_evaluators(jobs: list[_Job], bench_id: str, cache: str) -> dict[str, Any]:
    """One evaluator per distinct base model (and eval settings) of the suite, owned by the bench."""
    evaluators: dict[str, Any] = {}
    for job in jobs:
        key = _evaluator_key(job.task)
        if key not in evaluators:
            evaluators[key] = evaluator_for(job.task, f"{bench_id}-shared-{len(evaluators)}", cache)
    return {key: handle for key, handle in evaluators.items() if handle is not None}


def _start(jobs: list[_Job], bench_id: str, out_dir: Path, pool: Any, evaluators: dict[str, Any]) -> None:
    cache = str(_cache_dir(out_dir))
    ray_storage = str(out_dir / "_ray")  # Ray Train's trial folders, apart from the task runs
    for job in jobs:
        job.run_dir.mkdir(parents=True, exist_ok=True)
        run_id = f"{bench_id}-{job.name}"
        job.actor = ResearcherActor.options(
            name=actor_name(run_id), namespace=NAMESPACE, get_if_exists=True
        ).remote(str(job.run_dir), job.task.model_dump(mode="json"), run_id, ray_storage, cache, pool,
                 evaluator=evaluators.get(_evaluator_key(job.task)))
    for job in jobs:
        wait_ready(job.actor, timeout=600)
    for job in jobs:  # all at once, after every actor has profiled its data
        job.started = time.time()
        job.ref = job.actor.run.remote()


def _error_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines() or [""]
    return f"{type(exc).__name__}: {lines[-1][:200]}"


def _rerun(job: _Job, exc: RayActorError, say: Callable[[str], None]) -> bool:
    """A task's Researcher died (e.g. killed for memory): once Ray restarted it, ask it to run again."""
    say(f"{job.name}: the Researcher actor died ({_error_line(exc)}); waiting for Ray to restart it")
    try:
        await_restart(job.actor)
    except RuntimeError as gone:  # its restarts are spent: that task ends with the error
        say(f"{job.name}: {gone}")
        return False
    job.ref = job.actor.run.remote()
    return True


def _progress_line(jobs: list[_Job]) -> str:
    parts = []
    for job in jobs:
        if job.ended is not None:
            parts.append(f"{job.name}:done")
            continue
        try:
            info = ray.get(job.actor.status.remote(), timeout=10)
            parts.append(f"{job.name}:{info.get('finished_nodes', 0)}")
        except Exception:  # best effort
            parts.append(f"{job.name}:?")
    return "bench progress (finished nodes) " + " ".join(parts)


def _wait(jobs: list[_Job], say: Callable[[str], None]) -> None:
    pending = {job.ref: job for job in jobs}
    last = time.time()
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=2.0)
        for ref in ready:
            job = pending.pop(ref)
            try:
                job.outcome = ray.get(ref)
            except RayActorError as exc:  # Ray restarts it; it resumes from the store, as in `trex run`
                if _rerun(job, exc, say):
                    pending[job.ref] = job
                    continue
                job.error = _error_line(exc)
            except Exception as exc:  # noqa: BLE001 - one task's failure must not end the sweep
                job.error = _error_line(exc)
            job.ended = time.time()
            say(
                f"{job.name} finished in {job.ended - job.started:.0f} s"
                + (f" ({job.error})" if job.error else f" ({(job.outcome or {}).get('reason')})")
            )
        if time.time() - last > PROGRESS_EVERY_S and pending:
            say(_progress_line(jobs))
            last = time.time()


def _row(job: _Job, suite: str) -> dict[str, Any]:
    from trex_ray.report.text import summary

    row: dict[str, Any] = {
        "task": job.name,
        "suite_task": f"{suite}/{job.name}",
        "metric": job.task.metric.name.value,
        "base": None,
        "best": None,
        "gain": None,
        "base_test": None,
        "best_test": None,
        "trex": trex_score(suite, job.name),
        "nodes": 0,
        "compute_seconds": 0.0,
        "wall_seconds": round((job.ended or time.time()) - job.started, 1),
        "best_plan": None,
        "stop_reason": None,
        "error": job.error,
        "run_dir": str(job.run_dir),
    }
    if not (job.run_dir / "journal.jsonl").is_file():
        return row
    info = summary(read_tree(job.run_dir), job.task)
    best = info.get("best") or {}
    row.update(
        base=info["base_metric"],
        best=best.get("metric"),
        gain=info["gain"],
        base_test=info["base_test_metric"],
        best_test=best.get("test_metric"),
        nodes=max(0, len(info["nodes"]) - 1),
        compute_seconds=info["compute_seconds"],
        best_plan=best.get("plan"),
        stop_reason=info["stop_reason"],
    )
    for key in ("base", "best", "gain", "base_test", "best_test"):
        if isinstance(row[key], float) and not math.isfinite(row[key]):
            row[key] = None
    return row


def trex_score(suite: str, name: str) -> float | None:
    """TREX's published score on a real FT-Bench task (a fraction), for the comparison column."""
    if suite != "ftbench":
        return None
    from trex_ray.ftbench.real import bench_task

    return bench_task(name).trex


def run_bench(
    tasks: dict[str, TaskSpec],
    out_dir: str | Path,
    suite: str = "",
    address: str | None = None,
    say: Callable[[str], None] = log.info,
) -> tuple[list[dict[str, Any]], float]:
    """Search every task at once; returns one result row per task (in the given order) and the wall time."""
    out_dir = Path(out_dir).absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    connect(address)
    bench_id = out_dir.name
    jobs = [_Job(name, task, out_dir / name) for name, task in tasks.items()]
    slots = min(trial_slots(job.task.resources) for job in jobs)
    members = [f"{bench_id}-{job.name}" for job in jobs]
    pool = SlotPool.options(name=pool_name(bench_id), namespace=NAMESPACE, get_if_exists=True).remote(
        slots, members
    )
    say(f"bench {bench_id}: {len(jobs)} tasks sharing {slots} trial slots; runs in {out_dir}")
    start = time.time()
    evaluators: dict[str, Any] = {}
    leases: list[Lease] = []
    try:
        for job in jobs:  # one writer per run, as for `trex run`
            leases.append(acquire_lease(job.run_dir))
        evaluators = _shared_evaluators(jobs, bench_id, str(_cache_dir(out_dir)))
        if evaluators:
            say(f"bench {bench_id}: {len(evaluators)} shared evaluator(s) for {len(jobs)} tasks")
        _start(jobs, bench_id, out_dir, pool, evaluators)
        _wait(jobs, say)
    finally:
        for job in jobs:
            if job.actor is not None:
                ray.kill(job.actor)
        for handle in evaluators.values():
            close_evaluator(handle)
        ray.kill(pool)
        for lease in leases:
            lease.release()
    return [_row(job, suite) for job in jobs], time.time() - start


def _disconnect() -> None:
    if ray.is_initialized():
        ray.shutdown()
    sys.stdout.flush()


def cmd_bench(args: argparse.Namespace) -> int:
    """``trex bench`` (its arguments: ``ftbench/cli.py``): the suite's tasks searched at once, the table."""
    from trex_ray.ftbench.cli import bench_tasks
    from trex_ray.report.bench import markdown, write_table

    tasks = bench_tasks(args)
    out = Path(args.out or f"runs/bench-{args.suite}-{time.strftime('%Y%m%d-%H%M%S')}").absolute()

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    rows, wall = run_bench(tasks, out, suite=args.suite, address=args.address, say=say)
    _disconnect()  # before the table: nothing of Ray's may print after the last line
    parquet, md = write_table(rows, out, title=f"trex bench --suite {args.suite}", wall_seconds=wall)
    if args.json:
        print(
            json.dumps(
                {
                    "suite": args.suite,
                    "out_dir": str(out),
                    "wall_seconds": round(wall, 1),
                    "results": [str(parquet), str(md)],
                    "rows": rows,
                },
                default=str,
            )
        )
    else:
        print(markdown(rows, wall_seconds=wall))
        print(f"results: {md}  {parquet}")
    return 0 if not any(r.get("error") for r in rows) else 1
