"""Test hooks for ``overhead.py`` and ``utilization.py``: in every Ray worker, ``run_plan`` is replaced.

Installed through ``runtime_env={"worker_process_setup_hook": "bench_hooks.setup_noop"}`` (or
``setup_sleep``). The dispatch path stays real (ResearcherActor, a NodeRunner actor per node, the
job, the progress relay, the result back into the journal); only data, training and evaluation are
replaced:

* ``setup_noop``  — ``run_plan`` returns a finished result at once;
* ``setup_launch`` — ``run_plan`` launches the trial's Ray Train run (``ctx.launcher``: a TorchTrainer
  with the trial's resources, as a real trial does) with a loop that returns at once: the real trial
  launch, nothing trained;
* ``setup_sleep`` — ``run_plan`` holds ``TREX_BENCH_GPUS`` GPUs (a Ray task asking for them) for an
  uneven, seeded number of seconds in ``TREX_BENCH_SLEEP`` (``"lo,hi"``) and records the interval
  (a node that trains nothing, the base model, returns at once: it holds no trial slot).
"""

from __future__ import annotations

import os
import random
import time
from typing import Any


def _result(plan: Any, ctx: Any, **provenance: Any) -> Any:
    from trex_ray.spec import Cost, Outcome, Result

    metric = 0.5 + int(plan.hash[:6], 16) % 1000 / 4000.0  # distinct, deterministic scores
    return Result(
        outcome=Outcome.finished,
        metric=metric,
        metrics={"accuracy": metric},
        checkpoint=None if plan.train.mode.value == "none" else f"noop/{ctx.node_id}",
        cost=Cost(wall_seconds=0.0, compute_seconds=0.0),
        provenance=provenance,
    )


def noop_run_plan(plan: Any, ctx: Any) -> Any:
    return _result(plan, ctx)


def _hold(seconds: float) -> tuple[float, float, str]:
    import ray

    start = time.time()
    time.sleep(seconds)
    return start, time.time(), ray.get_runtime_context().get_node_id()


def sleep_run_plan(plan: Any, ctx: Any) -> Any:
    import ray

    entered = time.time()

    if plan.train.mode.value == "none":  # evaluation only (the base model): no trial slot, no GPU
        return _result(plan, ctx)
    lo, hi = (float(x) for x in os.environ.get("TREX_BENCH_SLEEP", "1,3").split(","))
    gpus = float(os.environ.get("TREX_BENCH_GPUS", "1"))
    seconds = random.Random(f"{ctx.node_id}:{plan.hash}").uniform(lo, hi)
    hold = ray.remote(num_cpus=0, num_gpus=gpus)(_hold)
    start, end, node = ray.get(hold.remote(seconds))
    held = {"start": start, "end": end, "gpus": gpus, "node": node, "entered": entered}
    return _result(plan, ctx, held=held)


def noop_loop(config: dict[str, Any]) -> dict[str, Any]:
    return {}


def launch_run_plan(plan: Any, ctx: Any) -> Any:
    if plan.train.mode.value != "none":  # the base model's evaluation launches no training
        ctx.launcher.launch(noop_loop, {})
    return _result(plan, ctx)


def setup_launch() -> None:
    import trex_ray.execute.run_plan as module

    module.run_plan = launch_run_plan


def setup_noop() -> None:
    import trex_ray.execute.run_plan as module

    module.run_plan = noop_run_plan


def setup_sleep() -> None:
    import trex_ray.execute.run_plan as module

    module.run_plan = sleep_run_plan
