"""`trex resume RUN budget.max_nodes=N`: a new budget is journaled, replays exactly, and a finished
run goes on. Pure: the Researcher with the synthetic executor, no Ray."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from factories import drive, make_task

from trex_ray.cli import UserError, main, resume_task
from trex_ray.research import BudgetTracker, Researcher
from trex_ray.spec import SpecError
from trex_ray.store import JOURNAL, SNAPSHOT, Store, tree_to_dict
from trex_ray.tree import EventKind

CLEAN = {"noise_estimate": 0.0, "duplicate_fraction": 0.0}


def open_run(run_dir: Path, *overrides: str) -> Researcher:
    return Researcher.open(run_dir, make_task(["search.seed=0", *overrides]), profile=CLEAN)


def finished_run(tmp_path: Path, nodes: int = 3) -> Path:
    run_dir = tmp_path / "run"
    r = open_run(run_dir, f"budget.max_nodes={nodes}")
    log = drive(r, slots=2)
    r.finish(log.reason or "")
    assert r.tree.finished_reason.startswith(f"node budget spent ({nodes}/{nodes} nodes")
    return run_dir


def kinds(run_dir: Path) -> list[EventKind]:
    return [e.kind for e in Store(run_dir, readonly=True).events()]


def dump(tree) -> str:
    return json.dumps(tree_to_dict(tree), sort_keys=True)


def test_a_finished_run_goes_on_with_a_raised_node_budget(tmp_path):
    run_dir = finished_run(tmp_path, nodes=3)
    task = resume_task(str(run_dir), ["budget.max_nodes=6"])
    assert task.budget.max_nodes == 6 and task.name == "tiny-sentiment"
    r = Researcher.open(run_dir, task, profile=CLEAN)
    assert r.tree.finished_reason is None
    assert r.tree.meta["task"]["budget"]["max_nodes"] == 6
    assert kinds(run_dir)[-1] is EventKind.budget_changed
    log = drive(r, slots=2)
    r.finish(log.reason or "")
    assert log.reason.startswith("node budget spent (6/6 nodes") and r.budget.nodes_used() == 6
    assert all(n.status.done and n.result is not None for n in r.tree)
    finishes = [e.payload["reason"] for e in Store(run_dir, readonly=True).events()
                if e.kind is EventKind.run_finished]
    assert [f.split(";")[0].rstrip(")") for f in finishes] == ["node budget spent (3/3 nodes",
                                                                "node budget spent (6/6 nodes"]
    # replay is exact, from the snapshot and from the journal alone
    assert dump(Store(run_dir).replay()) == dump(r.tree)
    (run_dir / SNAPSHOT).unlink()
    assert dump(Store(run_dir).replay()) == dump(r.tree)
    # a later plain `trex resume` reads the new budget back and records nothing
    again = resume_task(str(run_dir), [])
    assert again.budget.max_nodes == 6
    before = kinds(run_dir)
    Researcher.open(run_dir, again, profile=CLEAN)
    assert kinds(run_dir) == before


def test_a_resume_with_the_same_budget_records_nothing(tmp_path):
    run_dir = finished_run(tmp_path)
    before = kinds(run_dir)
    r = Researcher.open(run_dir, resume_task(str(run_dir), ["budget.max_nodes=3"]), profile=CLEAN)
    assert kinds(run_dir) == before and r.tree.finished_reason is not None


def test_compute_and_wall_budgets_are_extended_and_wall_time_counts_from_the_resume(tmp_path):
    run_dir = tmp_path / "run"
    r = open_run(run_dir, "budget.max_nodes=8", "budget.compute_seconds=25")
    log = drive(r, slots=1)
    r.finish(log.reason or "")
    assert log.reason.startswith("compute budget spent")
    used = BudgetTracker(r.task.budget, r.tree).compute_used()
    task = resume_task(str(run_dir), [f"budget.compute_seconds={used + 40}", "budget.wall_seconds=600"])
    r2 = Researcher.open(run_dir, task, profile=CLEAN)
    assert r2.tree.meta["wall_started"] >= r2.tree.meta["started"]
    r2.tree.meta["started"] = time.time() - 10_000  # a run first started long ago
    assert r2.budget.wall_used() < 60 and r2.budget.exhausted() is None  # 600 s from the resume
    log2 = drive(r2, slots=1)
    assert log2.reason.startswith("compute budget spent") and len(r2.tree) > len(r.tree)


@pytest.mark.parametrize(("override", "error", "match"), [
    ("search.planner=llm", UserError, "override 'search.planner': only budget.* may change on resume"),
    ("model.id=other", UserError, "only budget.*"),
    ("budget=7", UserError, "only budget.*"),
    ("budget.max_nodes=0", SpecError, "field budget.max_nodes: input should be greater than or equal to 1"),
    ("budget.max_nodez=9", SpecError, "field budget.max_nodez: remove it"),
    ("budget.wall_seconds=soon", SpecError, "field budget.wall_seconds"),
])
def test_only_budget_fields_may_change_on_resume(tmp_path, override, error, match):
    run_dir = finished_run(tmp_path)
    with pytest.raises(error, match=match) as info:
        resume_task(str(run_dir), [override])
    assert "\n" not in str(info.value)


def test_trex_resume_with_a_bad_override_exits_2_and_writes_nothing(tmp_path, capsys):
    run_dir = finished_run(tmp_path)
    journal = (run_dir / JOURNAL).read_bytes()
    assert main(["resume", str(run_dir), "budget.max_nodes=6", "search.seed=3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "only budget.*" in err
    assert (run_dir / JOURNAL).read_bytes() == journal
    assert main(["resume", str(tmp_path / "nowhere"), "budget.max_nodes=6"]) == 2
    assert "not a trex run directory" in capsys.readouterr().err
