"""research: the Researcher loop over a synthetic executor, planners, insights, budgets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from factories import (
    BASE_METRIC,
    TreeBuilder,
    diverged,
    drive,
    finished,
    make_plan,
    make_task,
    stopped,
    synthetic_result,
)

from trex_ray.research import (
    BudgetTracker,
    InsightMemory,
    Researcher,
    distill,
    get_planner,
    plan_changes,
    planner_names,
)
from trex_ray.research import budget as budget_module
from trex_ray.research.heuristic import CONTINUATION_WARMUP, HeuristicPlanner, diagnose
from trex_ray.spec import Budget, Decision, EvalRecipe, Outcome, Plan, Progress, Result, TrainMode
from trex_ray.store import SNAPSHOT, Store
from trex_ray.tree import ROOT_ID, Event, EventKind, NodeStatus
from trex_ray.tree.policy import STOP_MARGIN

REPO = Path(__file__).resolve().parents[1]
CLEAN = {"noise_estimate": 0.0, "duplicate_fraction": 0.0}
NOISY = {"noise_estimate": 0.2, "duplicate_fraction": 0.05}


def open_run(tmp_path: Path, *overrides: str, profile=None, planner=None, name: str = "run") -> Researcher:
    task = make_task(["search.seed=0", *overrides])
    return Researcher.open(
        tmp_path / name, task, profile=CLEAN if profile is None else profile, planner=planner
    )


def events(r: Researcher) -> list[Event]:
    return list(r.store.events())


# --- purity ----------------------------------------------------------------------------
def test_pure_packages_import_without_ray_or_torch():
    code = (
        "import sys\n"
        "import trex_ray.spec, trex_ray.tree, trex_ray.store, trex_ray.research\n"
        "heavy = sorted(m for m in ('ray', 'torch') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


# --- opening a run ---------------------------------------------------------------------
def test_open_creates_run_started_and_the_root(tmp_path):
    r = open_run(tmp_path, profile=NOISY)
    evs = events(r)
    assert [e.kind for e in evs] == [EventKind.run_started, EventKind.node_added]
    started = evs[0].payload
    assert (
        started["run_id"] == "run"
        and started["profile"] == NOISY
        and started["task"]["name"] == "tiny-sentiment"
    )
    assert evs[1].node_id == ROOT_ID and evs[1].payload["parent"] is None
    root = r.tree.root
    assert root.plan.train.mode is TrainMode.none and root.status is NodeStatus.pending
    assert r.tree.meta["profile"] == NOISY and "started" in r.tree.meta


def test_reopening_a_fresh_run_adds_nothing(tmp_path):
    r = open_run(tmp_path)
    again = open_run(tmp_path)
    assert len(events(again)) == len(events(r)) == 2
    assert len(again.tree) == 1


def test_reopening_after_a_crash_before_the_root_adds_the_root(tmp_path):
    store = Store(tmp_path / "run")
    store.append(Event(kind=EventKind.run_started, payload={"task": {}, "run_id": "run", "profile": {}}))
    r = open_run(tmp_path)
    assert r.tree.root is not None
    assert [n.id for n in r.next_nodes(1)] == [ROOT_ID]


def test_unknown_planner_is_refused():
    assert "heuristic" in planner_names()
    with pytest.raises(ValueError, match="unknown planner"):
        get_planner("oracle", make_task())


# --- next_nodes ------------------------------------------------------------------------
def test_next_nodes_respects_slots(tmp_path):
    r = open_run(tmp_path)
    assert r.next_nodes(0) == []
    first = r.next_nodes(2)
    assert [n.id for n in first] == [ROOT_ID, "n1"]  # the base model is evaluated first
    assert all(n.status is NodeStatus.running for n in first)
    assert {n.id for n in r.running()} == {ROOT_ID, "n1"}
    more = r.next_nodes(1)
    assert len(more) == 1 and more[0].id == "n2"  # planned earlier, queued, started now
    assert all(e.payload["attempt"] == 1 for e in events(r) if e.kind is EventKind.node_started)


def test_next_nodes_never_exceeds_max_nodes(tmp_path):
    r = open_run(tmp_path, "budget.max_nodes=3")
    started = r.next_nodes(10)
    assert len(started) <= 10 and len(r.tree) <= 4
    log = drive(r, slots=10, running=[n.id for n in started])
    # max_nodes counts the trained nodes beyond the root; a trial stopped early frees its place
    assert len(r.tree) == 4 + r.budget.nodes_stopped()
    assert r.budget.nodes_used() == 3 and r.budget.nodes_left() == 0
    assert r.next_nodes(5) == []
    assert "node budget" in log.reason


def test_drafts_from_the_root_come_from_the_heuristic_planner_and_are_distinct(tmp_path):
    r = open_run(tmp_path, "budget.max_nodes=10")
    started = r.next_nodes(4)
    drafts = [n for n in started if n.id != ROOT_ID]
    assert len(drafts) == 3 and all(n.parent == ROOT_ID for n in drafts)
    assert len({n.plan.hash for n in drafts}) == 3
    expected = HeuristicPlanner(r.task)._drafts(r.tree.root.plan, CLEAN)[:3]
    assert [n.plan.hash for n in drafts] == [p.hash for p in expected]
    assert [n.plan.rationale for n in drafts] == [p.rationale for p in expected]
    assert all(n.plan.train.mode is not TrainMode.none for n in drafts)


def test_noisy_data_puts_cleaning_among_the_first_drafts(tmp_path):
    clean = open_run(tmp_path, profile=CLEAN, name="clean").next_nodes(3)[1:]
    noisy = open_run(tmp_path, profile=NOISY, name="noisy").next_nodes(3)[1:]
    assert not any(n.plan.data.has("label_noise_filter") for n in clean)
    assert any(n.plan.data.has("label_noise_filter") for n in noisy)


# --- a whole search --------------------------------------------------------------------
@pytest.mark.parametrize(("slots", "seed"), [(1, 0), (3, 1), (4, 2)])
def test_synthetic_search_finishes_within_budget_and_beats_the_root(tmp_path, slots, seed):
    r = open_run(tmp_path, "budget.max_nodes=12")
    log = drive(r, slots=slots, seed=seed)
    tree = r.tree
    assert log.reason is not None and tree.finished_reason == log.reason
    assert 1 < len(tree) and r.budget.nodes_used() <= 12 and r.budget.nodes_started() <= 24
    assert not r.running() and not tree.with_status(NodeStatus.pending)
    best = tree.best()
    assert best.metric > tree.root.metric == BASE_METRIC
    assert best.metric >= 0.8  # near the synthetic optimum (lr 2e-3)
    path = tree.best_path()
    assert path[0].id == ROOT_ID and path[-1].id == best.id
    assert tree.root.visits == sum(1 for n in tree if n.result is not None)
    assert set(log.dispatched) == {n.id for n in tree}  # every node ran exactly once
    assert len(log.dispatched) == len(tree)


def test_search_goes_deeper_than_the_drafts(tmp_path):
    r = open_run(tmp_path, "budget.max_nodes=12")
    drive(r, slots=2)
    assert max(n.depth for n in r.tree) >= 2
    assert any(n.plan.train.warm_start for n in r.tree) or any(n.plan.data.ops for n in r.tree)


def test_replay_of_a_finished_search_equals_the_live_tree(tmp_path):
    from trex_ray.store import tree_to_dict

    r = open_run(tmp_path, "budget.max_nodes=14")
    drive(r, slots=3, executor=lambda p: synthetic_result(p, diverge_lr=5e-3))
    live = json.dumps(tree_to_dict(r.tree), sort_keys=True)
    assert json.dumps(tree_to_dict(Store(tmp_path / "run").replay()), sort_keys=True) == live
    (tmp_path / "run" / SNAPSHOT).unlink()  # the journal alone, NaN losses of diverged runs included
    assert json.dumps(tree_to_dict(Store(tmp_path / "run").replay()), sort_keys=True) == live


def test_early_stopping_turns_losers_into_stopped_nodes(tmp_path):
    def uneven(plan: Plan) -> Result:
        result = synthetic_result(plan)
        if plan.train.mode is TrainMode.lora:  # LoRA drafts learn far slower here
            curve = [p.model_copy(update={"val_loss": p.val_loss * 3}) for p in result.curve]
            return result.model_copy(update={"curve": curve})
        return result

    r = open_run(tmp_path, "budget.max_nodes=6")
    log = drive(r, slots=4, executor=uneven, seed=3)
    stopped_nodes = r.tree.with_status(NodeStatus.stopped)
    assert log.early_stops == len(stopped_nodes) >= 1
    assert any(n.plan.train.mode is TrainMode.lora for n in stopped_nodes)  # the slow learner is cut
    for n in stopped_nodes:
        assert n.result.outcome is Outcome.stopped and not n.expandable
        assert 0.5 <= n.progress[-1].fraction < 1.0  # at a rung, never before half of training
        done = n.progress[-1].fraction * n.plan.train.epochs
        rivals = [s.val_loss_at_epochs(done) for s in r.tree.siblings(n)
                  if s.plan.train.warm_start is n.plan.train.warm_start]
        assert min(v for v in rivals if v is not None) * (1 + STOP_MARGIN) < n.progress[-1].val_loss
    assert r.tree.best().status is NodeStatus.finished


def test_on_progress_for_a_node_that_is_not_running_says_stop(tmp_path):
    r = open_run(tmp_path)
    p = Progress(fraction=0.5, step=1, train_loss=1.0, val_loss=1.0)
    assert r.on_progress(ROOT_ID, p) is Decision.STOP  # pending
    r.next_nodes(1)
    assert r.on_progress(ROOT_ID, p) is Decision.CONTINUE
    assert r.tree.root.progress == [p]


def test_reopening_mid_search_requeues_running_nodes_and_keeps_finished_ones(tmp_path):
    r1 = open_run(tmp_path, "budget.max_nodes=10")
    log = drive(r1, slots=3, max_results=4)
    assert log.reason is None and log.running
    done = {n.id: n.metric for n in r1.tree if n.status.done}
    assert len(done) == 4
    statuses = {n.id: n.status for n in r1.tree}

    r2 = open_run(tmp_path, "budget.max_nodes=10")  # the first process 'crashed'
    for node_id in log.running:
        assert r2.tree.get(node_id).status is NodeStatus.pending
    for node_id, metric in done.items():
        assert r2.tree.get(node_id).metric == metric
        assert r2.tree.get(node_id).status is statuses[node_id]
    assert [e.node_id for e in events(r2) if e.kind is EventKind.node_requeued] == sorted(
        log.running, key=lambda i: int(i[1:])
    )

    restarted = r2.next_nodes(len(log.running))
    assert {n.id for n in restarted} == set(log.running)  # re-queued nodes go first
    assert all(n.attempts == 2 for n in restarted)
    finished_log = drive(r2, slots=3, running=[n.id for n in restarted])
    assert finished_log.reason is not None
    for node_id, metric in done.items():
        assert r2.tree.get(node_id).metric == metric
    assert r2.budget.nodes_used() <= 10
    assert r2.tree.best().metric >= max(m for m in done.values() if m is not None)
    assert Store(tmp_path / "run").replay().finished_reason == finished_log.reason


def test_results_of_requeued_nodes_count_once(tmp_path):
    r1 = open_run(tmp_path, "budget.max_nodes=4")
    r1.next_nodes(2)
    r2 = open_run(tmp_path, "budget.max_nodes=4")
    drive(r2, slots=2)
    assert r2.tree.root.visits == sum(1 for n in r2.tree if n.result is not None)


# --- insights --------------------------------------------------------------------------
def test_insights_are_recorded_for_every_result_but_the_roots(tmp_path):
    r = open_run(tmp_path, "budget.max_nodes=14")
    drive(r, slots=3, executor=lambda p: synthetic_result(p, diverge_lr=5e-3))
    with_result = {n.id for n in r.tree if n.result is not None and n.id != ROOT_ID}
    recorded = [rec["node_id"] for rec in r.tree.insights]
    assert sorted(recorded) == sorted(with_result)  # one each
    assert all(r.tree.get(i).insight for i in with_result) and r.tree.root.insight is None
    kinds = {rec["facts"]["kind"] for rec in r.tree.insights}
    assert "delta" in kinds and "diverged" in kinds
    assert InsightMemory(r.tree.insights).render()


def test_a_diverged_learning_rate_is_vetoed_for_later_plans(tmp_path):
    r = open_run(tmp_path, "budget.max_nodes=14")
    drive(r, slots=3, executor=lambda p: synthetic_result(p, diverge_lr=5e-3))
    ceilings: dict[str, float] = {}
    vetoed_checks = 0
    for e in events(r):
        if e.kind is EventKind.insight and e.payload["facts"]["kind"] == "diverged":
            mode, lr = e.payload["facts"]["mode"], e.payload["facts"]["lr"]
            ceilings[mode] = min(lr, ceilings.get(mode, lr))
        if e.kind is EventKind.node_added and e.payload["parent"] is not None:
            plan = Plan.model_validate(e.payload["plan"])
            ceiling = ceilings.get(plan.train.mode.value)
            if ceiling is not None:
                vetoed_checks += 1
                assert plan.train.learning_rate < 0.9 * ceiling, (
                    e.node_id,
                    plan.train.learning_rate,
                    ceiling,
                )
    assert ceilings, "nothing diverged: the test did not test the veto"
    assert vetoed_checks > 0
    assert InsightMemory(r.tree.insights).lr_ceiling("full") == ceilings["full"]


def test_heuristic_planner_vetoes_at_or_above_a_diverged_lr():
    b = TreeBuilder()
    b.root()
    memory_fact = {"kind": "diverged", "mode": "full", "lr": 5e-3}
    b.emit(EventKind.insight, None, text="diverged", facts=memory_fact)
    task = make_task()
    plans = HeuristicPlanner(task).propose(b.tree, b.tree.root, k=5)
    assert plans
    full = [p for p in plans if p.train.mode is TrainMode.full]
    assert full and all(p.train.learning_rate < 4.5e-3 for p in full)
    assert any(p.train.mode is TrainMode.lora and p.train.learning_rate == 5e-3 for p in plans)  # other mode


def test_lr_ceiling_is_the_lowest_diverged_lr_per_mode():
    records = [
        {"facts": {"kind": "diverged", "mode": "full", "lr": 1e-2}},
        {"facts": {"kind": "diverged", "mode": "full", "lr": 4e-3}},
        {"facts": {"kind": "diverged", "mode": "lora", "lr": 2e-2}},
        {"facts": {"kind": "error", "mode": "full", "lr": 1e-4}},
        {"text": "no facts"},
    ]
    memory = InsightMemory(records)
    assert memory.lr_ceiling("full") == 4e-3
    assert memory.lr_ceiling("lora") == 2e-2
    assert memory.lr_ceiling("none") is None


def test_change_effect_and_render():
    records = [
        {"text": "a", "facts": {"kind": "delta", "changes": ["+data.dedup"], "delta": 0.1}},
        {
            "text": "b",
            "facts": {"kind": "delta", "changes": ["+data.dedup", "train.epochs=3.0"], "delta": -0.05},
        },
        {"text": "c" * 50, "facts": {"kind": "score"}},
    ]
    memory = InsightMemory(records)
    assert memory.change_effect("+data.dedup") == pytest.approx(0.025)
    assert memory.change_effect("train.epochs=3.0") == pytest.approx(-0.05)
    assert memory.change_effect("+data.length_filter") is None
    assert memory.render().splitlines()[0] == "- " + "c" * 50  # most recent first
    assert memory.render(max_chars=52).count("\n") == 0  # only the newest line fits
    assert memory.render(max_chars=60).splitlines() == ["- " + "c" * 50, "- b", "- a"]


def test_planner_ranks_changes_that_helped_first():
    b = TreeBuilder()
    b.root()
    parent = b.child(ROOT_ID, 0.7, plan=make_plan(2e-3))
    plans = HeuristicPlanner(make_task()).propose(b.tree, b.tree.get(parent), k=3)
    assert not plans[0].data.has("length_filter")  # by default cleaning ops come in CLEANING_OPS order
    b.emit(
        EventKind.insight,
        None,
        text="length filter helped",
        facts={"kind": "delta", "changes": ["+data.length_filter"], "delta": 0.2},
    )
    plans = HeuristicPlanner(make_task()).propose(b.tree, b.tree.get(parent), k=3)
    assert plans[0].data.has("length_filter")


def test_plan_changes():
    parent = make_plan(2e-3)
    child = make_plan(1e-3, ops=["dedup"], warm_start=True)
    child = child.model_copy(update={"eval": EvalRecipe(backend="vllm")})
    changes = plan_changes(parent, child)
    assert "train.learning_rate=0.001" in changes and "train.warm_start=True" in changes
    assert "+data.dedup" in changes and "eval.backend=vllm" in changes
    assert plan_changes(child, parent).count("-data.dedup") == 1
    assert plan_changes(parent, parent.model_copy(update={"rationale": "x"})) == []


def test_distill_texts_and_facts():
    b = TreeBuilder()
    b.root(metric=0.3)
    good = b.child(ROOT_ID, 0.6, plan=make_plan(2e-3))
    bad = b.child(ROOT_ID, diverged(), plan=make_plan(1e-2))
    halt = b.child(ROOT_ID, stopped(), plan=make_plan(1e-4))
    text, facts = distill(b.tree, b.tree.get(good))
    assert facts["kind"] == "delta" and facts["delta"] == pytest.approx(0.3) and "helped" in text
    text, facts = distill(b.tree, b.tree.get(bad))
    assert facts == {"kind": "diverged", "mode": "full", "lr": 1e-2} and "diverged" in text
    text, facts = distill(b.tree, b.tree.get(halt))
    assert facts["kind"] == "stopped" and "stopped early" in text
    b2 = TreeBuilder()
    b2.root(metric=None)  # the base model's score is not in yet
    n = b2.child(ROOT_ID, 0.5)
    assert distill(b2.tree, b2.tree.get(n))[1] == {"kind": "score", "metric": 0.5}


# --- diagnose --------------------------------------------------------------------------
def node_with(result: Result | None):
    b = TreeBuilder()
    b.root()
    n = b.add(ROOT_ID)
    if result is not None:
        b.finish(n, result)
    return b.tree.get(n)


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (finished(0.7, (1.0, 0.7, 0.6, 0.75)), "overfit"),
        (finished(0.7, (1.3, 1.0, 1.05, 1.1)), "overfit"),
        (finished(0.7, (1.0, 0.8, 0.6, 0.45)), "underfit"),
        (finished(0.7, (1.6, 1.2, 1.0, 0.99)), "good"),
        (finished(0.7, (0.5,)), "good"),
        (diverged(), "diverged"),
        (Result(outcome=Outcome.failed, error="boom"), "failed"),
        (stopped(), "stopped"),
        (None, "failed"),
    ],
)
def test_diagnose(result, expected):
    assert diagnose(node_with(result)) == expected


def test_refinements_follow_the_diagnosis():
    task = make_task()
    planner = HeuristicPlanner(task)
    for losses, check in [
        ((1.0, 0.7, 0.6, 0.75), lambda ps: any(p.train.epochs < 2 for p in ps)),  # overfit: fewer epochs
        ((1.0, 0.8, 0.6, 0.45), lambda ps: ps[0].train.warm_start),  # underfit: continue training
    ]:
        b = TreeBuilder()
        b.root()
        parent = b.child(ROOT_ID, finished(0.7, losses), plan=make_plan(2e-3))
        plans = planner.propose(b.tree, b.tree.get(parent), k=3)
        assert plans and check(plans), [p.rationale for p in plans]
        assert len({p.hash for p in plans}) == len(plans)
        assert not any(b.tree.has_plan(p, parent) for p in plans)
    b = TreeBuilder()
    b.root()
    failed = b.child(ROOT_ID, diverged(), plan=make_plan(6e-3))
    fixes = planner.propose(b.tree, b.tree.get(failed), k=2)
    assert fixes and all(p.train.learning_rate < 6e-3 for p in fixes)


# --- budgets ---------------------------------------------------------------------------
def test_budget_tracker_counts_nodes_and_compute_of_every_outcome():
    b = TreeBuilder()
    b.emit(EventKind.run_started, None, started=100.0)
    b.root(metric=None)
    tracker = BudgetTracker(Budget(max_nodes=3, compute_seconds=30), b.tree)
    assert tracker.nodes_used() == 0 and tracker.nodes_left() == 3 and tracker.can_add_node()
    b.child(ROOT_ID, finished(0.5, compute=10))
    b.child(ROOT_ID, diverged(compute=7))
    b.child(ROOT_ID, stopped(compute=3))
    # a trial stopped early frees its place: the node budget is spent on trained nodes
    assert tracker.nodes_used() == 2 and tracker.nodes_stopped() == 1 and tracker.nodes_left() == 1
    b.child(ROOT_ID, finished(0.4, compute=0))
    assert tracker.nodes_used() == 3 and not tracker.can_add_node()
    assert tracker.compute_used() == 20 and tracker.exhausted() is None
    b.finish(ROOT_ID, finished(0.3, compute=10))
    assert tracker.exhausted().startswith("compute budget spent")


def test_stopped_trials_free_their_place_but_at_most_max_nodes_of_them():
    b = TreeBuilder()
    b.root(metric=None)
    tracker = BudgetTracker(Budget(max_nodes=2), b.tree)
    for _ in range(3):
        b.child(ROOT_ID, stopped(compute=1))
    assert tracker.nodes_used() == 0 and tracker.nodes_left() == 1  # 4 may start in all, 3 have
    b.child(ROOT_ID, stopped(compute=1))
    assert tracker.nodes_started() == 4 and not tracker.can_add_node()


def test_compute_budget_stops_new_dispatches(tmp_path):
    r = open_run(tmp_path, "budget.max_nodes=50", "budget.compute_seconds=45")
    log = drive(r, slots=2)
    assert log.reason.startswith("compute budget spent")
    spent = 0.0
    for e in events(r):
        if e.kind is EventKind.node_finished:
            spent += e.payload["result"]["cost"]["compute_seconds"]
        if e.kind is EventKind.node_started:
            assert spent < 45, f"{e.node_id} started after the compute budget was spent"
    assert spent >= 45
    assert len(r.tree) < 51
    assert r.next_nodes(3) == []


def test_wall_budget_stops_new_dispatches(tmp_path, monkeypatch):
    r = open_run(tmp_path, "budget.wall_seconds=60")
    started = r.tree.meta["started"]
    first = r.next_nodes(2)
    assert first

    class Clock:
        @staticmethod
        def time() -> float:
            return started + 61

    monkeypatch.setattr(budget_module, "time", Clock)
    assert r.next_nodes(2) == []
    assert r.stop_reason().startswith("wall-time budget spent")
    for node in first:  # running trials still report
        r.on_result(node.id, synthetic_result(node.plan))
    assert r.next_nodes(2) == []


# --- planners that run dry -------------------------------------------------------------
class NoIdeas:
    name = "no-ideas"

    def __init__(self) -> None:
        self.calls = 0

    def propose(self, tree, node, k):
        self.calls += 1
        return []


class FewIdeas:
    """Two plans for the root, then nothing for anyone."""

    name = "few-ideas"

    def propose(self, tree, node, k):
        ideas = [make_plan(lr) for lr in (1e-3, 2e-3)]
        return [p for p in ideas if not tree.has_plan(p, node.id)][:k]


def test_a_planner_with_no_ideas_does_not_loop_forever(tmp_path):
    planner = NoIdeas()
    r = open_run(tmp_path, planner=planner)
    log = drive(r, slots=3, max_steps=20)
    assert log.reason == "no expandable node left"
    assert len(r.tree) == 1 and r.tree.root.status is NodeStatus.finished
    assert planner.calls < 20


def test_a_planner_that_runs_dry_ends_the_search(tmp_path):
    r = open_run(tmp_path, "budget.max_nodes=20", planner=FewIdeas())
    log = drive(r, slots=2, max_steps=50)
    assert log.reason == "no expandable node left"
    assert len(r.tree) == 3


def test_a_planner_returning_too_many_plans_cannot_overspend(tmp_path):
    class Flood:
        name = "flood"

        def propose(self, tree, node, k):
            return [make_plan(1e-4 * (i + 1), seed=len(tree)) for i in range(10)]

    r = open_run(tmp_path, "budget.max_nodes=3", planner=Flood())
    drive(r, slots=2, max_steps=50)
    assert len(r.tree) == 4


def test_finish_is_recorded_once_and_survives_reopening(tmp_path):
    r = open_run(tmp_path, "budget.max_nodes=2")
    log = drive(r, slots=2)
    r.finish("again")
    assert [e.payload["reason"] for e in events(r) if e.kind is EventKind.run_finished] == [log.reason]
    again = open_run(tmp_path, "budget.max_nodes=2")
    assert again.tree.finished_reason == log.reason
    assert len(again.tree) == len(r.tree) and not again.tree.with_status(NodeStatus.pending)


def _good_node(plan=None, losses=(1.6, 1.2, 1.0, 0.99)):
    b = TreeBuilder()
    b.root()
    node = b.child(ROOT_ID, finished(0.7, losses), plan=plan or make_plan(2e-3, epochs=2))
    return b, b.tree.get(node)


def test_data_and_template_changes_continue_the_checkpoint_they_refine():
    b, node = _good_node()
    plans = HeuristicPlanner(make_task()).propose(b.tree, node, k=12)
    changed = [p for p in plans if p.data.ops or p.data.template != node.plan.data.template]
    assert {op for p in changed for op in (o.op for o in p.data.ops)} == {"dedup", "label_noise_filter",
                                                                           "length_filter"}
    for p in changed:  # a PBT-like explore step: the node's checkpoint, one more epoch, its lr
        assert p.train.warm_start and p.train.epochs == 1 and p.train.warmup_ratio == CONTINUATION_WARMUP > 0
        assert p.train.learning_rate == node.plan.train.learning_rate
        assert "continuing its checkpoint" in p.rationale
    cold = [p for p in plans if not p.train.warm_start]
    assert any("train longer" in p.rationale for p in cold)  # a change of schedule still trains from scratch


@pytest.mark.parametrize(("fixed", "expected"), [(0.0, 1.0), (8.0, 1.0), (60.0, 2.0), (900.0, 4.0)])
def test_continuations_grow_where_each_trial_pays_a_fixed_cost(fixed, expected):
    from trex_ray.research.heuristic import MAX_CONTINUATION_EPOCHS, continuation_epochs

    b = TreeBuilder()
    b.root()
    per_epoch = 14.0
    for epochs in (2, 2, 3):  # drafts
        b.child(ROOT_ID, finished(0.7, compute=fixed + per_epoch * epochs), plan=make_plan(epochs=epochs))
    node = b.tree.get(b.tree.root.children[0])
    b.child(node.id, finished(0.7, compute=fixed + per_epoch), plan=make_plan(epochs=1, warm_start=True))
    assert continuation_epochs(b.tree, node) == expected <= MAX_CONTINUATION_EPOCHS
    lone = TreeBuilder()
    lone.root()
    only = lone.tree.get(lone.child(ROOT_ID, finished(0.7, compute=500.0), plan=make_plan(epochs=2)))
    assert continuation_epochs(lone.tree, only) == 1.0  # one kind of run: no fit, one epoch
    plans = HeuristicPlanner(make_task()).propose(b.tree, node, k=12)
    assert all(p.train.epochs == expected for p in plans if p.train.warm_start)


# --- the test split: after the search, for the base and the best on validation -------------
def test_after_the_search_the_base_and_the_best_on_validation_are_scored_on_test(tmp_path):
    from trex_ray.report import summary, verdict

    r = open_run(tmp_path, "budget.max_nodes=6", "search.test_top_k=2")
    assert r.to_test_early() == []  # the base is not scored on validation yet
    drive(r, slots=2, max_results=3)
    assert [n.id for n in r.to_test_early()] == [ROOT_ID]  # may be taken while the search runs
    drive(r, slots=2, running=[n.id for n in r.tree.with_status(NodeStatus.running)])
    wanted = r.to_test()
    ranked = [n for n in r.tree.ranked() if n.parent is not None]
    assert [n.id for n in wanted] == [ROOT_ID, ranked[0].id, ranked[1].id]
    assert r.to_test_early() == wanted  # nothing waits and the node budget is spent: the last stretch
    for node in wanted:
        r.on_test(node.id, {"test_metric": (node.metric or 0) - 0.05, "rows": 320})
    assert r.to_test() == [] and r.to_test_early() == []  # a resumed run scores only what is missing
    replayed = Store(tmp_path / "run").replay()
    info = summary(replayed, r.task)
    assert info["model"] == "builtin:tiny-llama"
    assert info["base_metric"] == BASE_METRIC and info["base_test_metric"] == BASE_METRIC - 0.05
    assert info["best"]["val_metric"] == ranked[0].metric
    assert info["best"]["test_metric"] == ranked[0].metric - 0.05
    assert info["test_gain"] == info["best"]["test_metric"] - info["base_test_metric"]
    records = {n["id"]: n for n in info["nodes"]}
    assert records[ranked[2].id]["test_metric"] is None and records[ranked[2].id]["val_metric"] is not None
    assert verdict(replayed, r.task).startswith("test split: best")


def test_under_keep_checkpoints_the_last_stretch_scores_only_checkpoints_that_outlast_it(tmp_path):
    """Two running trials could push the leader out of the 2 kept checkpoints while it is scored: not yet;
    with one left running, its place is safe."""
    overrides = ("budget.max_nodes=4", "search.keep_checkpoints=2", "search.test_top_k=1",
                 "search.early_stopping=false")
    two = open_run(tmp_path, *overrides, name="two")
    drive(two, slots=2, max_results=3)
    assert not two.tree.with_status(NodeStatus.pending) and not two.budget.can_add_node()
    assert len(two.running()) == 2 and [n.id for n in two.to_test_early()] == [ROOT_ID]
    one = open_run(tmp_path, *overrides, name="one")
    drive(one, slots=2, max_results=4)
    leader = [n for n in one.tree.ranked() if n.parent is not None][0]
    assert len(one.running()) == 1 and [n.id for n in one.to_test_early()] == [ROOT_ID, leader.id]


def test_the_verdict_says_loudly_when_no_node_beat_the_base(tmp_path):
    from trex_ray.report import verdict

    b = TreeBuilder()
    b.root(0.5)
    child = b.child("n0", 0.6)
    b.emit(EventKind.node_tested, "n0", test_metric=0.55)
    b.emit(EventKind.node_tested, child, test_metric=0.50)
    assert verdict(b.tree, make_task()).startswith("NO NODE BEAT THE BASE MODEL on the test split")


def test_pretrained_drafts_are_gentle_and_scaled_by_size():
    from trex_ray.research.heuristic import draft_rates

    small = draft_rates({"pretrained": True, "params": 134_515_008})
    large = draft_rates({"pretrained": True, "params": 1_700_000_000})
    random_init = draft_rates({"pretrained": False})
    assert 1e-4 <= small.full <= 5e-4 and small.lora == pytest.approx(10 * small.full)
    assert large.full < small.full / 3
    assert random_init.full == 2e-3  # the tiny test model learns from scratch
    task = make_task(["search.seed=0"])
    b = TreeBuilder()
    b.root(0.4)
    profile = {"model": {"pretrained": True, "params": 134_515_008, "chat": True}, **CLEAN}
    b.tree.meta["profile"] = profile
    drafts = HeuristicPlanner(task).propose(b.tree, b.tree.root, k=5)
    assert [p.train.mode for p in drafts[:2]] == [TrainMode.full, TrainMode.lora]
    assert max(p.train.learning_rate for p in drafts if p.train.mode is TrainMode.full) <= 6e-4
    assert all(p.data.template == "auto" for p in drafts)
    lora = drafts[1].train
    assert (lora.lora_r, lora.lora_alpha, lora.lora_dropout) == (16, 32, 0.05)
