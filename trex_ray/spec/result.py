"""Result: what running one plan produced, success or not."""

from __future__ import annotations

import math
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Decision(str, Enum):
    """The scheduler's answer to an intermediate report of a running trial."""

    CONTINUE = "continue"
    STOP = "stop"


class Outcome(str, Enum):
    finished = "finished"
    failed = "failed"
    stopped = "stopped"  # stopped early by the scheduler: losing to its siblings


class FailureKind(str, Enum):
    diverged = "diverged"  # loss became NaN/inf or exploded
    error = "error"  # the trial raised
    timeout = "timeout"  # ran past budget.trial_timeout_seconds
    lost = "lost"  # the worker or its node died


class Progress(BaseModel):
    """An intermediate report from a running trial."""

    # A diverged loss is NaN/inf: write it as the JSON constant (null would not validate back).
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")

    fraction: float = Field(ge=0, le=1)  # of the trial's planned steps
    step: int
    train_loss: float
    val_loss: float | None = None


class Cost(BaseModel):
    model_config = ConfigDict(extra="forbid")

    wall_seconds: float = 0.0
    compute_seconds: float = 0.0  # wall x resources held (CPU- or GPU-seconds)
    train_steps: int = 0
    train_tokens: int = 0


class Result(BaseModel):
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")

    outcome: Outcome
    metric: float | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    curve: list[Progress] = Field(default_factory=list)
    checkpoint: str | None = None
    cost: Cost = Cost()
    failure: FailureKind | None = None
    error: str | None = None
    eval_backend: str | None = None
    samples: list[dict[str, str]] = Field(default_factory=list)
    provenance: dict[str, Any] = Field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.finished and self.metric is not None and math.isfinite(self.metric)
