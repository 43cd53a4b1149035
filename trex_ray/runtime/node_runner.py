"""NodeRunner: the Ray actor that runs one node's plan (data → DeepSpeed training → evaluation).

It holds no resources itself: training runs in Ray Train workers holding the trial's
resources (a placement group: ``num_workers`` bundles of CPUs / GPUs / memory, laid out by
``resources.placement_strategy``), and the Researcher counts trial slots so no more nodes run
than resources allow. Finished nodes are records in the store; a healthy runner then serves
the next node (``runtime/runners.py``). With an object-store ``storage_path`` the trial's inputs
and checkpoint travel through the bucket (``runtime/trial.py``), so its workers may sit on any machine.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray

from trex_ray.execute.context import RunContext
from trex_ray.runtime.trial import Shipping, TrialLauncher, parent_local
from trex_ray.spec import Decision, Plan, Progress, TaskSpec
from trex_ray.store.files import ensure_local, is_complete_dir, is_remote, join

log = logging.getLogger(__name__)

PROGRESS_TIMEOUT_S = 30.0


@dataclass
class ProgressRelay:
    """Picklable progress callback: a trial's report to the Researcher actor, its decision back."""

    researcher: Any  # ActorHandle
    node_id: str
    attempt: int | None = None  # the Researcher refuses (STOP) a report of an attempt it has moved past

    def __call__(self, progress: Progress) -> Decision:
        try:
            ref = self.researcher.report_progress.remote(self.node_id, progress.model_dump(mode="json"),
                                                         self.attempt)
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
    attempt: int = 1
    checkpoint_location: str = ""  # where the run stores this node's checkpoint (a folder or URI)
    tensorboard_dir: str | None = None  # this attempt's TensorBoard folder; None: no TensorBoard records
    ray_train_path: str = ""  # Ray Train's storage for this run's trials: <run>/ray_train (a folder or URI)


@ray.remote(num_cpus=0)
class NodeRunner:
    """Runs nodes one at a time; the Researcher reuses a healthy runner for later nodes
    (``runtime/runners.py``), so the imports below are paid once per process, by ``warm``."""

    def warm(self) -> bool:
        """Imports what a node needs before its training starts, so that a runner's first node (after a
        start or a resume) does not pay them on its way to training: ~20 s on a busy 2-core head."""
        from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401 - tokenizer, HF eval

        import trex_ray.execute.data  # noqa: F401 - datasets: every node's prepare
        import trex_ray.execute.run_plan  # noqa: F401 - data ops, training, evaluation
        import trex_ray.runtime.evaluator  # noqa: F401
        import trex_ray.runtime.train_launcher  # noqa: F401 - Ray Train

        return True

    def run(self, job: NodeJob, researcher: Any, evaluator: Any = None) -> dict[str, Any]:
        """``evaluator``: the run's Evaluator actor (runtime/evaluator.py), or None to evaluate here.
        Returns ``{"result": the Result as JSON, "lost": why a training worker or machine died, or None}``."""
        from trex_ray.execute.run_plan import run_plan
        from trex_ray.runtime.evaluator import EvaluatorClient

        task = TaskSpec.model_validate(job.task)
        plan = Plan.model_validate(job.plan)
        parent, shipping = job.parent_checkpoint, None
        if is_remote(job.storage_path):
            shipping, parent = _shipping(job, task, plan)
        launcher = TrialLauncher(_train_launcher(job, task), job.node_id, job.attempt, shipping)
        ctx = RunContext(
            task=task,
            node_id=job.node_id,
            work_dir=Path(job.work_dir),
            cache_dir=Path(job.cache_dir),
            launcher=launcher,
            parent_checkpoint=parent,
            parent_adapter=job.parent_adapter,
            on_progress=ProgressRelay(researcher, job.node_id, job.attempt),
            evaluator=EvaluatorClient(evaluator) if evaluator is not None else None,
            tensorboard_dir=Path(job.tensorboard_dir) if job.tensorboard_dir else None,
        )
        # the trial loop (research/orchestrator.py) classifies: a NaN metric unscored, an error ``lost``
        # when ``lost`` says a worker or its machine died
        result = launcher.finalize(run_plan(plan, ctx))
        return {"result": result.model_dump(mode="json"), "lost": launcher.lost}

    def test(self, job: NodeJob, checkpoint: str | None, adapter: bool,
             evaluator: Any = None, threads: int | None = None) -> dict[str, Any]:
        """The node's score on the test split (``execute.run_plan.score_test``); never raises.
        ``threads``: CPU threads for an evaluation in this process (the search's end: its cores are free)."""
        import torch

        saved = torch.get_num_threads()
        if threads:
            torch.set_num_threads(threads)
        try:
            return self._test(job, checkpoint, adapter, evaluator)
        finally:
            torch.set_num_threads(saved)

    @staticmethod
    def _test(job: NodeJob, checkpoint: str | None, adapter: bool, evaluator: Any) -> dict[str, Any]:
        from trex_ray.execute.run_plan import one_line, score_test
        from trex_ray.runtime.evaluator import EvaluatorClient

        task = TaskSpec.model_validate(job.task)
        try:
            if checkpoint and is_remote(checkpoint):
                local = parent_local(job.cache_dir, checkpoint)
                ensure_local(checkpoint, local)
                checkpoint = local
            ctx = RunContext(task=task, node_id=job.node_id, work_dir=Path(job.work_dir),
                             cache_dir=Path(job.cache_dir), launcher=None,  # type: ignore[arg-type]
                             evaluator=EvaluatorClient(evaluator) if evaluator is not None else None,
                             tensorboard_dir=Path(job.tensorboard_dir) if job.tensorboard_dir else None)
            return score_test(Plan.model_validate(job.plan), ctx, checkpoint, adapter)
        except Exception as exc:  # noqa: BLE001 - a failed test score is recorded, not raised
            log.warning("%s: test scoring failed: %s", job.node_id, one_line(exc), exc_info=True)
            return {"error": one_line(exc)}


def _train_launcher(job: NodeJob, task: TaskSpec) -> Any:
    from trex_ray.runtime.train_launcher import RayTrainLauncher

    res = task.resources
    storage = job.ray_train_path or join(str(Path(job.work_dir).parent.parent), "ray_train")
    return RayTrainLauncher(
        num_workers=res.num_workers,
        cpus_per_worker=res.cpus_per_worker,
        gpus_per_worker=res.gpus_per_worker,
        memory_per_worker=int(res.memory_gb_per_worker * 2**30) if res.memory_gb_per_worker else None,
        placement_strategy=res.placement_strategy,
        dist_backend=res.dist_backend,
        storage_path=storage,
        name=f"{job.node_id}-a{job.attempt}",
        keep_files=False,
        checkpoint_every=res.checkpoint_every_steps,
        max_failures=res.max_worker_failures,
    )


def _shipping(job: NodeJob, task: TaskSpec, plan: Plan) -> tuple[Shipping, str | None]:
    """For a run stored in a bucket: what this trial's workers fetch, and the parent checkpoint here."""
    from trex_ray.execute.data import data_hash

    remote_cache = join(job.storage_path, "cache")
    extra, parent = {}, job.parent_checkpoint
    if parent and is_remote(parent):
        local = parent_local(job.cache_dir, parent)
        ensure_local(parent, local)
        extra, parent = {local: job.parent_checkpoint or ""}, local
    digest = data_hash(plan.data, task, plan.seed)  # reuse data another machine prepared already
    local_data, stored_data = Path(job.cache_dir, "data", digest), join(remote_cache, "data", digest)
    if not local_data.is_dir() and is_complete_dir(stored_data):
        ensure_local(stored_data, local_data)
    shipping = Shipping(cache_dir=job.cache_dir, remote_cache=remote_cache,
                        checkpoint_uri=job.checkpoint_location, extra=extra)
    return shipping, parent
