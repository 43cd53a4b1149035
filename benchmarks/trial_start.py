"""The fixed cost of a trial on Ray Train: ``fit()`` to the loop, and the loop to ``fit()``'s return.

Runs trex's ``RayTrainLauncher`` (a ``TorchTrainer``, one worker) on a loop that only imports what the
real loop imports (torch, deepspeed, transformers) and returns, once per Ray Train controller poll
interval asked for (``RAY_TRAIN_HEALTH_CHECK_INTERVAL_S``; Ray's default is 2 s, trex's runtime
environment sets 0.25 s). Per trial:

* ``to_worker_s``  — ``fit()`` called → the worker process exists (controller, placement group, spawn);
* ``to_loop_s``    — ... → the loop runs (worker boot, process group, the train function unpickled);
* ``imports_s``    — the loop's own imports (paid by every real trial too);
* ``after_loop_s`` — the loop returned → ``fit()`` returned (report, controller polls, shutdown).

    python benchmarks/trial_start.py --quick --json
    python benchmarks/trial_start.py --trials 5 --gpus 1 --json    # on a GPU machine
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from typing import Any

from common import emit, machine


def _process_start() -> float:
    """This process's start time (epoch seconds), from /proc."""
    ticks = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19])
    boot = next(float(line.split()[1]) for line in open("/proc/stat") if line.startswith("btime"))
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def loop(config: dict[str, Any]) -> dict[str, Any]:
    entered = time.time()
    import deepspeed  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401

    return {"created": _process_start(), "entered": entered, "imported": time.time(),
            "left": time.time(), "interval": os.environ.get("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S")}


def measure(interval: float, trials: int, gpus: int, cpus: int) -> dict[str, Any]:
    import ray

    from trex_ray.runtime.env import worker_env
    from trex_ray.runtime.train_launcher import RayTrainLauncher

    env = {**worker_env(), "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": str(interval)}
    ray.init(num_cpus=cpus, num_gpus=gpus, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": env})
    rows = []
    try:
        storage = tempfile.mkdtemp(prefix="trex-trial-start-")
        for i in range(trials):
            launcher = RayTrainLauncher(num_workers=1, cpus_per_worker=1, gpus_per_worker=min(gpus, 1),
                                        storage_path=storage, name=f"start-{i}")
            t0 = time.time()
            r = launcher.launch(loop, {})
            t1 = time.time()
            assert r["interval"] == str(interval), r
            rows.append({"total_s": t1 - t0, "to_worker_s": r["created"] - t0, "to_loop_s": r["entered"] - t0,
                         "imports_s": r["imported"] - r["entered"], "after_loop_s": t1 - r["left"]})
    finally:
        ray.shutdown()
    keys = rows[0].keys()
    return {"interval_s": interval, "trials": rows,
            "median": {k: round(statistics.median(r[k] for r in rows), 2) for k in keys}}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=5, help="trials per poll interval (the first is cold)")
    p.add_argument("--intervals", type=float, nargs="+", default=[2.0, 0.25])
    p.add_argument("--gpus", type=int, default=0)
    p.add_argument("--cpus", type=int, default=os.cpu_count() or 2)
    p.add_argument("--quick", action="store_true", help="3 trials per interval")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    trials = 3 if args.quick else args.trials
    runs = [measure(i, trials, args.gpus, args.cpus) for i in args.intervals]
    summary = {"benchmark": "trial_start", "machine": machine(), "gpus": args.gpus,
               "median_total_s": {str(r["interval_s"]): r["median"]["total_s"] for r in runs},
               "median_after_loop_s": {str(r["interval_s"]): r["median"]["after_loop_s"] for r in runs},
               "runs": runs}
    out_name = None if args.quick else f"trial_start-{'gpu' if args.gpus else 'cpu'}.json"
    emit(summary, args.json, out_name=out_name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
