"""Checkpoint retention (search.keep_checkpoints): the K best stay, with what they and pending warm
starts need; the rest are deleted as the run goes, journaled, and a resume still works."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from factories import TreeBuilder, drive, finished, make_plan, make_task, synthetic_result

from trex_ray.cli import main
from trex_ray.research import Researcher
from trex_ray.research.retention import base_dependency, deletable
from trex_ray.spec import Result, SpecError, TrainMode
from trex_ray.spec.trial import Trial
from trex_ray.store import Store
from trex_ray.tree import EventKind, NodeStatus


def _ids(nodes) -> list[str]:  # type: ignore[no-untyped-def]
    return [n.id for n in nodes]


def test_keep_all_by_default_and_the_k_best_otherwise() -> None:
    b = TreeBuilder()
    b.root()
    for metric in (0.5, 0.9, 0.7, 0.6):
        b.child("n0", metric)
    assert deletable(b.tree, None) == []
    assert _ids(deletable(b.tree, 2)) == ["n1", "n4"]  # n2 0.9 and n3 0.7 stay
    assert _ids(deletable(b.tree, 1, test_top_k=3)) == ["n1"]  # the test split needs its top 3


def test_a_pending_or_running_warm_start_keeps_its_parent() -> None:
    b = TreeBuilder()
    b.root()
    weak, strong = b.child("n0", 0.4), b.child("n0", 0.9)
    warm = b.add(weak, make_plan(1e-3, warm_start=True))
    assert _ids(deletable(b.tree, 1)) == []  # n1 is weak but its child will load it
    b.start(warm)
    assert _ids(deletable(b.tree, 1)) == []
    b.emit(EventKind.node_finished, warm, result=finished(0.5).model_dump(mode="json"))
    assert _ids(deletable(b.tree, 1)) == [weak, warm]
    assert strong not in _ids(deletable(b.tree, 1))


def test_an_adapter_trained_on_a_full_fine_tune_keeps_that_checkpoint() -> None:
    b = TreeBuilder()
    b.root()
    full = b.child("n0", 0.5)
    lora = b.child(full, 0.95, make_plan(3e-3, mode="lora", warm_start=True))
    lora2 = b.child(lora, 0.96, make_plan(1e-3, mode="lora", warm_start=True))  # continues lora's adapter
    b.child("n0", 0.9)
    assert base_dependency(b.tree, b.tree.get(lora2)).id == full  # type: ignore[union-attr]
    assert base_dependency(b.tree, b.tree.get(full)) is None
    doomed = _ids(deletable(b.tree, 1))
    assert full not in doomed and lora2 not in doomed and lora in doomed  # lora2 needs full, not lora


def test_keep_checkpoints_must_be_positive() -> None:
    with pytest.raises(SpecError, match="search.keep_checkpoints"):
        make_task(["search.keep_checkpoints=0"])


def _result(node, folder: Path, rng: random.Random):  # type: ignore[no-untyped-def]
    result = synthetic_result(node.plan)
    if node.plan.train.mode is TrainMode.none or not result.ok:
        return result
    ckpt = folder / node.id / "checkpoint"
    ckpt.mkdir(parents=True)
    (ckpt / "model.safetensors").write_bytes(rng.randbytes(4096))
    return result.model_copy(update={"checkpoint": str(ckpt)})


def _search(run_dir: Path, keep: int, seed: int = 0, stop_after: int | None = None) -> Researcher:
    """A 20-node search with 3 trials in flight, through the production trial loop (``factories.drive``);
    every warm start checks its parent's files as it trains. (20: the planner's rate-model bets come
    first in each refinement, so warm starts come after a dozen nodes.) ``stop_after``: a crash after
    that many results, trials still running."""
    task = make_task([f"search.keep_checkpoints={keep}", "budget.max_nodes=20", "search.seed=0"])
    r = Researcher.open(run_dir, task, profile={"noise_estimate": 0.2, "duplicate_fraction": 0.05})
    rng = random.Random(seed)

    def train(trial: Trial) -> Result:
        node = r.tree.get(trial.node_id)
        if node.plan.train.warm_start and node.parent != "n0":
            parent = r.tree.get(node.parent)  # type: ignore[arg-type]
            assert Path(parent.result.checkpoint).is_dir(), f"{node.id} would warm-start from nothing"  # type: ignore[union-attr]
        return _result(node, run_dir / "nodes", rng)

    drive(r, slots=3, seed=seed, max_results=stop_after, report_progress=False, run_trial=train)
    return r


def _on_disk(run_dir: Path) -> set[str]:
    return {p.parent.name for p in (run_dir / "nodes").glob("*/checkpoint")}


def test_a_20_node_run_keeps_three_checkpoints_and_the_best(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    r = _search(tmp_path / "run", keep=3)
    tree = Store(tmp_path / "run").replay()
    trained = [n for n in tree if n.result and n.result.checkpoint and n.parent is not None]
    assert len(trained) >= 10 and any(n.plan.train.warm_start for n in tree)
    kept = _on_disk(tmp_path / "run")
    best = tree.best()
    assert best is not None and best.id in kept
    assert len(kept) <= 3 + sum(1 for n in tree if n.id in kept and base_dependency(tree, n) is not None)
    assert kept == {n.id for n in trained if not n.checkpoint_deleted}  # the journal says what is on disk
    deleted = [e for e in r.store.events() if e.kind is EventKind.checkpoint_deleted]
    assert len(deleted) == len(trained) - len(kept) and all(e.payload["bytes"] == 4096 for e in deleted)
    assert main(["status", str(tmp_path / "run")]) == 0
    assert f"checkpoints: {len(kept)} kept, 0.0 MiB; {len(deleted)} deleted" in capsys.readouterr().out


def test_a_resumed_run_deletes_what_a_crash_left_and_goes_on(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    r = _search(run_dir, keep=2, stop_after=6)  # "crash": nodes still running
    running = {n.id for n in r.tree.with_status(NodeStatus.running)}
    gone = [n for n in r.tree if n.checkpoint_deleted]
    assert gone and running
    leftover = Path(gone[0].result.checkpoint)  # type: ignore[union-attr]
    leftover.mkdir(parents=True)  # journaled as deleted, but the delete never happened
    again = _search(run_dir, keep=2)
    assert not leftover.exists()
    assert again.tree.finished_reason is not None
    assert {n.id for n in again.tree if n.result and n.result.checkpoint and not n.checkpoint_deleted
            and n.parent is not None} == _on_disk(run_dir)
