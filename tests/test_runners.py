"""The warm NodeRunner pool's policy (runtime/runners.py), with stand-in runners: no cluster needed."""

from __future__ import annotations

from typing import Any

from trex_ray.runtime.runners import RunnerPool


class _Remote:
    def __init__(self, calls: list[str], name: str) -> None:
        self.calls, self.name = calls, name

    def remote(self) -> None:
        self.calls.append(self.name)


class FakeRunner:
    def __init__(self, n: int) -> None:
        self.n, self.calls = n, []
        self.warm = _Remote(self.calls, "warm")


def _pool(**kw: Any) -> tuple[RunnerPool, list[FakeRunner]]:
    made: list[FakeRunner] = []
    killed: list[FakeRunner] = []

    def make() -> FakeRunner:
        made.append(FakeRunner(len(made)))
        return made[-1]

    pool = RunnerPool(make=make, kill=killed.append, **kw)
    pool.killed = killed  # type: ignore[attr-defined]
    return pool, made


def test_fill_starts_and_warms_one_runner_per_slot() -> None:
    pool, made = _pool()
    pool.fill(3)
    assert len(made) == 3 and all(r.calls == ["warm"] for r in made)
    pool.fill(3)  # idempotent
    assert len(made) == 3


def test_healthy_runners_serve_many_nodes() -> None:
    pool, made = _pool()
    pool.fill(2)
    for _ in range(20):  # 20 nodes, 2 at a time
        a, b = pool.take(), pool.take()
        pool.give_back(a, healthy=True)
        pool.give_back(b, healthy=True)
    assert len(made) == 2 and pool.killed == []  # type: ignore[attr-defined]


def test_a_runner_whose_trial_failed_is_replaced() -> None:
    pool, made = _pool()
    pool.fill(1)
    bad = pool.take()
    pool.give_back(bad, healthy=False)
    assert pool.killed == [bad]  # type: ignore[attr-defined]
    assert pool.take() is not bad and len(made) == 2


def test_runners_are_recycled_and_extra_ones_not_kept() -> None:
    pool, made = _pool(recycle_after=3)
    pool.fill(1)
    first = pool.take()
    for _ in range(2):
        pool.give_back(first, healthy=True)
        assert pool.take() is first
    pool.give_back(first, healthy=True)  # its third node: worn out
    assert pool.killed == [first]  # type: ignore[attr-defined]
    a, b = pool.take(), pool.take()  # a burst beyond the slots makes a new runner ...
    pool.give_back(a, healthy=True)
    pool.give_back(b, healthy=True)  # ... which is not kept idle
    assert len(pool.idle) == 1 and pool.killed[-1] is b  # type: ignore[attr-defined]


def test_size_zero_keeps_nothing_and_close_kills_the_idle() -> None:
    pool, made = _pool()
    pool.fill(0)
    r = pool.take()
    pool.give_back(r, healthy=True)
    assert pool.idle == [] and pool.killed == [r]  # type: ignore[attr-defined]
    pool.fill(2)
    pool.close()
    assert pool.idle == [] and len(pool.killed) == 3  # type: ignore[attr-defined]
