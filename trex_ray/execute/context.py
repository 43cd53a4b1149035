"""What ``run_plan`` needs from the outside world, injected so that execution knows no tree and no Ray."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from trex_ray.spec import Decision, Progress, TaskSpec

__all__ = ["Decision", "EvalFn", "ProgressFn", "RunContext", "TrainLauncher", "always_continue"]


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
