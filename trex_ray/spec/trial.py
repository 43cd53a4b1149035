"""The executor contract: how the trial loop (``research/orchestrator.py``) hands trials to what runs them.

An executor runs trials somewhere (in this process, on a simulated clock, on Ray) and says how each
ended; it never decides what an ending means. The orchestrator submits a ``Trial``, polls for
``(handle, TrialOutcome)`` pairs and cancels a trial that ran too long; it alone turns an outcome into
the ``Result`` the Researcher records (a crash into ``lost`` or ``error``, a timeout into ``timeout``).

Example::

    handle = executor.submit(Trial(node_id="n1", attempt=1, plan=plan))
    for handle, outcome in executor.poll(timeout=1.0):   # [] when nothing ended meanwhile
        ...                                             # outcome.result, or outcome.fault
    executor.cancel(handle)                             # it ran too long: end it, report nothing
    executor.close()                                    # the run is over
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from trex_ray.spec.plan import Plan
from trex_ray.spec.result import Result


class TrialKind(str, Enum):
    train = "train"  # run the plan: prepare data, train, evaluate on validation -> a Result
    test = "test"  # score a finished node on the test split -> a dict of scores


class Fault(str, Enum):
    """Why a trial returned nothing: a fact the executor saw, classified by the orchestrator."""

    raised = "raised"  # the trial's code raised out of the executor (no Result came back)
    died = "died"  # the process or machine running it died, or its result was lost with it


@dataclass(frozen=True)
class Trial:
    """One attempt of one node, as plain data."""

    node_id: str
    attempt: int
    plan: Plan
    kind: TrialKind = TrialKind.train
    parent_id: str | None = None
    parent_checkpoint: str | None = None  # a warm start's parent checkpoint (train) / the node's own (test)
    parent_adapter: bool = False  # that checkpoint is a LoRA adapter
    threads: int | None = None  # CPU threads for a test scoring in its process (None: as trials have it)


@dataclass(frozen=True)
class TrialOutcome:
    """How a trial ended. Exactly one of ``result`` (train), ``scores`` (test) or ``fault`` is set."""

    result: Result | None = None
    scores: dict[str, Any] | None = None
    fault: Fault | None = None
    message: str = ""  # the fault's one-line reason
    lost: str | None = None  # why an error was the cluster's, not the code's: a training worker, its
    #                          machine or the run's shared evaluator died (the orchestrator: ``lost``)

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.result, self.scores, self.fault)) != 1:
            raise ValueError("TrialOutcome: set exactly one of result, scores or fault")


Handle = Hashable


class Executor(Protocol):
    """Runs trials; see the module docstring. ``poll`` blocks up to ``timeout`` seconds (of its clock)."""

    def submit(self, trial: Trial) -> Handle: ...

    def poll(self, timeout: float) -> list[tuple[Handle, TrialOutcome]]: ...

    def cancel(self, handle: Handle) -> None: ...

    def close(self) -> None: ...
