"""Resume to first result: how long `trex resume` takes, phase by phase, after a kill mid-trial.

    python benchmarks/resume_time.py --reps 4 --json                        # this checkout
    python benchmarks/resume_time.py --reps 4 --code /tmp/before --code ..  # two code trees, alternating

One run of the built-in sentiment task (tiny model, 200 training / 50 eval rows, HF evaluation: chaos.py's
settings) is started and its driver's process group SIGKILLed as soon as a trial has reported progress:
a kill mid-trial, and the run folder as the kill left it is kept. Then, for each repetition and each code
tree in turn (ABBA: the order flips every repetition), that folder is copied back, `trex resume` is launched,
timed until its first node finished (a `node_finished` event: finished or stopped early) and killed: every
resume starts from the same state (the same trials in flight, the same data cache) and does the same work.
The phases (`chaos.phases`, seconds from the launch): lease taken, Ray up, first journal event (the
Researcher at work), first trial dispatched, first progress report (a trial is training), first node
finished. The machine is shared: the load average is recorded with every resume.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from chaos import TINY, kill_group, phases
from common import ROOT, emit, machine

from trex_ray.store import Store

PHASES = ("lease", "ray_up", "first_event", "first_dispatch", "first_progress", "first_result")


def launch(code: Path, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    env = {**env, "PYTHONPATH": str(code)}
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "trex_ray.cli", *args], env=env, cwd=code,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def wait_event(proc: subprocess.Popen, run_dir: Path, kind: str, since: float, timeout: float) -> bool:
    """Until the journal has an event of ``kind`` written after ``since``; False if the run ended first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if (run_dir / "journal.jsonl").is_file() and any(
                e.kind.value == kind and e.time >= since for e in Store(run_dir, readonly=True).events()):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.5)
    return False


def one_resume(code: Path, run_dir: Path, env: dict[str, str], log: Path, timeout: float) -> dict[str, Any]:
    load = [round(x, 2) for x in os.getloadavg()]
    launched = time.time()
    proc = launch(code, ["resume", str(run_dir), "--quiet"], env, log)
    wait_event(proc, run_dir, "node_finished", launched, timeout)
    ended = proc.poll() is not None  # else killed at once, with the other slot's trial in flight
    if not ended:
        kill_group(proc)
    return {"code": str(code), "load_1_5_15": load, "search_ended": ended, **phases(run_dir, launched),
            "first_node": _first_result(run_dir, launched)}


def _first_result(run_dir: Path, since: float) -> dict[str, Any] | None:
    """The first node that finished after ``since``: its outcome, wall time and its trial's own timings
    (prepare, Ray Train, the loop's load and training, evaluation)."""
    for event in Store(run_dir, readonly=True).events():
        if event.kind.value == "node_finished" and event.time >= since:
            result = event.payload["result"]
            return {"node": event.node_id, "outcome": result["outcome"],
                    "wall_s": round(result["cost"]["wall_seconds"], 1),
                    "timings": (result.get("provenance") or {}).get("timings")}
    return None


def measure(codes: list[Path], reps: int, max_nodes: int, timeout: float, work: Path) -> dict[str, Any]:
    run_dir, log = work / "run", work / "resume_time.log"
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "TREX_TEST_FAULTS")}
    env.setdefault("TREX_CACHE_DIR", str(work / "cache"))
    started = time.time()
    first = launch(codes[0], ["run", "sentiment", "--run-dir", str(run_dir), "--max-nodes", str(max_nodes),
                              "--quiet", *TINY], env, log)
    if not wait_event(first, run_dir, "node_progress", started, timeout):
        if first.poll() is None:
            kill_group(first)
        raise SystemExit(f"the first run never reported progress; see {log}")
    kill_group(first)
    template = work / "killed"
    shutil.copytree(run_dir, template, symlinks=True)
    resumes = []
    for rep in range(reps):
        for code in (codes if rep % 2 == 0 else codes[::-1]):
            shutil.rmtree(run_dir)
            shutil.copytree(template, run_dir, symlinks=True)
            row = {"rep": rep + 1, **one_resume(code, run_dir, env, log, timeout)}
            resumes.append(row)
            print(f"rep {rep + 1} {code}: {row}", flush=True)
            if row["search_ended"]:
                raise SystemExit("the search ended: raise --max-nodes")
    medians = {str(code): _medians([r for r in resumes if r["code"] == str(code)]) for code in codes}
    return {"resumes": resumes, "median_s": medians}


def _medians(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key in PHASES:
        values = [r[key] for r in rows if r[key] is not None]
        out[key] = round(statistics.median(values), 1) if values else None
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=4, help="resumes per code tree")
    p.add_argument("--code", action="append", type=Path,
                   help="a source tree of trex_ray to resume with (repeatable: resumes alternate); "
                        "default: this checkout")
    p.add_argument("--max-nodes", type=int, default=60, help="the run's node budget (never reached)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds a phase may take")
    p.add_argument("--work-dir", help="default: a new temp folder")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    codes = [c.resolve() for c in (args.code or [ROOT])]
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="trex-resume-"))
    work.mkdir(parents=True, exist_ok=True)
    result = measure(codes, args.reps, args.max_nodes, args.timeout, work)
    summary = {"benchmark": "resume_time", "machine": machine(), "command": " ".join(sys.argv),
               "work_dir": str(work), **result}
    emit(summary, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
