"""A prototype, not trex yet: the dispatch loop with a warm pool of NodeRunner actors, reused across nodes.

trex's ``ResearcherActor`` starts a fresh ``NodeRunner`` actor per node and kills it once the result
is in; on a busy machine the new worker process and its imports (torch, transformers) cost seconds
per node. This loop is the same loop (the pure ``Researcher``: ``next_nodes`` -> ``NodeRunner.run`` ->
``ray.wait`` -> ``on_result``) with ``slots`` NodeRunners made once and reused, so ``overhead.py``
and ``utilization.py`` can measure what reuse would save (``--runner-pool``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any


def run_pooled(task: Any, run_dir: Path, cache_dir: Path, slots: int) -> dict[str, Any]:
    import ray

    from trex_ray.research import Researcher
    from trex_ray.runtime.node_runner import NodeJob, NodeRunner
    from trex_ray.spec import Result, TrainMode

    t0 = time.perf_counter()
    researcher = Researcher.open(run_dir, task, profile={}, run_id=run_dir.name)
    runners = [NodeRunner.remote() for _ in range(slots)]
    ray.get([r.__ray_ready__.remote() for r in runners])
    setup = time.perf_counter() - t0
    t1 = time.perf_counter()
    free, running, peak = list(runners), {}, 0
    while True:
        for node in researcher.next_nodes(len(free)):
            parent = researcher.tree.get(node.parent) if node.parent else None
            warm = bool(node.plan.train.warm_start and parent is not None and parent.result is not None)
            job = NodeJob(
                node_id=node.id,
                plan=node.plan.model_dump(mode="json"),
                task=task.model_dump(mode="json"),
                work_dir=str(run_dir / "nodes" / node.id),
                cache_dir=str(cache_dir),
                storage_path=str(run_dir.parent),
                parent_checkpoint=parent.result.checkpoint if warm and parent and parent.result else None,
                parent_adapter=bool(warm and parent and parent.plan.train.mode is TrainMode.lora),
                attempt=node.attempts,
                checkpoint_location=str(run_dir / "nodes" / node.id / "checkpoint"),
            )
            runner = free.pop()
            running[runner.run.remote(job, None, None)] = (node.id, runner)
        peak = max(peak, len(running))
        if not running:
            break
        ready, _ = ray.wait(list(running), num_returns=1)
        for ref in ready:
            node_id, runner = running.pop(ref)
            researcher.on_result(node_id, Result.model_validate(ray.get(ref)))
            free.append(runner)
    reason = researcher.stop_reason() or "nothing left to try"
    researcher.finish(reason)
    wall = time.perf_counter() - t1
    for r in runners:
        ray.kill(r)
    return {"wall_s": round(wall, 2), "setup_s": round(setup, 2), "peak_running": peak, "reason": reason}
