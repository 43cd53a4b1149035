"""Chaos: SIGKILL the driver N times at random moments, resume each time, count completed nodes lost.

    python benchmarks/chaos.py --kills 20            # ~15 min on 2 cores (tiny data)
    python benchmarks/chaos.py --kills 3 --json      # a smoke run

Each cycle starts `trex run` (then `trex resume`) in its own process group (the driver and the
local Ray cluster it starts), waits until the run is active again (a new journal event), then a
random time, and SIGKILLs the whole group: kills land mid-trial, mid-evaluation, mid-journal.
After every kill, and at the end (a last resume runs the search to its end), every node seen
completed before (a result in the journal) must still be there with the same outcome, metric
and checkpoint; a node missing or changed counts as lost. The journal's sequence numbers must
stay contiguous. Goal: 20 kills, 0 lost.

The summary also says how the search ended — trained nodes scored (a validation metric), outcomes,
the last resume's exit code and stop reason — and, per cycle, how long the (re)started run took to
reach each phase (`phases`: lease taken, Ray up, first journal event, first trial dispatched, first
progress report, first node finished), read from the run folder after the kill.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import ROOT, emit, machine

from trex_ray.store import Store, read_tree
from trex_ray.tree import SearchTree

TREX = [sys.executable, "-m", "trex_ray.cli"]
# Tiny data, HF generate (no vLLM engine to start again after every kill): trials of seconds.
TINY = ["data.train.0.limit=200", "data.eval.limit=50", "eval.backend=hf"]


def completed(run_dir: Path) -> dict[str, tuple[str, float | None, str | None]]:
    """Nodes with a result: id -> (outcome, metric, checkpoint)."""
    if not (run_dir / "journal.jsonl").is_file():
        return {}
    return {n.id: (n.result.outcome.value, n.result.metric, n.result.checkpoint)
            for n in read_tree(run_dir) if n.result is not None}


def lost_since(seen: dict[str, tuple[Any, ...]], now: dict[str, tuple[Any, ...]]) -> list[str]:
    return [node for node, record in seen.items() if now.get(node) != record]


def journal_lines(run_dir: Path) -> int:
    path = run_dir / "journal.jsonl"
    return path.read_bytes().count(b"\n") if path.is_file() else 0


def wait_active(proc: subprocess.Popen, run_dir: Path, before: int, timeout: float = 300) -> None:
    """Until the (re)started run writes an event: its cluster is up and its Researcher at work."""
    deadline = time.time() + timeout
    while journal_lines(run_dir) <= before and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)


# The first event of each kind after a (re)start marks a phase; "first_event" is the Researcher at work
# (re-queueing what the kill interrupted, or dispatching).
_PHASE_EVENTS = {"node_started": "first_dispatch", "node_progress": "first_progress",
                 "node_finished": "first_result"}


def phases(run_dir: Path, since: float) -> dict[str, float | None]:
    """Seconds from ``since`` (the process's launch) to each phase the run folder shows, None if not
    reached: ``lease`` (the lease file written: CLI imports, task read), ``ray_up`` (the driver's
    address hint: the local cluster started) — both read from files a killed driver leaves (one that
    ends normally clears them) — then the journal's first event and first event of each kind in
    ``_PHASE_EVENTS``."""
    out: dict[str, float | None] = {"lease": None, "ray_up": None, "first_event": None,
                                    **dict.fromkeys(_PHASE_EVENTS.values())}
    for key, name in (("lease", "lease"), ("ray_up", "ray_address")):
        path = run_dir / name
        if path.is_file() and path.stat().st_mtime >= since:
            out[key] = round(path.stat().st_mtime - since, 2)
    if not (run_dir / "journal.jsonl").is_file():
        return out
    for event in Store(run_dir, readonly=True).events():
        if event.time < since:
            continue
        if out["first_event"] is None:
            out["first_event"] = round(event.time - since, 2)
        key = _PHASE_EVENTS.get(event.kind.value)
        if key and out[key] is None:
            out[key] = round(event.time - since, 2)
    return out


def scored(tree: SearchTree) -> dict[str, Any]:
    """How the search ended: trained nodes with a validation metric, and every node's status."""
    trained = [n for n in tree if n.parent is not None]
    statuses: dict[str, int] = {}
    for node in trained:
        statuses[node.status.value] = statuses.get(node.status.value, 0) + 1
    return {"trained_nodes": len(trained), "trained_scored": sum(n.metric is not None for n in trained),
            "trained_by_status": statuses, "base_scored": tree.get("n0").metric is not None}


def contiguous(run_dir: Path) -> bool:
    seqs = [e.seq for e in Store(run_dir, readonly=True).events()]
    return seqs == list(range(len(seqs)))


def _group_pids(pgid: int) -> list[int]:
    """Processes of the driver's group or session: Ray 2.60 puts each worker (Researcher, NodeRunners,
    Ray Train's controller and workers) in a process group of its own, and a worker whose raylet was
    SIGKILLed lives on for a minute or two (training, holding its memory); the session still names it."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if pgid in (int(fields[2]), int(fields[3])) and fields[0] != "Z":
                pids.append(int(proc.name))
    return pids


def kill_group(proc: subprocess.Popen) -> int:
    """SIGKILL the driver's process group, then every process of its session (the Ray workers), by pid,
    until none is left. Returns how many outlived 20 s."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 20
    while (left := _group_pids(proc.pid)) and time.time() < deadline:
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.5)
    return len(_group_pids(proc.pid))


def start(run_dir: Path, first: bool, max_nodes: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    if first:
        cmd = [*TREX, "run", "sentiment", "--run-dir", str(run_dir), "--max-nodes", str(max_nodes),
               "--quiet", *TINY]
    else:
        cmd = [*TREX, "resume", str(run_dir), "--quiet"]
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                cwd=ROOT)


def chaos(kills: int, max_nodes: int, low: float, high: float, seed: int, work: Path,
          retries: int = 0) -> dict[str, Any]:
    rng = random.Random(seed)
    run_dir, log = work / "run", work / "chaos.log"
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "TREX_TEST_FAULTS")}
    env.setdefault("TREX_CACHE_DIR", str(work / "cache"))
    seen: dict[str, tuple[Any, ...]] = {}
    lost: set[str] = set()
    cycles: list[dict[str, Any]] = []
    done_early, killed = False, 0
    t0 = time.time()
    for i in range(kills):
        fresh = not (run_dir / "journal.jsonl").exists()  # killed before its first event: run again
        before, launched = journal_lines(run_dir), time.time()
        proc = start(run_dir, first=fresh, max_nodes=max_nodes, env=env, log=log)
        wait_active(proc, run_dir, before)
        delay = rng.uniform(low, high)
        try:
            proc.wait(timeout=delay)
            done_early = True  # the search ended before this kill: nothing left to kill
        except subprocess.TimeoutExpired:
            pass
        leftovers = 0
        if not done_early:
            leftovers, killed = kill_group(proc), killed + 1
        now = completed(run_dir)
        lost |= set(lost_since(seen, now))
        seen |= now
        intact = contiguous(run_dir) if now else True
        cycles.append({"cycle": i + 1, "resume": not fresh, "delay_s": round(delay, 1),
                       "alive_s": round(time.time() - launched, 1), "completed": len(now),
                       "leftover_pids": leftovers, "journal_contiguous": intact,
                       "phases": phases(run_dir, launched)})
        print(f"kill {i + 1}/{kills} after {delay:.0f} s: {len(now)} nodes completed, "
              f"lost so far {len(lost)}; phases {cycles[-1]['phases']}", flush=True)
        if done_early:
            break
    # The last resume runs the search to its end. One that ends with the run unfinished (the machine's
    # memory ran out and Ray's memory monitor killed the Researcher past its restarts, as on a shared box)
    # is resumed again, as an operator would, up to `retries` times; each is reported.
    finals: list[dict[str, Any]] = []
    for _ in range(1 + retries):
        launched = time.time()
        final = start(run_dir, first=not (run_dir / "journal.jsonl").exists(), max_nodes=max_nodes, env=env,
                      log=log)
        final_rc = final.wait(timeout=3600)
        finals.append({"rc": final_rc, "wall_s": round(time.time() - launched, 1),
                       "phases": phases(run_dir, launched)})
        if read_tree(run_dir).finished_reason is not None:
            break
    end = completed(run_dir)
    lost |= set(lost_since(seen, end))
    tree = read_tree(run_dir)
    return {
        "kills": killed,
        "resumes": len(cycles),  # the restarts after a kill, the last one included
        "completed_nodes_lost": len(lost),
        "lost": sorted(lost),
        "nodes_completed_at_end": len(end),
        "nodes_in_tree": len(tree),
        "all_done": all(n.status.done for n in tree),
        "finished_reason": tree.finished_reason,
        "final_rc": final_rc,
        "max_nodes": max_nodes,
        **scored(tree),
        "final_resumes": finals,
        "journal_contiguous": contiguous(run_dir) and all(c["journal_contiguous"] for c in cycles),
        "leftover_pids": sum(c["leftover_pids"] for c in cycles),
        "search_ended_before_last_kill": done_early,
        "wall_s": round(time.time() - t0, 1),
        "cycles": cycles,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--max-nodes", type=int, default=40, help="the search's node budget")
    p.add_argument("--min-delay", type=float, default=0.0,
                   help="seconds from the run's first new event to the kill: low")
    p.add_argument("--max-delay", type=float, default=60.0, help="... and high")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--retries", type=int, default=0,
                   help="resume again when the last resume ends with the run unfinished (reported)")
    p.add_argument("--work-dir", help="default: a new temp folder")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="trex-chaos-"))
    work.mkdir(parents=True, exist_ok=True)
    result = chaos(args.kills, args.max_nodes, args.min_delay, args.max_delay, args.seed, work, args.retries)
    summary = {"benchmark": "chaos", "machine": machine(), "command": " ".join(sys.argv),
               "work_dir": str(work), **result}
    name = "chaos.json" if (args.kills, args.max_nodes) == (20, 40) else \
        f"chaos-k{args.kills}-n{args.max_nodes}.json"
    emit(summary, args.json, out_name=name if args.kills >= 10 else None)
    ok = (summary["completed_nodes_lost"] == 0 and summary["all_done"] and summary["final_rc"] == 0
          and summary["trained_scored"] > 0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
