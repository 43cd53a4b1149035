"""A test hook for ``overhead.py``: in every Ray worker, ``run_plan`` becomes a no-op.

Installed as ``runtime_env={"worker_process_setup_hook": "overhead_hook.setup"}``; the NodeRunner's
dispatch path (actor start, job shipping, launcher set-up, progress relay, result back) stays real,
only the data / training / evaluation work is skipped.
"""

from __future__ import annotations

from typing import Any


def noop_run_plan(plan: Any, ctx: Any) -> Any:
    from trex_ray.spec import Cost, Outcome, Result

    metric = 0.5 + int(plan.hash[:6], 16) % 1000 / 4000.0  # distinct, deterministic scores
    return Result(outcome=Outcome.finished, metric=metric, metrics={"accuracy": metric},
                  checkpoint=None if plan.train.mode.value == "none" else f"noop/{ctx.node_id}",
                  cost=Cost(wall_seconds=0.0, compute_seconds=0.0))


def setup() -> None:
    import trex_ray.execute.run_plan as module

    module.run_plan = noop_run_plan
