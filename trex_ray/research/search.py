"""The two small contracts the trial loop (``research/orchestrator.py``) drives, as Ray Tune splits them.

* ``Searcher`` — *what to try next* (Tune's ``Searcher``): trials to start now, and what came of each.
* ``Scheduler`` — *what to do with a running trial* (Tune's ``TrialScheduler``): at each of its progress
  reports, ``CONTINUE`` or ``STOP``. The executor (``spec/trial.py``) asks it; a Population Based
  Training exploit is a ``STOP`` after which the searcher's next trial continues the better member's
  checkpoint with mutated hyperparameters.

trex's implementation of both is the ``Researcher`` (its tree policy selects and expands; its
``on_progress`` stops a losing trial by asynchronous successive halving); ``TreeSearcher`` below turns
its nodes into trials. The search benchmark's peers (random, Tune's TPE + ASHA and PBT:
``benchmarks/peers.py``) are others. Neither contract sees Ray, torch or an executor.

Example::

    searcher = TreeSearcher(researcher)                   # or a peer's adapter
    for trial in searcher.next_trials(2): ...            # started; submit each to an executor
    researcher.on_progress("n1", progress, attempt=1)    # the scheduler: Decision.CONTINUE / STOP
    searcher.on_result("n1", result)                     # the trial ended
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from trex_ray.research.researcher import Researcher
from trex_ray.spec import Decision, Progress, Result, TaskSpec, TrainMode
from trex_ray.spec.trial import Trial, TrialKind
from trex_ray.tree import Node, SearchTree


class Searcher(Protocol):
    """What to try next. ``task``: what is searched (the resources a trial holds, its timeout)."""

    @property
    def task(self) -> TaskSpec: ...

    def next_trials(self, slots: int) -> list[Trial]: ...  # up to ``slots`` trials, started now

    def on_result(self, trial_id: str, result: Result) -> None: ...  # a trial ended (classified)

    def stop_reason(self) -> str | None: ...  # why nothing more will start (None: more may)

    def retry_wait(self) -> float | None: ...  # seconds until a delayed retry may start (None: none)

    def finish(self, reason: str) -> None: ...  # the search is over


class Scheduler(Protocol):
    """What to do with a running trial at one of its progress reports (``attempt``: the reporter's)."""

    def on_progress(self, trial_id: str, progress: Progress, attempt: int | None = None) -> Decision: ...


class Observer(Protocol):
    """Told of what the tree search records (the actor's MLflow runs); never fails the run."""

    def node_ended(self, node: Node) -> None: ...

    def node_tested(self, node_id: str, scored: dict[str, Any]) -> None: ...

    def finished(self) -> None: ...


@dataclass
class TreeSearcher:
    """The Researcher as a ``Searcher``: its nodes as trials (a warm start carries its parent's checkpoint),
    and the test split (``to_test``/``on_test``: the base model early, the best nodes at the end). An
    ``observer`` hears of every node that ended (those of a resumed run's past once, at once), every test
    score and the end."""

    researcher: Researcher
    observer: Observer | None = None

    def __post_init__(self) -> None:
        for node in list(self.tree):  # a resumed run: nodes that ended before, told once
            self._ended(node.id)

    @property
    def task(self) -> TaskSpec:
        return self.researcher.task

    @property
    def tree(self) -> SearchTree:
        return self.researcher.tree

    def next_trials(self, slots: int) -> list[Trial]:
        return [trial_of(self.tree, node) for node in self.researcher.next_nodes(slots)]

    def on_result(self, trial_id: str, result: Result) -> None:
        self.researcher.on_result(trial_id, result)
        self._ended(trial_id)

    def stop_reason(self) -> str | None:
        return self.researcher.stop_reason()

    def retry_wait(self) -> float | None:
        return self.researcher.retry_wait()

    def finish(self, reason: str) -> None:
        self.researcher.finish(reason)
        if self.observer is not None:
            self.observer.finished()

    # --- the test split ---------------------------------------------------------------------
    def to_test(self, early: bool) -> list[Trial]:
        """Test scorings to run: while the search runs (``early``) the base model once it is scored on
        validation; after it, the base (if still missing) and the best nodes on validation."""
        nodes = self.researcher.to_test_early() if early else self.researcher.to_test()
        return [trial_of(self.tree, node, TrialKind.test) for node in nodes]

    def on_test(self, node_id: str, scored: dict[str, Any]) -> None:
        self.researcher.on_test(node_id, scored)
        if self.observer is not None:
            self.observer.node_tested(node_id, scored)

    def _ended(self, node_id: str) -> None:
        node = self.tree.get(node_id)
        if self.observer is not None and node.status.done and node.result is not None:
            self.observer.node_ended(node)


def trial_of(tree: SearchTree, node: Node, kind: TrialKind = TrialKind.train) -> Trial:
    """A node's next attempt as a trial: a warm start carries its parent's checkpoint; a test scoring the
    node's own (none for the base model)."""
    if kind is TrialKind.test:
        checkpoint = node.result.checkpoint if node.parent is not None and node.result else None
        return Trial(node.id, node.attempts, node.plan, kind, node.parent, checkpoint,
                     node.plan.train.mode is TrainMode.lora)
    parent = tree.get(node.parent) if node.parent else None
    warm = bool(node.plan.train.warm_start and parent is not None and parent.result is not None)
    return Trial(
        node.id, node.attempts, node.plan, kind, node.parent,
        parent.result.checkpoint if warm and parent and parent.result else None,
        bool(warm and parent and parent.plan.train.mode is TrainMode.lora),
    )
