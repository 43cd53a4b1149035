"""Warm NodeRunners: a small pool of runner actors reused from one node to the next.

A new Ray actor is a new worker process that must import torch, transformers and Ray Train
before it can run a plan: seconds per node on a quiet machine, tens of seconds on a busy head.
The Researcher therefore keeps up to ``size`` idle runners, warms them (imports done) when the run
starts, and hands each finished node's runner to the next node. A runner is never reused after
its trial failed, timed out or was lost (it is killed), nor after ``recycle_after`` nodes (so that
whatever a long-lived process accumulates is bounded), so isolation between trials is kept where
it matters. Runners hold no resources; the actors die with the Researcher that owns them.

Example::

    pool = RunnerPool(make=lambda: NodeRunner.options(scheduling_strategy=here).remote())
    pool.fill(slots)                     # at the start of the run: warm `slots` runners
    runner = pool.take()                 # for a node
    pool.give_back(runner, healthy=True) # its result is in
    pool.close()                         # the run is over
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ray

log = logging.getLogger(__name__)

RECYCLE_AFTER = 32  # nodes one runner process serves before it is replaced


@dataclass
class RunnerPool:
    make: Callable[[], Any]  # returns a new NodeRunner actor handle
    size: int = 1  # idle runners kept at most (the run's trial slots; 0: none reused)
    recycle_after: int = RECYCLE_AFTER
    kill: Callable[[Any], None] = field(default=lambda runner: _kill(runner))
    idle: list[Any] = field(default_factory=list)
    uses: dict[Any, int] = field(default_factory=dict)  # runner -> nodes it has served
    made: int = 0  # runners started (for tests and the benchmarks)

    def fill(self, size: int) -> None:
        """Keep up to ``size`` idle runners and start (and warm) the missing ones now."""
        self.size = max(0, size)
        while len(self.idle) < self.size:
            self.idle.append(self._new())

    def take(self) -> Any:
        return self.idle.pop() if self.idle else self._new()

    def give_back(self, runner: Any, healthy: bool) -> None:
        """A runner whose node ended: reused if ``healthy`` and not worn out, else killed."""
        self.uses[runner] = self.uses.get(runner, 0) + 1
        if healthy and self.uses[runner] < self.recycle_after and len(self.idle) < self.size:
            self.idle.append(runner)
            return
        self.discard(runner)

    def discard(self, runner: Any) -> None:
        self.uses.pop(runner, None)
        self.kill(runner)

    def close(self) -> None:
        for runner in self.idle:
            self.discard(runner)
        self.idle = []

    def _new(self) -> Any:
        runner = self.make()
        runner.warm.remote()  # imports the trial's code while nothing waits for it
        self.uses[runner] = 0
        self.made += 1
        return runner


def _kill(runner: Any) -> None:
    try:
        ray.kill(runner)
    except Exception as exc:  # noqa: BLE001 - already gone with its process or machine
        log.debug("runner kill: %s", exc)
