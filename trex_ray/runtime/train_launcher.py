"""``RayTrainLauncher``: run a training loop on Ray Train's TorchTrainer, one trial's resources.

Ray Train sets up the process group (gloo on CPU, NCCL on GPU) and the worker environment
(``RANK``, ``LOCAL_RANK``, ``OMP_NUM_THREADS``); the loop (``trex_ray.execute.train.train_loop``)
then runs DeepSpeed on it. Rank 0's return value comes back as a JSON file in the one
checkpoint it reports (``Result.metrics`` stays empty without a reported checkpoint).

Ray Train keeps its own files (that checkpoint, its state, a failed worker's error) in
``<storage_path>/<name>-<hex>``: the NodeRunner points ``storage_path`` at ``<run>/ray_train``, so a
run's folder holds them, and a trial that succeeded has its folder removed once its result is read
(``keep_files=False``); a failed trial's stays, for the post-mortem.

Long trials (``checkpoint_every``, ``max_failures``): the loop reports a Ray Train checkpoint of its
state every N steps (``RayCheckpointer``) and Ray Train's ``FailureConfig`` restarts the worker group
when a worker dies; the restarted loop resumes from ``ray.train.get_checkpoint()``.

Example::

    launcher = RayTrainLauncher(num_workers=2, cpus_per_worker=1, gpus_per_worker=0,
                                storage_path="/shared/trex/ray", name="node-7")
    result = launcher.launch(train_loop, config)
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray.train
from ray.train import Checkpoint, CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchConfig, TorchTrainer

logger = logging.getLogger(__name__)

RESULT_FILE = "train_result.json"
Loop = Callable[[dict[str, Any]], dict[str, Any]]


class TrainingError(RuntimeError):
    """Training raised on a worker; the message is that worker's error, in one line."""


def _report_result(loop: Loop, config: dict[str, Any]) -> None:
    """Runs on every worker: the loop, then one report; rank 0 attaches its result as a checkpoint."""
    result = loop(config)
    if ray.train.get_context().get_world_rank() != 0:
        ray.train.report({"done": 1})
        return
    with tempfile.TemporaryDirectory(prefix="trex-result-") as tmp:
        Path(tmp, RESULT_FILE).write_text(json.dumps(result))
        ray.train.report({"done": 1}, checkpoint=Checkpoint.from_directory(tmp))


@dataclass
class RayCheckpointer:
    """A ``TrialCheckpointer`` (``execute/context.py``) on Ray Train's checkpoints: every worker reports
    its folder (Ray Train merges them into one checkpoint in the trial's storage); a restarted worker
    group gets the latest back. ``heartbeat``: a file where rank 0 notes the furthest step it reached
    (local storage only), so that a resumed trial can say how many steps it redoes."""

    every: int
    heartbeat: str | None = None

    def restore(self) -> str | None:
        checkpoint = ray.train.get_checkpoint()
        if checkpoint is None:
            return None
        return str(checkpoint.to_directory(tempfile.mkdtemp(prefix="trex-resume-")))

    def save(self, folder: str, step: int) -> None:
        ray.train.report({"step": step}, checkpoint=Checkpoint.from_directory(folder))

    def beat(self, step: int) -> None:
        if self.heartbeat:
            Path(self.heartbeat).parent.mkdir(parents=True, exist_ok=True)
            Path(self.heartbeat).write_text(str(step))

    def last_beat(self) -> int | None:
        try:
            return int(Path(self.heartbeat).read_text()) if self.heartbeat else None
        except (OSError, ValueError):
            return None


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit|Failure)\b")
MAX_MESSAGE = 300


def _exception_line(text: str) -> str | None:
    """The last line of a worker traceback that names an exception (``ValueError: ...``)."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return next((ln for ln in reversed(lines) if _EXCEPTION_LINE.match(ln)), None)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    if "\n" in text:  # a wrapper holding the remote traceback
        line = _exception_line(text) or next(ln for ln in text.splitlines() if ln.strip()).strip()
    else:
        line = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return line if len(line) <= MAX_MESSAGE else line[: MAX_MESSAGE - 3] + "..."


def explain(exc: BaseException) -> str:
    """One line naming what failed on which worker."""
    failures: dict[int, BaseException] = getattr(exc, "worker_failures", None) or {}
    if failures:
        rank = min(failures)
        return f"training failed on worker {rank}: {_describe(failures[rank])}"
    return f"training failed: {_describe(getattr(exc, 'controller_failure', None) or exc)}"


class RayTrainLauncher:
    """A ``TrainLauncher`` on ``ray.train.torch.TorchTrainer``; needs a running (or auto-started) Ray."""

    name = "ray-train"

    def __init__(self, num_workers: int = 1, cpus_per_worker: float = 1, gpus_per_worker: float = 0,
                 storage_path: str | Path = "~/ray_results/trex", name: str = "trex-train",
                 memory_per_worker: int | None = None, placement_strategy: str = "PACK",
                 dist_backend: str = "auto", keep_files: bool = True, checkpoint_every: int | None = None,
                 max_failures: int = 0) -> None:
        """``memory_per_worker`` in bytes; ``dist_backend`` auto: NCCL with GPUs, else gloo (gloo also
        suits logical GPUs on a CPU machine); ``placement_strategy``: the placement group's layout;
        ``keep_files``: False removes Ray Train's folder of a trial that succeeded; ``checkpoint_every``:
        optimizer steps between two checkpoints of a running trial (None: none); ``max_failures``: worker
        group restarts (Ray Train's ``FailureConfig``) before the trial fails."""
        self.num_workers = num_workers
        self.cpus_per_worker = cpus_per_worker
        self.gpus_per_worker = gpus_per_worker
        self.memory_per_worker = memory_per_worker
        self.placement_strategy = placement_strategy
        self.dist_backend = dist_backend
        self.storage_path = str(Path(storage_path).expanduser().resolve()) if "://" not in str(storage_path) \
            else str(storage_path)
        self.run_name = name
        self.keep_files = keep_files
        self.checkpoint_every = checkpoint_every
        self.max_failures = max_failures
        self.trial_dir: str | None = None  # Ray Train's folder of the last launch

    def _trainer(self, loop: Loop, config: dict[str, Any]) -> TorchTrainer:
        resources = {"CPU": self.cpus_per_worker}
        if self.gpus_per_worker:
            resources["GPU"] = self.gpus_per_worker
        if self.memory_per_worker:
            resources["memory"] = self.memory_per_worker
        run_config = self._run_config()
        extra: dict[str, Any] = {"num_threads": max(1, int(self.cpus_per_worker))}
        if self.checkpoint_every:
            local = "://" not in self.storage_path and self.trial_dir
            extra["checkpointer"] = RayCheckpointer(
                self.checkpoint_every, str(Path(self.trial_dir, "heartbeat")) if local else None)
        return TorchTrainer(
            lambda cfg: _report_result(loop, cfg),
            train_loop_config={**config, **extra},
            torch_config=TorchConfig(backend=None if self.dist_backend == "auto" else self.dist_backend),
            scaling_config=ScalingConfig(num_workers=self.num_workers, use_gpu=bool(self.gpus_per_worker),
                                         resources_per_worker=resources,
                                         placement_strategy=self.placement_strategy),
            run_config=run_config,
        )

    def _run_config(self) -> RunConfig:
        from trex_ray.store.files import join

        name = f"{self.run_name}-{uuid.uuid4().hex[:6]}"
        self.trial_dir = join(self.storage_path, name)
        extra: dict[str, Any] = {}
        if self.max_failures:
            extra["failure_config"] = FailureConfig(max_failures=self.max_failures)
        if self.checkpoint_every:  # the latest state and the result; older states go
            extra["checkpoint_config"] = CheckpointConfig(num_to_keep=2)
        if "://" not in self.storage_path:
            return RunConfig(storage_path=self.storage_path, name=name, **extra)
        from trex_ray.store.files import resolve  # a bucket: one pyarrow filesystem, options kept

        filesystem, path = resolve(self.storage_path)
        return RunConfig(storage_path=path, storage_filesystem=filesystem, name=name, **extra)

    def launch(self, loop: Loop, config: dict[str, Any]) -> dict[str, Any]:
        trainer = self._trainer(loop, config)
        try:
            result = trainer.fit()
        except Exception as exc:  # Ray wraps worker errors; surface the worker's own message
            logger.warning("training run %s failed:\n%s", self.run_name, exc)
            raise TrainingError(explain(exc)) from exc
        if result.checkpoint is None:
            raise TrainingError(f"training finished without a result from rank 0 (error: {result.error})")
        with result.checkpoint.as_directory() as folder:
            returned = json.loads(Path(folder, RESULT_FILE).read_text())
        if not self.keep_files and self.trial_dir:
            from trex_ray.store.files import remove_dir

            try:
                remove_dir(self.trial_dir)
            except OSError as exc:  # a leftover folder is not worth failing a trial for
                logger.warning("could not remove %s: %s", self.trial_dir, exc)
        return returned
