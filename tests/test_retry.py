"""Retry policy (pure, no Ray): lost and timed-out trials run again, errors and divergence do not."""

from __future__ import annotations

from pathlib import Path

from factories import diverged, finished, lost, make_task

from trex_ray.research import Researcher
from trex_ray.spec import Cost, FailureKind, Outcome, Result
from trex_ray.store import Store
from trex_ray.tree import ROOT_ID, EventKind, NodeStatus

CLEAN = {"noise_estimate": 0.0, "duplicate_fraction": 0.0}


def timed_out(compute: float = 7.0) -> Result:
    return Result(outcome=Outcome.failed, failure=FailureKind.timeout, error="ran past 60 s",
                  cost=Cost(wall_seconds=compute, compute_seconds=compute))


def errored() -> Result:
    return Result(outcome=Outcome.failed, failure=FailureKind.error, error="RuntimeError: boom",
                  cost=Cost(wall_seconds=1.0, compute_seconds=1.0))


def started_child(tmp_path: Path, *overrides: str) -> tuple[Researcher, str]:
    task = make_task(["search.seed=0", "budget.retry_delay_seconds=0", *overrides])
    r = Researcher.open(tmp_path / "run", task, profile=CLEAN)
    [root] = r.next_nodes(1)
    r.on_result(root.id, finished(0.3))
    [child] = r.next_nodes(1)
    return r, child.id


def test_a_lost_trial_is_requeued_then_runs_again_without_a_second_backup(tmp_path: Path) -> None:
    r, node_id = started_child(tmp_path)
    visits = r.tree.get(ROOT_ID).visits
    r.on_result(node_id, lost(compute=5.0))
    node = r.tree.get(node_id)
    assert node.status is NodeStatus.pending and node.result is None
    [attempt] = node.failed_attempts
    assert attempt["attempt"] == 1 and attempt["failure"] == "lost"
    assert attempt["error"] == "the node's worker died"
    assert attempt["cost"]["compute_seconds"] == 5.0
    assert r.tree.get(ROOT_ID).visits == visits  # nothing backed up for the lost attempt
    assert r.budget.compute_used() >= 5.0 and r.budget.nodes_used() == len(r.tree) - 1
    again = r.next_nodes(1)
    assert [n.id for n in again] == [node_id] and again[0].attempts == 2  # re-queued nodes go first
    r.on_result(node_id, finished(0.6))
    assert r.tree.get(node_id).status is NodeStatus.finished
    assert r.tree.get(ROOT_ID).visits == visits + 1  # backed up once


def test_retries_stop_at_max_retries_then_the_node_fails(tmp_path: Path) -> None:
    r, node_id = started_child(tmp_path, "budget.max_retries=2")
    for _ in (1, 2):
        r.on_result(node_id, timed_out())
        assert r.tree.get(node_id).status is NodeStatus.pending
        assert r.next_nodes(1)[0].id == node_id
    r.on_result(node_id, timed_out())
    node = r.tree.get(node_id)
    assert node.status is NodeStatus.failed and node.result is not None
    assert node.result.failure is FailureKind.timeout and len(node.failed_attempts) == 2
    assert node.attempts == 3


def test_errors_and_divergence_are_not_retried(tmp_path: Path) -> None:
    r, node_id = started_child(tmp_path)
    r.on_result(node_id, errored())
    assert r.tree.get(node_id).status is NodeStatus.failed
    assert r.tree.get(node_id).result.failure is FailureKind.error  # type: ignore[union-attr]
    [other] = r.next_nodes(1)
    r.on_result(other.id, diverged())
    assert r.tree.get(other.id).status is NodeStatus.failed and not r.tree.get(other.id).failed_attempts


def test_retry_on_is_configurable(tmp_path: Path) -> None:
    r, node_id = started_child(tmp_path, "budget.retry_on=[error]", "budget.max_retries=1")
    r.on_result(node_id, errored())
    assert r.tree.get(node_id).status is NodeStatus.pending
    r2, other = started_child(tmp_path / "b", "budget.max_retries=0")
    r2.on_result(other, lost())
    assert r2.tree.get(other).status is NodeStatus.failed


def test_failed_attempts_survive_replay_and_snapshots(tmp_path: Path) -> None:
    r, node_id = started_child(tmp_path)
    r.on_result(node_id, lost())
    kinds = [e.kind for e in r.store.events()]
    assert kinds[-1] is EventKind.node_requeued
    from_journal = Store(tmp_path / "run").replay()
    assert from_journal.get(node_id).failed_attempts == r.tree.get(node_id).failed_attempts
    r.store.snapshot(r.tree)
    replayed = Store(tmp_path / "run").replay()
    assert replayed.get(node_id).failed_attempts == r.tree.get(node_id).failed_attempts


def test_a_retry_waits_its_delay_so_a_dead_machine_is_noticed_first(tmp_path: Path, monkeypatch) -> None:
    import trex_ray.research.researcher as researcher_module

    r, node_id = started_child(tmp_path, "budget.retry_delay_seconds=30", "search.children_per_expansion=1",
                               "budget.max_nodes=1")
    now = [1000.0]
    monkeypatch.setattr(researcher_module.time, "time", lambda: now[0])
    r.on_result(node_id, lost())
    assert r.retry_wait() == 30.0
    assert r.next_nodes(1) == [] and r.stop_reason() is None  # waiting, not finished
    now[0] += 31
    assert r.retry_wait() is None and [n.id for n in r.next_nodes(1)] == [node_id]
