"""Early stopping that cannot stop everyone (issue 18): an interrupted attempt's reports are no rival,
and the last running trial of a sibling group with nothing finished is never stopped. Pure, no Ray."""

from __future__ import annotations

from pathlib import Path

from factories import TreeBuilder, finished, make_plan, make_task, stopped

from trex_ray.report.text import untrained_reason
from trex_ray.research import Researcher
from trex_ray.spec import Decision, Progress, SearchSpec
from trex_ray.store import Store
from trex_ray.tree import ROOT_ID, EventKind, NodeStatus, UCTPolicy

CLEAN = {"noise_estimate": 0.0, "duplicate_fraction": 0.0}


def report(fraction: float, loss: float) -> Progress:
    return Progress(fraction=fraction, step=int(100 * fraction), train_loss=loss, val_loss=loss)


def open_run(run_dir: Path) -> Researcher:
    task = make_task(["search.seed=0", "budget.max_nodes=2", "search.children_per_expansion=2"])
    return Researcher.open(run_dir, task, profile=CLEAN)


def test_two_siblings_cannot_stop_each_other_through_an_interrupted_attempts_reports(tmp_path):
    run_dir = tmp_path / "run"
    first = open_run(run_dir)
    [root] = first.next_nodes(1)
    first.on_result(root.id, finished(0.3))
    assert [n.id for n in first.next_nodes(2)] == ["n1", "n2"]
    assert first.on_progress("n1", report(0.25, 1.6)) is Decision.CONTINUE

    # The driver is killed; a resume (a second writer) re-queues both siblings ...
    second = open_run(run_dir)
    assert {n.id: n.status for n in second.tree if n.parent} == {"n1": NodeStatus.pending,
                                                                 "n2": NodeStatus.pending}
    # ... while n2's first attempt lives on and gets to 75 %, far ahead of n1: its reports reach the journal.
    for fraction, loss in ((0.25, 1.0), (0.5, 0.8), (0.75, 0.7)):
        first.on_progress("n2", report(fraction, loss))
    late = [e for e in Store(run_dir, readonly=True).events() if e.kind is EventKind.node_progress]
    assert [(e.node_id, e.payload["attempt"]) for e in late[-3:]] == [("n2", 1)] * 3

    # Killed again, resumed again: the replay does not take n2's interrupted attempt for its progress.
    third = open_run(run_dir)
    assert third.tree.get("n2").status is NodeStatus.pending and third.tree.get("n2").progress == []
    [n1] = third.next_nodes(1)
    assert n1.id == "n1" and n1.attempts == 2
    for fraction, loss in ((0.25, 1.6), (0.5, 1.3), (0.75, 1.2)):  # far behind n2's lost reports
        assert third.on_progress("n1", report(fraction, loss)) is Decision.CONTINUE
    # A late report of an earlier attempt is refused (that stale trial is told to stop), not recorded.
    assert third.on_progress("n1", report(0.9, 0.1), attempt=1) is Decision.STOP
    assert [p.fraction for p in third.tree.get("n1").progress] == [0.25, 0.5, 0.75]

    # Even were n1 stopped, n2 (now the last hope of the group) runs to the end against n1's curve.
    third.on_result("n1", stopped((1.6, 1.3, 1.2)))
    [n2] = third.next_nodes(1)
    assert n2.id == "n2" and n2.attempts == 2
    for fraction, loss in ((0.25, 2.0), (0.5, 1.9), (0.75, 1.8)):
        assert third.on_progress("n2", report(fraction, loss)) is Decision.CONTINUE
    third.on_result("n2", finished(0.6, (2.0, 1.9, 1.8, 1.7)))
    assert third.tree.get("n2").expandable  # the group keeps a trained node
    replayed = Store(run_dir).replay()
    assert [p.fraction for p in replayed.get("n1").progress] == [0.25, 0.5, 0.75]


def _siblings(*statuses: str) -> tuple[TreeBuilder, list[str]]:
    """Children of a finished root, one per status (running ones have reported 0.25 and 0.5)."""
    b = TreeBuilder()
    b.root()
    ids = []
    for status in statuses:
        node = b.add(ROOT_ID, make_plan(lr=1e-3 * (1 + len(ids))))
        if status == "finished":
            b.finish(node, finished(0.7, (1.0, 0.8, 0.7, 0.7)))
        elif status == "stopped":
            b.finish(node, stopped((1.0, 0.8)))
        elif status in ("running", "requeued"):
            b.start(node)
            for p in (report(0.25, 1.0), report(0.5, 0.8)):
                b.emit(EventKind.node_progress, node, progress=p.model_dump(mode="json"), attempt=1)
            if status == "requeued":
                b.emit(EventKind.node_requeued, node, reason="interrupted")
        ids.append(node)
    return b, ids


def decide(statuses: tuple[str, ...], loss: float = 1.5) -> Decision:
    b, ids = _siblings("running", *statuses)
    return UCTPolicy(SearchSpec()).decide(b.tree, b.tree.get(ids[0]), report(0.5, loss))


def test_the_last_running_trial_of_a_group_with_nothing_finished_is_never_stopped():
    assert decide(("stopped",)) is Decision.CONTINUE
    assert decide(("stopped", "stopped", "requeued")) is Decision.CONTINUE
    assert decide(("finished",)) is Decision.STOP  # a finished sibling: the group has its trained node
    assert decide(("running",)) is Decision.STOP  # another still runs: ASHA as before
    assert decide(("running",), loss=0.8) is Decision.CONTINUE


def test_reports_of_a_late_attempt_or_of_a_node_not_running_are_not_progress():
    b, [node] = _siblings("running")
    stale = report(0.75, 0.1).model_dump(mode="json")
    b.emit(EventKind.node_progress, node, progress=stale, attempt=0)  # an earlier attempt's
    b.emit(EventKind.node_requeued, node, reason="interrupted")
    b.emit(EventKind.node_progress, node, progress=stale)  # an old journal's report, node pending
    assert b.tree.get(node).progress == []
    b.start(node)
    b.emit(EventKind.node_progress, node, progress=stale)  # an old journal's report, node running
    assert [p.fraction for p in b.tree.get(node).progress] == [0.75]


def test_a_search_whose_drafts_were_all_stopped_expands_a_stopped_node_and_trains_again(tmp_path):
    task = make_task(["search.seed=0", "budget.max_nodes=8", "search.children_per_expansion=8"])
    r = Researcher.open(tmp_path / "run", task, profile=CLEAN)
    nodes = r.next_nodes(9)  # the base model and every draft the heuristic has
    drafts = [n.id for n in nodes if n.parent is not None]
    assert len(drafts) >= 3
    r.on_result(ROOT_ID, finished(0.3))
    for i, node_id in enumerate(drafts):  # each stopped early; the second reported the lowest loss
        r.on_result(node_id, stopped((1.6, 1.2 if i == 1 else 1.4 + 0.01 * i)))
    assert untrained_reason(r.tree, task) is not None  # so far, nothing trained
    assert r.stop_reason() is None  # budget left and a stopped node to build on: not the end
    [child] = r.next_nodes(1)
    assert child.parent == drafts[1]
    assert not child.plan.train.warm_start  # a stopped trial kept no checkpoint: it trains from scratch
    r.on_result(child.id, finished(0.7))
    assert untrained_reason(r.tree, task) is None


def test_a_run_that_ended_with_no_trained_node_is_a_loud_failure():
    b = TreeBuilder()
    b.root(metric=0.3)
    b.child(ROOT_ID, stopped(), make_plan(1e-3))
    b.emit(EventKind.run_finished, None, reason="no expandable node left")
    reason = untrained_reason(b.tree, make_task())
    assert reason is not None and reason.startswith("NO TRAINED NODE WAS SCORED")
    assert "no expandable node left" in reason and "1 stopped" in reason and "\n" not in reason
    b.child(ROOT_ID, finished(0.5), make_plan(2e-3))
    assert untrained_reason(b.tree, make_task()) is None
