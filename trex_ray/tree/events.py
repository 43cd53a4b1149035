"""Events: every change to a search tree is one of these, so a journal of them rebuilds the tree."""

from __future__ import annotations

import time
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EventKind(str, Enum):
    run_started = "run_started"  # payload: task (dict), run_id, profile
    node_added = "node_added"  # payload: parent, plan
    node_started = "node_started"  # payload: attempt
    node_progress = "node_progress"  # payload: progress, attempt (its attempt's only; older journals: none)
    node_finished = "node_finished"  # payload: result (finished, failed or stopped)
    node_requeued = "node_requeued"  # payload: reason (a crash or a lost worker interrupted it)
    node_pruned = "node_pruned"  # payload: reason
    insight = "insight"  # payload: text, facts
    # payload: test_metric, test_metrics, samples, eval_backend, rows (or error): a score on the test
    # split, which the search never reads; made for the base model and the best nodes on validation
    node_tested = "node_tested"
    run_finished = "run_finished"  # payload: reason
    # payload: budget (the whole new Budget, as a dict): `trex resume RUN budget.max_nodes=N` raised or
    # lowered it; replay applies it to meta["task"], and a finished run goes on
    budget_changed = "budget_changed"
    # payload: location, bytes: search.keep_checkpoints let the node's checkpoint go (journaled before
    # the files are deleted; a resume deletes again what a crash left behind)
    checkpoint_deleted = "checkpoint_deleted"


class Event(BaseModel):
    # NaN/inf (a diverged loss) are written as the JSON constants NaN/Infinity, not null: a null
    # train_loss would fail Progress validation on replay.
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")

    kind: EventKind
    node_id: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    time: float = Field(default_factory=time.time)
    seq: int = -1  # set by the store when appended
