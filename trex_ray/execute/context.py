"""What ``run_plan`` needs from the outside world, injected so that execution knows no tree and no Ray."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from trex_ray.spec import Decision, Progress, TaskSpec

__all__ = ["Decision", "EvalFn", "ProgressFn", "RunContext", "TrainLauncher", "TrialCheckpointer",
           "always_continue"]


ProgressFn = Callable[[Progress], Decision]
# An evaluation service: a request dict (execute/eval_service.py: model, adapter, prompts, lengths) →
# a reply dict (completions, the backend that made them). The runtime passes a Ray evaluator's client.
EvalFn = Callable[[dict[str, Any]], dict[str, Any]]


def always_continue(_: Progress) -> Decision:
    return Decision.CONTINUE


class TrainLauncher(Protocol):
    """Runs a training loop function on ``num_workers`` workers and returns rank 0's return value.

    ``InProcessLauncher`` runs it here (world size 1); the runtime's ``RayTrainLauncher`` runs it
    inside Ray Train's TorchTrainer with the trial's resources.
    """

    def launch(
        self, loop: Callable[[dict[str, Any]], dict[str, Any]], config: dict[str, Any]
    ) -> dict[str, Any]: ...


class TrialCheckpointer(Protocol):
    """Periodic checkpoints of a running trial, kept by its launcher (the runtime's: Ray Train's own
    checkpoints), so that a trial whose worker died goes on from the last one. ``train_loop`` saves
    every ``every`` optimizer steps and, on start, resumes from ``restore()``.

    Example: ``runtime/train_launcher.py::RayCheckpointer``.
    """

    every: int  # optimizer steps between two checkpoints

    def restore(self) -> str | None: ...  # a local folder with the latest state, or None: a fresh start

    def save(self, folder: str, step: int) -> None: ...  # every worker, its own folder (a collective)

    def beat(self, step: int) -> None: ...  # rank 0: the furthest step reached (to count steps redone)

    def last_beat(self) -> int | None: ...


@dataclass
class RunContext:
    task: TaskSpec
    node_id: str
    work_dir: Path  # this node's own folder: checkpoint, logs
    cache_dir: Path  # shared by all nodes and runs: prepared data, built tiny models
    launcher: TrainLauncher
    parent_checkpoint: str | None = None  # the parent's checkpoint, used when plan.train.warm_start
    parent_adapter: bool = False  # whether that checkpoint is a LoRA adapter
    on_progress: ProgressFn = always_continue
    evaluator: EvalFn | None = None  # the run's evaluation service (one vLLM engine per base model), if any
    tensorboard_dir: Path | None = None  # this node's TensorBoard folder (execute/tracking.py); None: none
    extra: dict[str, Any] = field(default_factory=dict)
