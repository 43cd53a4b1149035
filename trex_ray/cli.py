"""The ``trex`` command: run, resume, status, report, export, serve, tasks.

    trex run sentiment --max-nodes 10
    trex run task.yaml --run-dir runs/mine budget.compute_seconds=600
    trex resume runs/mine
    trex report runs/mine --format json
    trex export runs/mine --node best --out models/mine --merge
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import trex_ray.ftbench  # noqa: F401  (registers the built-in data every command may read: spec/builtin.py)
from trex_ray.spec import SpecError, TaskSpec, load_task
from trex_ray.spec.uri import credentials_error
from trex_ray.store.lease import LeaseHeld

log = logging.getLogger("trex")


class UserError(Exception):
    """Bad input: printed as one line, exit code 2."""


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    # `trex run TASK --max-nodes 3 key=value`: overrides may follow the options.
    if extra and isinstance(getattr(args, "overrides", None), list) and all(
        "=" in e and not e.startswith("-") for e in extra
    ):
        args.overrides += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        _check_location(getattr(args, "run_dir", None), "--run-dir" if args.command == "run" else "RUN_DIR")
        return int(args.func(args) or 0)
    except (UserError, SpecError, LeaseHeld) as exc:
        print(f"trex: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("trex: interrupted; `trex resume RUN_DIR` continues the run", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("TREX_DEBUG"):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"trex: error: {type(exc).__name__}: {first} (set TREX_DEBUG=1 for a traceback)",
              file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="trex", description="Tree search for LLM fine-tuning, on Ray.")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a search on a task (a built-in name or a YAML file)")
    run.add_argument("task", help="built-in task name (see `trex tasks`) or path to a task YAML")
    run.add_argument("overrides", nargs="*", help="task overrides, e.g. budget.max_nodes=8")
    run.add_argument("--max-nodes", type=int, help="experiments to run beyond the base model")
    run.add_argument("--run-dir", help="where the run lives: a folder or a bucket URI such as "
                     "s3://bucket/trex/my-run (default: <storage_path>/<task>-<time>)")
    run.add_argument("--planner", help="planner name (default: heuristic)")
    _llm_cli().add_run_options(run)
    run.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS or a new local cluster)")
    run.add_argument("--quiet", action="store_true", help="no live display")
    run.set_defaults(func=cmd_run)

    resume = sub.add_parser("resume", help="continue a stopped, crashed or finished run")
    resume.add_argument("run_dir")
    resume.add_argument("overrides", nargs="*", help="a new budget, e.g. budget.max_nodes=24 "
                        "(budget.* only: it extends the run, a finished one too)")
    resume.add_argument("--address")
    resume.add_argument("--quiet", action="store_true")
    resume.set_defaults(func=cmd_resume)

    status = sub.add_parser("status", help="state of a run: from its live Researcher when the cluster "
                            "answers, else read from its journal")
    status.add_argument("run_dir")
    status.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS or the run's own hint)")
    status.set_defaults(func=cmd_status)

    report = sub.add_parser("report", help="leaderboard and summary of a run")
    report.add_argument("run_dir")
    report.add_argument("--format", choices=["text", "json", "html", "png"], default="text",
                        help="html: one offline explorer page; png: plots for docs")
    report.add_argument("--out", help="html: the file (default RUN_DIR/explorer.html); png: the folder "
                        "(default RUN_DIR/plots)")
    report.set_defaults(func=cmd_report)

    serve = sub.add_parser("serve", help="the tree explorer on http://127.0.0.1, live while the run goes")
    serve.add_argument("run_dir")
    serve.add_argument("--port", type=int, default=8765, help="0 picks a free port (default 8765)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="interface to bind (default 127.0.0.1: this machine only)")
    serve.set_defaults(func=cmd_serve)

    export = sub.add_parser("export", help="a node of a run as a Hugging Face folder with a model card")
    export.add_argument("run_dir")
    export.add_argument("--node", default="best", help="a node id, or best (on validation; the default)")
    export.add_argument("--out", required=True, help="the folder to write (new or empty)")
    export.add_argument("--merge", action="store_true",
                        help="a LoRA node: merge the adapter into its base (else the adapter alone)")
    export.set_defaults(func=cmd_export)

    _llm_cli().add_draft_command(sub, profiler=_draft_profile)
    _bench_cli().add_bench_command(sub, run=_cmd_bench)

    tasks = sub.add_parser("tasks", help="list built-in tasks and the FT-Bench suites")
    tasks.set_defaults(func=cmd_tasks)
    return p


def _bench_cli():  # type: ignore[no-untyped-def]
    from trex_ray.ftbench import cli  # `trex bench`'s arguments, <suite>/<task> names for `trex run`

    return cli


def _cmd_bench(args: argparse.Namespace) -> int:
    from trex_ray.runtime.bench import cmd_bench  # the sweep on Ray

    return cmd_bench(args)


def _llm_cli():  # type: ignore[no-untyped-def]
    from trex_ray.research.llm import cli  # `trex draft` and --model/--api-base/--notes (no litellm import)

    return cli


def _draft_profile(task: TaskSpec) -> dict[str, Any]:
    from trex_ray.execute.profile import draft_profile

    return draft_profile(task)


def resolve_task(name_or_path: str, overrides: list[str]) -> TaskSpec:
    from trex_ray.ftbench import builtin_task, list_builtin_tasks

    names = [n for n, _ in list_builtin_tasks()]
    if _bench_cli().is_suite_ref(name_or_path) and not Path(name_or_path).exists():
        return _bench_cli().resolve(name_or_path, overrides)
    if name_or_path in names and not Path(name_or_path).exists():
        return load_task(builtin_task(name_or_path).model_dump(mode="json"), overrides)
    if not Path(name_or_path).exists():
        raise UserError(f"task {name_or_path!r}: no such file or built-in task; "
                        f"built-ins: {', '.join(names)}")
    return load_task(name_or_path, overrides)


def _check_location(location: str | None, flag: str) -> None:
    """A run location with credentials in it is refused before anything reads or writes it."""
    error = credentials_error(location, flag)
    if error is not None:
        raise UserError(error)


def cmd_run(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    if args.max_nodes is not None:
        overrides.append(f"budget.max_nodes={args.max_nodes}")
    if args.planner:
        overrides.append(f"search.planner={args.planner}")
    overrides += _llm_cli().llm_overrides(args)
    task = _with_env_tracking(resolve_task(args.task, overrides))
    _check_planner(task)
    if args.run_dir and _has_run(args.run_dir):
        raise UserError(f"--run-dir {args.run_dir}: a run already lives there; "
                        f"use `trex resume {args.run_dir}`")
    task, run_dir = _preflight(task, args.run_dir)
    return _run(task, run_dir, args.address, not args.quiet)


def _with_env_tracking(task: TaskSpec) -> TaskSpec:
    """``MLFLOW_TRACKING_URI``, as MLflow's own clients honour it, when the task names no MLflow URI;
    recorded in the run's task, so that its actors and a resume use the same one."""
    from trex_ray.spec.task import TrackingSpec

    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if task.tracking.mlflow is not None or not uri:
        return task
    tracking = TrackingSpec.model_validate({**task.tracking.model_dump(), "mlflow": uri})
    return task.model_copy(update={"tracking": tracking})


def _preflight(task: TaskSpec, run_dir: str | None) -> tuple[TaskSpec, str]:
    """Check the data against the model and measure it, before Ray starts or any budget is spent."""
    from trex_ray.execute.preflight import PreflightError, preflight
    from trex_ray.runtime.paths import RunPaths

    paths = RunPaths.for_run(task, run_dir)
    try:
        task, notes = preflight(task, paths.cache_dir)
    except PreflightError as exc:
        raise UserError(str(exc)) from None
    for note in notes:
        print(f"trex: {note}", file=sys.stderr)
    return task, str(paths.location)


def cmd_resume(args: argparse.Namespace) -> int:
    task = resume_task(args.run_dir, list(args.overrides))
    return _run(task, args.run_dir, args.address, not args.quiet)


def resume_task(run_dir: str, overrides: list[str]) -> TaskSpec:
    """The task a run was started with (its budget as last changed), with ``budget.*`` overrides."""
    from trex_ray.store import read_tree

    for item in overrides:
        key = item.partition("=")[0]
        if not key.startswith("budget.") or key == "budget.":
            raise UserError(f"override {key!r}: only budget.* may change on resume (e.g. "
                            "budget.max_nodes=24); start a new run to change anything else")
    try:
        recorded = read_tree(run_dir).meta["task"]
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None
    return load_task(recorded, overrides)


def _run(task: TaskSpec, run_dir: str | None, address: str | None, live: bool) -> int:
    from trex_ray.report import leaderboard, summary, verdict
    from trex_ray.report.text import untrained_reason
    from trex_ray.runtime.driver import run

    tree, path = run(task, run_dir, address=address, live=live)
    info = summary(tree, task)
    print(leaderboard(tree, task))
    best = info["best"]
    if best:
        print(f"\nbest on validation: {best['node_id']} {task.metric.name.value}={best['metric']:.4f} "
              f"(base {_fmt(info['base_metric'])}) — {best['plan']}")
    print(f"nodes: {info['finished_nodes']} finished, {info['counts']}; peak running at once: "
          f"{info['peak_concurrency']}; stopped because: {info['stop_reason']}")
    print(verdict(tree, task))
    print(f"run lives in {path}")
    failure = untrained_reason(tree, task)
    if failure is not None:  # a search that trained nothing is not a success
        print(f"trex: error: {failure}; see `trex report {path}`", file=sys.stderr)
        return 1
    return 0


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _check_planner(task: TaskSpec) -> None:
    from trex_ray.research import planner_names

    if task.search.planner not in planner_names():
        raise UserError(f"search.planner: unknown planner {task.search.planner!r}; "
                        f"use one of {planner_names()}")


def _load_tree(run_dir: str):  # type: ignore[no-untyped-def]
    from trex_ray.store import read_run

    try:
        return read_run(run_dir)
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None


def _has_run(run_dir: str) -> bool:
    from trex_ray.store import Store

    return Store(run_dir, readonly=True).backend.exists()


def cmd_status(args: argparse.Namespace) -> int:
    from trex_ray.report import leaderboard, summary
    from trex_ray.report.text import checkpoint_usage, usage_line
    from trex_ray.runtime.live import live_status

    live = live_status(args.run_dir, args.address)
    task, tree = _load_tree(args.run_dir)
    info = live or summary(tree, task)
    if live is not None:
        running = [n["id"] for n in live["nodes"] if n["status"] == "running"]
        state = f"live (Researcher actor answering); running {', '.join(running) or 'nothing'}"
    elif info["stop_reason"]:
        state = f"finished ({info['stop_reason']})"
    else:
        state = "in progress or interrupted (no live Researcher reached; read from the store)"
    print(f"run {info['run_id']} of {task.name}: {state}; nodes {info['counts']}")
    print(usage_line(checkpoint_usage(tree)))
    print(leaderboard(tree, task))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from trex_ray.report import leaderboard, summary

    if args.format in ("html", "png"):
        return _report_files(args)
    task, tree = _load_tree(args.run_dir)
    if args.format == "json":
        print(json.dumps(summary(tree, task), default=str))
    else:
        print(leaderboard(tree, task, top=len(tree)))
        for text in summary(tree, task)["insights"]:
            print(f"  insight: {text}")
    return 0


def _report_files(args: argparse.Namespace) -> int:
    if "://" in args.run_dir:
        raise UserError(f"--format {args.format} reads a local run folder; for a stored run use "
                        "--format text or json")
    if not _has_run(args.run_dir):
        raise UserError(f"{args.run_dir}: not a trex run directory (no journal); "
                        "give the folder `trex run` printed")
    if args.format == "html":
        from trex_ray.report.html import write_html

        print(write_html(args.run_dir, args.out))
    else:
        from trex_ray.report.plots import write_pngs

        for path in write_pngs(args.run_dir, args.out or Path(args.run_dir) / "plots"):
            print(path)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from trex_ray.report.serve import make_server

    try:
        server = make_server(args.run_dir, port=args.port, host=args.host)
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"--port {args.port}: cannot listen ({exc.strerror}); try --port 0") from None
    print(f"trex explorer of {args.run_dir} at {server.url}  (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from trex_ray.execute.export import ExportError, export_kind, export_model, resolve_source
    from trex_ray.report.card import model_card
    from trex_ray.report.export import ChoiceError, choose
    from trex_ray.runtime.paths import RunPaths

    task, _ = _load_tree(args.run_dir)
    try:
        choice = choose(args.run_dir, args.node)
        cache_dir = RunPaths.for_run(task, args.run_dir).cache_dir
        source = resolve_source(choice.checkpoint, choice.adapter, task.model, cache_dir)
        kind = export_kind(source, args.merge)
        base = source.base_ref if kind == "adapter" else task.model.id
        card = model_card(choice.tree, task, choice.node, base, kind)
        info = export_model(source, Path(args.out), args.merge, card, choice.meta)
    except (ChoiceError, ExportError) as exc:
        raise UserError(str(exc)) from None
    scores = f"validation {_fmt(info['val_metric'])}, test {_fmt(info['test_metric'])}"
    print(f"exported {info['node_id']} ({info['kind']}; {info['metric']} {scores}) to {args.out}")
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    from trex_ray.execute.embedded import DEFAULT_EMBEDDED, EMBEDDED
    from trex_ray.ftbench import list_builtin_tasks

    print("models:")
    for name, model in EMBEDDED.items():
        default = " (the default model)" if name == DEFAULT_EMBEDDED else ""
        print(f"  builtin:{name:<16} {model.title}; {model.licence}; from {model.pip}{default}")
    print("  builtin:tiny-llama       random weights, a word-level tokenizer: for fast tests only")
    print("tasks:")
    for name, description in list_builtin_tasks():
        print(f"  {name:<16} {description}")
    for line in _bench_cli().task_lines():
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
