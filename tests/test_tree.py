"""tree: events build the tree; values back up; best(), best_path(), has_plan()."""

from __future__ import annotations

import math

import pytest
from factories import BASE_METRIC, TreeBuilder, diverged, finished, make_plan, stopped

from trex_ray.spec import Progress, TrainMode
from trex_ray.tree import ROOT_ID, Event, EventKind, NodeStatus, SearchTree, TreeError


def test_events_build_the_tree():
    b = TreeBuilder()
    root = b.root(metric=None)
    a = b.add(root)
    c = b.add(root)
    g = b.add(a)
    tree = b.tree
    assert tree.root is tree.get(root) and tree.root.id == ROOT_ID
    assert tree.get(root).children == [a, c]
    assert [n.id for n in tree.children(tree.get(root))] == [a, c]
    assert tree.get(g).parent == a and tree.get(g).depth == 2 and tree.get(a).depth == 1
    assert [n.id for n in tree.siblings(tree.get(a))] == [c]
    assert tree.siblings(tree.get(root)) == []
    assert [n.id for n in tree.ancestors(tree.get(g))] == [a, root]
    assert all(n.status is NodeStatus.pending for n in tree)
    assert len(tree) == 4 and tree.next_id() == "n4"
    assert tree.last_seq == len(b.events) - 1


def test_lifecycle_started_progress_finished():
    b = TreeBuilder()
    b.root(metric=None)
    n = b.add(ROOT_ID)
    b.start(n)
    node = b.tree.get(n)
    assert node.status is NodeStatus.running and node.attempts == 1
    b.emit(
        EventKind.node_progress, n, progress={"fraction": 0.5, "step": 5, "train_loss": 1.0, "val_loss": 1.1}
    )
    assert node.progress[0].val_loss == 1.1
    assert node.val_loss_at(0.5) == 1.1 and node.val_loss_at(0.25) is None and node.val_loss_at(0.75) is None
    b.emit(EventKind.node_finished, n, result=finished(0.7).model_dump(mode="json"))
    assert node.status is NodeStatus.finished and node.metric == 0.7 and node.ok and node.expandable
    assert len(node.progress) == 4  # the final curve replaces the partial one


def test_requeue_resets_to_pending_and_a_restart_counts_an_attempt():
    b = TreeBuilder()
    b.root(metric=None)
    n = b.start(b.add(ROOT_ID))
    b.emit(EventKind.node_progress, n, progress={"fraction": 0.25, "step": 1, "train_loss": 1.0})
    b.emit(EventKind.node_requeued, n, reason="interrupted")
    node = b.tree.get(n)
    assert node.status is NodeStatus.pending and node.progress == [] and node.result is None
    b.start(n)
    assert node.attempts == 2 and node.status is NodeStatus.running


def test_outcomes_map_to_statuses():
    b = TreeBuilder()
    b.root()
    f = b.child(ROOT_ID, diverged())
    s = b.child(ROOT_ID, stopped())
    assert b.tree.get(f).status is NodeStatus.failed and not b.tree.get(f).expandable
    assert b.tree.get(s).status is NodeStatus.stopped and not b.tree.get(s).expandable
    assert b.tree.get(f).metric is None and b.tree.get(s).metric is None
    assert all(
        st.done for st in (NodeStatus.finished, NodeStatus.failed, NodeStatus.stopped, NodeStatus.pruned)
    )
    assert not NodeStatus.pending.done and not NodeStatus.running.done


def test_pruned_node_keeps_its_result_but_closes():
    b = TreeBuilder()
    b.root()
    n = b.child(ROOT_ID, 0.5)
    b.emit(EventKind.node_pruned, n, reason="lost")
    node = b.tree.get(n)
    assert node.status is NodeStatus.pruned and node.prune_reason == "lost"
    assert node.metric == 0.5 and not node.expandable


def test_bad_events_are_refused():
    b = TreeBuilder()
    b.root()
    with pytest.raises(TreeError):
        b.add(None, node_id=ROOT_ID)  # duplicate id
    with pytest.raises(TreeError):
        b.add("n99")  # unknown parent
    with pytest.raises(TreeError):
        b.emit(EventKind.node_started, "n42")
    with pytest.raises(TreeError):
        SearchTree().apply(
            Event(kind=EventKind.node_added, node_id=None, payload={"parent": None, "plan": {}})
        )


def test_meta_insights_and_run_finished():
    b = TreeBuilder()
    b.emit(EventKind.run_started, None, task={"name": "t"}, run_id="r1", profile={"rows": 3})
    b.root()
    b.emit(EventKind.insight, ROOT_ID, text="base model is weak", facts={"kind": "score"})
    b.emit(EventKind.insight, None, text="global note", facts={})
    b.emit(EventKind.run_finished, None, reason="budget")
    tree = b.tree
    assert tree.meta == {"task": {"name": "t"}, "run_id": "r1", "profile": {"rows": 3}}
    assert tree.get(ROOT_ID).insight == "base model is weak"
    assert [r["text"] for r in tree.insights] == ["base model is weak", "global note"]
    assert tree.insights[0]["node_id"] == ROOT_ID
    assert tree.finished_reason == "budget"


# --- backup ----------------------------------------------------------------------------
def test_backup_of_visits_value_and_best_up_the_ancestors():
    b = TreeBuilder()
    b.root(metric=0.3)
    a = b.child(ROOT_ID, 0.6)
    c = b.child(ROOT_ID, 0.5)
    g = b.child(a, 0.9)
    t = b.tree
    assert (t.get(g).visits, t.get(g).value_sum, t.get(g).best_value) == (1, 0.9, 0.9)
    assert t.get(a).visits == 2 and t.get(a).value_sum == pytest.approx(1.5) and t.get(a).best_value == 0.9
    assert t.get(c).visits == 1 and t.get(c).best_value == 0.5
    root = t.get(ROOT_ID)
    assert root.visits == 4 and root.value_sum == pytest.approx(0.3 + 0.6 + 0.5 + 0.9)
    assert root.best_value == 0.9 and root.mean_value == pytest.approx(2.3 / 4)


def test_backup_counts_only_finished_nodes():
    b = TreeBuilder()
    b.root(metric=None)
    a = b.start(b.add(ROOT_ID))
    assert b.tree.get(a).visits == 0 and b.tree.root.visits == 0
    assert b.tree.get(a).mean_value == 0.0 and b.tree.get(a).best_value == -math.inf


def test_failed_and_stopped_nodes_are_visits_with_reward_zero():
    b = TreeBuilder()
    b.root(metric=0.4)
    a = b.child(ROOT_ID, 0.8)
    f = b.child(a, diverged())
    s = b.child(a, stopped())
    t = b.tree
    assert t.get(f).visits == 1 and t.get(f).value_sum == 0.0 and t.get(f).best_value == -math.inf
    assert t.get(s).visits == 1 and t.get(s).value_sum == 0.0
    assert t.get(a).visits == 3 and t.get(a).value_sum == pytest.approx(0.8) and t.get(a).best_value == 0.8
    assert t.get(ROOT_ID).visits == 4 and t.get(ROOT_ID).best_value == 0.8


# --- best ------------------------------------------------------------------------------
def test_best_and_best_path():
    b = TreeBuilder()
    b.root(metric=0.3)
    a = b.child(ROOT_ID, 0.6)
    b.child(ROOT_ID, 0.7)
    g = b.child(a, 0.95)
    b.child(g, diverged())
    assert b.tree.best().id == g
    assert [n.id for n in b.tree.best_path()] == [ROOT_ID, a, g]


def test_best_ignores_failed_stopped_and_unfinished_and_breaks_ties_by_age():
    b = TreeBuilder()
    b.root(metric=None)
    assert b.tree.best() is None and b.tree.best_path() == []
    b.child(ROOT_ID, diverged())
    b.child(ROOT_ID, stopped())
    b.start(b.add(ROOT_ID))
    assert b.tree.best() is None
    first = b.child(ROOT_ID, 0.5)
    b.child(ROOT_ID, 0.5)
    assert b.tree.best().id == first


def test_best_can_be_the_root():
    b = TreeBuilder()
    b.root(metric=BASE_METRIC)
    b.child(ROOT_ID, 0.1)
    assert b.tree.best().id == ROOT_ID
    assert [n.id for n in b.tree.best_path()] == [ROOT_ID]


# --- has_plan --------------------------------------------------------------------------
def test_has_plan_ignores_rationale_and_parent_for_fresh_plans():
    b = TreeBuilder()
    b.root()
    a = b.child(ROOT_ID, 0.5, plan=make_plan(2e-3, rationale="first"))
    c = b.child(ROOT_ID, 0.6, plan=make_plan(1e-3))
    assert b.tree.has_plan(make_plan(2e-3, rationale="other words"), ROOT_ID)
    assert b.tree.has_plan(make_plan(2e-3), a)  # from scratch: the same experiment under any parent
    assert b.tree.has_plan(make_plan(2e-3), c)
    assert not b.tree.has_plan(make_plan(3e-3), ROOT_ID)
    assert not b.tree.has_plan(make_plan(2e-3, ops=["dedup"]), ROOT_ID)


def test_warm_start_is_distinct_per_parent():
    b = TreeBuilder()
    b.root()
    a = b.child(ROOT_ID, 0.5, plan=make_plan(2e-3))
    c = b.child(ROOT_ID, 0.6, plan=make_plan(1e-3))
    warm = make_plan(1e-3, warm_start=True, epochs=1.0)
    b.child(a, 0.7, plan=warm)
    assert b.tree.has_plan(warm, a)
    assert not b.tree.has_plan(warm, c)  # continuing a different checkpoint is a different experiment
    assert not b.tree.has_plan(make_plan(1e-3, epochs=1.0), a)  # the fresh twin is not the warm one


def test_root_plan_evaluates_the_base_model():
    b = TreeBuilder()
    b.root()
    assert b.tree.root.plan.train.mode is TrainMode.none


def test_progress_payload_is_validated():
    b = TreeBuilder()
    b.root(metric=None)
    n = b.start(b.add(ROOT_ID))
    with pytest.raises(ValueError):
        b.emit(EventKind.node_progress, n, progress={"fraction": 2.0, "step": 1, "train_loss": 1.0})
    b.emit(EventKind.node_progress, n, progress=Progress(fraction=0.5, step=1, train_loss=1.0).model_dump())
    assert b.tree.get(n).progress[0].fraction == 0.5
