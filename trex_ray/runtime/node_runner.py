"""NodeRunner: the Ray actor that runs one node's plan (data → DeepSpeed training → evaluation).

It holds no resources itself: training runs in Ray Train workers holding the trial's
resources, and the Researcher counts trial slots so no more nodes run than resources allow.
Finished nodes are records in the store; the actor goes away with its result.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray

from trex_ray.execute.context import RunContext
from trex_ray.spec import Decision, Plan, Progress, TaskSpec

log = logging.getLogger(__name__)

PROGRESS_TIMEOUT_S = 30.0


@dataclass
class ProgressRelay:
    """Picklable progress callback: forwards a trial's report to the Researcher actor, returns its decision."""

    researcher: Any  # ActorHandle
    node_id: str

    def __call__(self, progress: Progress) -> Decision:
        try:
            ref = self.researcher.report_progress.remote(self.node_id, progress.model_dump(mode="json"))
            return Decision(ray.get(ref, timeout=PROGRESS_TIMEOUT_S))
        except Exception as exc:  # the Researcher restarting must not kill a healthy trial
            log.warning("%s: progress not delivered (%s); continuing", self.node_id, exc)
            return Decision.CONTINUE


@dataclass(frozen=True)
class NodeJob:
    """Everything a NodeRunner needs, as plain data."""

    node_id: str
    plan: dict[str, Any]
    task: dict[str, Any]
    work_dir: str
    cache_dir: str
    storage_path: str
    parent_checkpoint: str | None
    parent_adapter: bool


@ray.remote(num_cpus=0)
class NodeRunner:
    def run(self, job: NodeJob, researcher: Any) -> dict[str, Any]:
        from trex_ray.execute.run_plan import run_plan
        from trex_ray.runtime.train_launcher import RayTrainLauncher

        task = TaskSpec.model_validate(job.task)
        res = task.resources
        launcher = RayTrainLauncher(
            num_workers=res.num_workers,
            cpus_per_worker=res.cpus_per_worker,
            gpus_per_worker=res.gpus_per_worker,
            storage_path=job.storage_path,
            name=f"{Path(job.work_dir).parent.parent.name}-{job.node_id}",
        )
        ctx = RunContext(
            task=task,
            node_id=job.node_id,
            work_dir=Path(job.work_dir),
            cache_dir=Path(job.cache_dir),
            launcher=launcher,
            parent_checkpoint=job.parent_checkpoint,
            parent_adapter=job.parent_adapter,
            on_progress=ProgressRelay(researcher, job.node_id),
        )
        result = run_plan(Plan.model_validate(job.plan), ctx)
        if result.metric is not None and not math.isfinite(result.metric):
            result = result.model_copy(update={"metric": None})
        return result.model_dump(mode="json")
