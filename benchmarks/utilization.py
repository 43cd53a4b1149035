"""GPU-slot utilization of trex's dispatch loop on a simulated 4-node cluster with logical GPUs.

``ray.cluster_utils.Cluster``: a head without GPUs and ``--nodes`` worker nodes of ``--gpus-per-node``
logical GPUs. The real ``ResearcherActor`` runs ``--trials`` nodes; each node's ``run_plan`` (a test
hook, ``bench_hooks.setup_sleep``) holds one GPU through a Ray task for an uneven, seeded time in
``--sleep LO HI`` seconds. Every GPU-hold interval is recorded, so:

* ``busy_fraction`` = GPU-seconds held / (GPUs x (last release - first acquire));
* ``ideal_busy_fraction`` = the same for a zero-overhead list scheduler given the same durations in the
  same order (what the tail of uneven trials allows at best);
* ``dispatch_efficiency`` = busy_fraction / ideal_busy_fraction (trex's own waste);
* ``busy_fraction_while_work_left`` = the busy share up to the last dispatch (the tail excluded).

    python benchmarks/utilization.py --quick --json
"""

from __future__ import annotations

import argparse
import heapq
import logging
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from common import BENCH, ROOT, emit, machine


def _hf_eval(task: Any) -> Any:
    """The hooks replace evaluation, so the run's vLLM evaluator (``eval.backend: auto``) is not started."""
    return task.model_copy(update={"eval": task.eval.model_copy(update={"backend": "hf"})})


def start_cluster(nodes: int, gpus_per_node: int, cpus_per_node: int) -> Any:
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 2, "num_gpus": 0, "include_dashboard": False}
    )
    for _ in range(nodes):
        cluster.add_node(num_cpus=cpus_per_node, num_gpus=gpus_per_node)
    cluster.wait_for_nodes()
    return cluster


def run(
    trials: int,
    sleep: tuple[float, float],
    nodes: int,
    gpus_per_node: int,
    cpus_per_node: int,
) -> dict[str, Any]:
    import ray

    from trex_ray.ftbench.registry import builtin_task
    from trex_ray.runtime.env import worker_env
    from trex_ray.runtime.researcher_actor import ResearcherActor
    from trex_ray.spec import Budget, Resources
    from trex_ray.store import read_tree

    cluster = start_cluster(nodes, gpus_per_node, cpus_per_node)
    path = os.pathsep.join([str(ROOT), str(BENCH), os.environ.get("PYTHONPATH", "")])
    env = {
        **worker_env(),
        "PYTHONPATH": path,
        "TREX_BENCH_SLEEP": f"{sleep[0]},{sleep[1]}",
        "TREX_BENCH_GPUS": "1",
    }
    run_dir = Path(tempfile.mkdtemp(prefix="trex-util-"))
    try:
        ray.init(
            address=cluster.address,
            namespace="trex",
            log_to_driver=False,
            logging_level=logging.WARNING,
            runtime_env={"env_vars": env, "worker_process_setup_hook": "bench_hooks.setup_sleep"},
        )
        task = _hf_eval(builtin_task("sentiment")).model_copy(
            update={
                "budget": Budget(max_nodes=trials - 1),  # + the root
                "resources": Resources(cpus_per_worker=0.25, gpus_per_worker=1),
            }
        )
        actor = ResearcherActor.remote(
            str(run_dir / "run"),
            task.model_dump(mode="json"),
            "util",
            str(run_dir),
            str(run_dir / "cache"),
        )
        ray.get(actor.ping.remote(), timeout=600)
        t0 = time.time()
        out = ray.get(actor.run.remote(), timeout=3600)
        ray.kill(actor)
        wall = time.time() - t0
        tree = read_tree(run_dir / "run")
        total_gpus = int(ray.cluster_resources().get("GPU", 0))
    finally:
        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(run_dir, ignore_errors=True)
    return {
        **measure(tree, total_gpus),
        "wall_s": round(wall, 1),
        "peak_running": out.get("peak_running"),
        "reason": out.get("reason"),
    }


def measure(tree: Any, gpus: int) -> dict[str, Any]:
    """Busy fractions from the GPU-hold intervals the hook recorded in each result's provenance."""
    held = []
    for n in sorted(tree, key=lambda n: int(n.id[1:])):
        h = (n.result.provenance.get("held") if n.result is not None else None) or None
        if h:
            held.append((h["start"], h["end"], h["gpus"], n.started_at or h["start"], h.get("entered")))
    if not held:
        return {"busy_fraction": None, "trials": 0}
    first, last = min(h[0] for h in held), max(h[1] for h in held)
    busy = sum((e - s) * g for s, e, g, *_ in held)
    fraction = busy / (gpus * (last - first))
    last_dispatch = max(h[0] for h in held)
    busy_before = sum((min(e, last_dispatch) - s) * g for s, e, g, *_ in held if s < last_dispatch)
    ideal = ideal_busy([e - s for s, e, *_ in sorted(held, key=lambda h: h[3])], gpus)
    waits = [h[0] - h[3] for h in held]  # node_started (journal) -> GPU acquired
    entered = [h[4] - h[3] for h in held if h[4] is not None]  # node_started -> run_plan called
    return {
        "trials": len(held),
        "gpus": gpus,
        "busy_fraction": round(fraction, 4),
        "ideal_busy_fraction": round(ideal, 4),
        "dispatch_efficiency": round(fraction / ideal, 4),
        "busy_fraction_while_work_left": round(busy_before / (gpus * (last_dispatch - first)), 4)
        if last_dispatch > first
        else None,
        "span_s": round(last - first, 1),
        "gpu_seconds_held": round(busy, 1),
        "start_to_gpu_s_median": round(statistics.median(waits), 3),
        "start_to_run_plan_s_median": round(statistics.median(entered), 3) if entered else None,
    }


def ideal_busy(durations: list[float], slots: int) -> float:
    """Busy fraction of a zero-overhead list scheduler running these durations in order on ``slots``."""
    free = [0.0] * slots
    end = 0.0
    for d in durations:
        t = heapq.heappop(free)
        heapq.heappush(free, t + d)
        end = max(end, t + d)
    return sum(durations) / (slots * end) if end else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="32 trials of 3-12 s")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--trials", type=int, default=None)
    ap.add_argument("--sleep", type=float, nargs=2, default=None, metavar=("LO", "HI"))
    ap.add_argument("--nodes", type=int, default=4)
    ap.add_argument("--gpus-per-node", type=int, default=2)
    ap.add_argument("--cpus-per-node", type=int, default=2)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    trials = args.trials or (32 if args.quick else 96)
    sleep = tuple(args.sleep) if args.sleep else ((3.0, 12.0) if args.quick else (10.0, 40.0))
    t0 = time.perf_counter()
    load = os.getloadavg()
    result = run(trials, sleep, args.nodes, args.gpus_per_node, args.cpus_per_node)  # type: ignore[arg-type]
    summary = {
        "benchmark": "utilization",
        "mode": "quick" if args.quick else "full",
        "nodes": args.nodes,
        "gpus_per_node": args.gpus_per_node,
        "sleep_s": list(sleep),
        **result,
        "load_before": [round(x, 2) for x in load],
        "bench_wall_s": round(time.perf_counter() - t0, 1),
        "machine": machine(),
    }
    emit(summary, args.json, f"utilization-{summary['mode']}.json")


if __name__ == "__main__":
    main()
