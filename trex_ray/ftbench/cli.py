"""The FT-Bench part of the ``trex`` command: ``trex bench``, suite tasks for ``trex run``, ``trex tasks``.

    trex bench --suite ftbench-mini --max-nodes 6
    trex bench --suite ftbench-mini --tasks hoc,sst2 --max-nodes 2 --json
    trex bench --suite ftbench --model Qwen/Qwen3-1.7B resources.gpus_per_worker=1
    trex bench --suite ftbench --model ./my-model --data-dir ./ftbench-data   # local copies of the sources
    trex run ftbench-mini/gta --max-nodes 8
    trex run ftbench/hoc          # offline: one line naming the analog to run instead

The sweep itself, on Ray, is ``runtime/bench.py`` (``cmd_bench``); this module imports no Ray.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from trex_ray.ftbench.suites import (
    SUITES,
    BenchUnavailable,
    bench_task,
    is_suite_ref,
    list_suite_tasks,
    preflight,
    real_task,
    split_ref,
    suite_task,
    suite_tasks,
)
from trex_ray.spec import SpecError, TaskSpec, load_task


def _user_error(message: str) -> Exception:
    """What ``trex`` prints as one line (exit code 2); SpecError works under ``python -m`` too."""
    return SpecError(message)


def add_bench_command(sub: Any, run: Callable[[argparse.Namespace], int]) -> None:
    """``trex bench``; ``run`` runs it (``runtime/bench.py::cmd_bench``: the ``trex`` entry passes it)."""
    bench = sub.add_parser("bench", help="search every task of a suite at once (one Researcher per task)")
    bench.add_argument(
        "--suite", required=True, choices=SUITES, help="ftbench (hub, GPU) or ftbench-mini (offline)"
    )
    bench.add_argument("--tasks", help="comma-separated subset, e.g. hoc,sst2 (default: all ten)")
    bench.add_argument("--model", help="ftbench: the base model, a hub id or a local folder "
                       "(default Qwen/Qwen3-1.7B)")
    bench.add_argument("--data-dir", help="ftbench: a local copy of the sources, DIR/<task>/train.<ext> "
                       "(and test.<ext>) in each source's own schema (docs/ftbench.md)")
    bench.add_argument("--max-nodes", type=int, help="experiments per task beyond its base model")
    bench.add_argument(
        "--out", help="output folder (default runs/bench-<suite>-<time>); an existing one resumes"
    )
    bench.add_argument(
        "--json", action="store_true", help="last output line: one JSON object, a row per task"
    )
    bench.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS or a new local cluster)")
    bench.add_argument("overrides", nargs="*", help="overrides applied to every task, e.g. search.seed=1")
    bench.set_defaults(func=run)


def resolve(ref: str, overrides: list[str]) -> TaskSpec:
    """``trex run <suite>/<task>``: the suite's TaskSpec; a real task is checked for reachability."""
    try:
        suite, name = split_ref(ref)
        task = suite_task(ref)
        if suite == "ftbench":
            preflight(task, bench_task(name).analog)
    except (ValueError, BenchUnavailable) as exc:
        raise _user_error(str(exc)) from None
    return load_task(task.model_dump(mode="json"), overrides)


def task_lines() -> list[str]:
    """``trex tasks`` lines for both suites."""
    lines = []
    for suite in SUITES:
        lines.append(f"\nsuite {suite}:")
        lines += [f"  {ref:<26} {text}" for ref, text in list_suite_tasks(suite)]
    return lines


def _selected(args: argparse.Namespace) -> list[str]:
    names = suite_tasks(args.suite)
    if not args.tasks:
        return names
    chosen = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in chosen if t not in names]
    if unknown or not chosen:
        raise _user_error(f"--tasks {args.tasks!r}: unknown {unknown}; use some of {','.join(names)}")
    return chosen


def bench_tasks(args: argparse.Namespace) -> dict[str, TaskSpec]:
    """The tasks to run, overrides applied; real tasks must be reachable."""
    overrides = list(args.overrides or [])
    if args.max_nodes is not None:
        overrides.append(f"budget.max_nodes={args.max_nodes}")
    if args.suite != "ftbench" and (args.model or args.data_dir):
        raise _user_error("--model and --data-dir are for --suite ftbench (the analogs use the tiny model)")
    tasks = {}
    for name in _selected(args):
        task = suite_task(f"{args.suite}/{name}")
        if args.suite == "ftbench":
            try:
                task = real_task(name, model=args.model, data_dir=args.data_dir)
            except ValueError as exc:
                raise _user_error(str(exc)) from None
            try:
                preflight(task, bench_task(name).analog)
            except BenchUnavailable as exc:
                raise _user_error(f"{exc} (all ten: `trex bench --suite ftbench-mini`)") from None
        tasks[name] = load_task(task.model_dump(mode="json"), overrides)
    return tasks


__all__ = ["add_bench_command", "bench_tasks", "is_suite_ref", "resolve", "task_lines"]
