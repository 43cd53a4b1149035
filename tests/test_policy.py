"""UCTPolicy: select (UCT + max-backup, decaying exploration, progressive widening), prune, decide."""

from __future__ import annotations

import math

import pytest
from factories import TreeBuilder, curve, diverged, finished, lost, make_plan

from trex_ray.spec import Decision, Progress, SearchSpec
from trex_ray.tree import ROOT_ID, EventKind, UCTPolicy
from trex_ray.tree.policy import MAX_CHILDREN, MIN_RUNG, STOP_MARGIN


def policy(**search) -> UCTPolicy:
    return UCTPolicy(SearchSpec(**search))


def subtree(tree, node_id: str) -> set[str]:
    out, todo = set(), [node_id]
    while todo:
        n = todo.pop()
        out.add(n)
        todo += tree.get(n).children
    return out


# --- select: widening ------------------------------------------------------------------
def test_empty_tree_selects_nothing():
    from trex_ray.tree import SearchTree

    assert policy().select(SearchTree()) is None


def test_select_returns_the_root_before_it_is_evaluated():
    b = TreeBuilder()
    b.root(metric=None)
    assert policy().select(b.tree).id == ROOT_ID


def test_select_returns_root_while_it_has_fewer_children_than_the_widening_limit():
    b = TreeBuilder()
    b.root(metric=0.3)  # visits 1 -> limit ceil(2 * 1) = 2
    p = policy()
    assert p.widening_limit(b.tree.root) == 2
    b.child(ROOT_ID, 0.5)  # visits 2 -> limit ceil(2 * sqrt 2) = 3
    assert p.select(b.tree).id == ROOT_ID
    b.child(ROOT_ID, 0.6)  # visits 3 -> limit 4
    assert p.widening_limit(b.tree.root) == 4
    assert p.select(b.tree).id == ROOT_ID


@pytest.mark.parametrize(
    ("visits", "limit"), [(0, 2), (1, 2), (2, 3), (4, 4), (9, 6), (16, 8), (1000, MAX_CHILDREN)]
)
def test_widening_limit_grows_with_visits_up_to_the_cap(visits, limit):
    b = TreeBuilder()
    b.root(metric=None)
    b.tree.root.visits = visits
    assert policy().widening_limit(b.tree.root) == limit


def test_widening_follows_its_knobs():
    b = TreeBuilder()
    b.root(metric=None)
    b.tree.root.visits = 16
    assert policy(widening_c=1.0, widening_alpha=0.5).widening_limit(b.tree.root) == 4
    assert policy(widening_c=1.0, widening_alpha=0.25).widening_limit(b.tree.root) == 2
    assert policy(widening_c=0.1).widening_limit(b.tree.root) == 1  # never below one child


def test_widening_grows_as_results_come_in():
    b = TreeBuilder()
    b.root(metric=None)
    kids = [b.start(b.add(ROOT_ID)) for _ in range(2)]
    p = policy()
    # Two in flight count as virtual visits: limit ceil(2 * sqrt(2)) = 3, so a third draft may start.
    assert p.widening_limit(b.tree.root, b.tree) == 3 and p.select(b.tree).id == ROOT_ID
    b.start(b.add(ROOT_ID))
    assert p.widening_limit(b.tree.root, b.tree) == 4
    for k in kids:
        b.emit(EventKind.node_finished, k, result=finished(0.5).model_dump(mode="json"))
    assert b.tree.root.visits == 2 and p.widening_limit(b.tree.root) == 3
    assert p.widening_limit(b.tree.root, b.tree) == 4  # two visits + one still in flight
    assert p.select(b.tree).id == ROOT_ID


# --- select: descent -------------------------------------------------------------------
def narrow(**search) -> UCTPolicy:
    """A policy whose nodes widen slowly, so that select has to descend."""
    return policy(widening_c=0.5, **search)


def test_descends_to_the_best_child_by_uct():
    b = TreeBuilder()
    b.root(metric=0.3)
    lo = b.child(ROOT_ID, 0.5)
    hi = b.child(ROOT_ID, 0.8)
    p = narrow()
    assert p.widening_limit(b.tree.root) == 1  # the root is full: descend
    assert p.select(b.tree).id == hi
    assert p.select(b.tree).id != lo


def test_descent_uses_the_best_value_of_a_subtree_not_its_mean():
    b = TreeBuilder()
    b.root(metric=0.3)
    a = b.child(ROOT_ID, 0.5)
    for _ in range(3):
        b.child(a, 0.2)  # a's mean drops, but ...
    best = b.child(a, 0.95)  # ... its best grandchild is the best model so far
    c = b.child(ROOT_ID, 0.7)
    chosen = narrow(exploration=0.0).select(b.tree)
    assert chosen.id in subtree(b.tree, a)
    assert chosen.id == best  # max-backup inside a as well
    assert c not in subtree(b.tree, a)


def test_descent_skips_children_that_cannot_be_expanded():
    b = TreeBuilder()
    b.root(metric=0.3)
    b.child(ROOT_ID, lost())
    b.start(b.add(ROOT_ID))
    ok = b.child(ROOT_ID, 0.4)
    b.emit(EventKind.node_pruned, b.child(ROOT_ID, 0.9), reason="test")  # pruned: closed even if good
    assert narrow().select(b.tree).id == ok


def test_select_none_when_the_root_is_full_and_nothing_below_is_expandable():
    b = TreeBuilder()
    b.root(metric=None)
    b.child(ROOT_ID, lost())
    b.start(b.add(ROOT_ID))  # root: 1 visit + 1 in flight -> narrow limit ceil(0.5 * sqrt 2) = 1 < 2
    p = narrow()
    assert p.widening_limit(b.tree.root, b.tree) == 1
    assert p.select(b.tree) is None


def test_select_none_when_every_node_is_at_its_cap_and_leaves_are_closed():
    b = TreeBuilder()
    b.root(metric=0.3)
    a = b.child(ROOT_ID, 0.8)
    b.child(a, lost())
    b.start(b.add(a))
    b.emit(EventKind.node_pruned, b.child(ROOT_ID, 0.4), reason="lost")
    # root: visits 4, limit ceil(0.5 * 2) = 1 < 2 kids; a: visits 2, limit 1 < 2 kids.
    assert narrow().select(b.tree) is None


def exploration_tree(fillers: int) -> TreeBuilder:
    """A well-visited strong child vs a barely-visited slightly weaker one, plus filler nodes."""
    b = TreeBuilder()
    b.root(metric=0.3)
    strong = b.child(ROOT_ID, 0.80)
    for _ in range(8):
        b.child(strong, 0.5)
    b.child(ROOT_ID, 0.75)
    for _ in range(fillers):
        b.add(ROOT_ID)  # pending nodes: grow the tree without changing any visit count
    return b


def test_small_tree_explores_the_little_visited_child():
    b = exploration_tree(fillers=0)
    strong, weak = b.tree.root.children[:2]
    assert narrow().select(b.tree).id == weak


def test_exploration_decays_so_a_large_tree_exploits():
    b = exploration_tree(fillers=40)
    strong, weak = b.tree.root.children[:2]
    p = narrow()
    assert p._exploration(b.tree) < p._exploration(exploration_tree(0).tree)
    assert p.select(b.tree).id in subtree(b.tree, strong)


def test_without_decay_the_large_tree_still_explores():
    b = exploration_tree(fillers=40)
    weak = b.tree.root.children[1]
    assert narrow(exploration_decay=1.0).select(b.tree).id == weak


def test_exploration_schedule():
    b = TreeBuilder()
    b.root(metric=None)
    p = policy(exploration=0.5, exploration_decay=0.9)
    assert p._exploration(b.tree) == 0.5
    for _ in range(10):
        b.add(ROOT_ID)
    assert p._exploration(b.tree) == pytest.approx(0.5 * 0.9**10)


# --- prune (successive halving among siblings) -----------------------------------------
def siblings(*metrics: float) -> tuple[TreeBuilder, list[str]]:
    b = TreeBuilder()
    b.root(metric=0.3)
    return b, [b.child(ROOT_ID, m) for m in metrics]


def metric_of(b: TreeBuilder, ids) -> list[float]:
    return sorted((b.tree.get(i).metric for i in ids), reverse=True)


def test_prune_keeps_the_best_ceil_n_over_eta():
    b, kids = siblings(0.9, 0.85, 0.8, 0.7)
    losers = policy(halving_eta=2).prune(b.tree, b.tree.get(kids[-1]))
    assert metric_of(b, [n.id for n in losers]) == [0.8, 0.7]
    b, kids = siblings(0.9, 0.85, 0.8, 0.7, 0.6)
    losers = policy(halving_eta=3).prune(b.tree, b.tree.get(kids[0]))
    assert metric_of(b, [n.id for n in losers]) == [0.8, 0.7, 0.6]  # keep ceil(5 / 3) = 2


def test_prune_spares_siblings_within_the_margin():
    b, kids = siblings(0.90, 0.89, 0.885)
    assert policy(halving_eta=2).prune(b.tree, b.tree.get(kids[0])) == []
    b, kids = siblings(0.90, 0.89, 0.5)
    assert [n.id for n in policy(halving_eta=2).prune(b.tree, b.tree.get(kids[0]))] == [kids[2]]


def test_prune_needs_eta_finished_siblings():
    b, kids = siblings(0.9)
    b.child(ROOT_ID, diverged())
    b.start(b.add(ROOT_ID))
    assert policy(halving_eta=2).prune(b.tree, b.tree.get(kids[0])) == []
    b, kids = siblings(0.9, 0.1)
    assert policy(halving_eta=3).prune(b.tree, b.tree.get(kids[0])) == []


def test_prune_never_touches_the_root_or_failed_or_running_siblings():
    b, kids = siblings(0.9, 0.2)
    f = b.child(ROOT_ID, diverged())
    r = b.start(b.add(ROOT_ID))
    p = policy()
    assert p.prune(b.tree, b.tree.root) == []
    losers = {n.id for n in p.prune(b.tree, b.tree.get(kids[0]))}
    assert losers == {kids[1]}
    assert f not in losers and r not in losers


def apply_prunes(b: TreeBuilder, p: UCTPolicy, node_id: str) -> None:
    """What the Researcher does after each result."""
    for loser in p.prune(b.tree, b.tree.get(node_id)):
        b.emit(EventKind.node_pruned, loser.id, reason="lost")


def test_incremental_pruning_still_keeps_ceil_n_over_eta():
    """Results arrive one by one: already-pruned siblings still count towards n."""
    b = TreeBuilder()
    b.root(metric=0.3)
    p = policy(halving_eta=2)
    kids = []
    for m in (0.9, 0.8, 0.85, 0.7):
        kids.append(b.child(ROOT_ID, m))
        apply_prunes(b, p, kids[-1])
    alive = [k for k in kids if b.tree.get(k).expandable]
    assert metric_of(b, alive) == [0.9, 0.85]  # ceil(4 / 2) = 2 stay open


def test_prune_does_not_return_nodes_already_pruned():
    b = TreeBuilder()
    b.root(metric=0.3)
    p = policy(halving_eta=2)
    for m in (0.9, 0.5, 0.4):
        apply_prunes(b, p, b.child(ROOT_ID, m))
    for n in b.tree.children(b.tree.root):
        again = p.prune(b.tree, n)
        assert all(x.status.value == "finished" for x in again)


# --- decide (early stopping at rungs) --------------------------------------------------
def racing(rival_losses=(1.0, 0.8, 0.7, 0.65), **search):
    b = TreeBuilder()
    b.root(metric=0.3)
    b.child(ROOT_ID, finished(0.8, rival_losses))
    me = b.tree.get(b.start(b.add(ROOT_ID)))
    return b, me, policy(**search)


def prog(fraction: float, val_loss: float | None) -> Progress:
    return Progress(fraction=fraction, step=int(100 * fraction), train_loss=1.0, val_loss=val_loss)


def test_decide_stops_a_clear_loser_at_a_rung():
    b, me, p = racing()
    assert p.decide(b.tree, me, prog(0.5, 1.0)) is Decision.STOP  # rival had 0.8 at 50 %
    assert p.decide(b.tree, me, prog(0.75, 0.9)) is Decision.STOP


def test_decide_stops_nothing_when_early_stopping_is_off():
    b, me, p = racing(early_stopping=False)
    assert p.decide(b.tree, me, prog(0.5, 1.0)) is Decision.CONTINUE
    assert p.decide(b.tree, me, prog(0.75, 5.0)) is Decision.CONTINUE


def test_decide_continues_a_close_or_better_run():
    b, me, p = racing()
    within = 0.8 * (1 + STOP_MARGIN) - 1e-6
    assert p.decide(b.tree, me, prog(0.5, within)) is Decision.CONTINUE
    assert p.decide(b.tree, me, prog(0.5, 0.5)) is Decision.CONTINUE
    assert p.decide(b.tree, me, prog(0.5, 0.83)) is Decision.STOP  # 4 % worse than the rival kept


@pytest.mark.parametrize("fraction", [0.0, 0.25, MIN_RUNG - 0.01])
def test_decide_never_stops_before_the_first_rung(fraction):
    b, me, p = racing(rival_losses=(0.1, 0.1, 0.1, 0.1))
    assert p.decide(b.tree, me, prog(fraction, 50.0)) is Decision.CONTINUE


def test_decide_never_stops_at_the_end():
    b, me, p = racing(rival_losses=(0.1, 0.1, 0.1, 0.1))
    assert p.decide(b.tree, me, prog(1.0, 50.0)) is Decision.CONTINUE


def test_decide_without_rivals_continues():
    b = TreeBuilder()
    b.root(metric=0.3)
    me = b.tree.get(b.start(b.add(ROOT_ID)))
    assert policy().decide(b.tree, me, prog(0.5, 99.0)) is Decision.CONTINUE
    assert policy().decide(b.tree, b.tree.root, prog(0.5, 99.0)) is Decision.CONTINUE


def test_decide_ignores_failed_rivals_and_rivals_short_of_the_rung():
    b = TreeBuilder()
    b.root(metric=0.3)
    b.child(ROOT_ID, diverged())  # failed: its curve is no yardstick
    short = b.start(b.add(ROOT_ID))
    b.emit(EventKind.node_progress, short, progress=prog(0.25, 0.01).model_dump())  # not at 50 % yet
    me = b.tree.get(b.start(b.add(ROOT_ID)))
    assert policy().decide(b.tree, me, prog(0.5, 5.0)) is Decision.CONTINUE


def test_decide_compares_with_running_rivals_progress():
    b = TreeBuilder()
    b.root(metric=0.3)
    rival = b.start(b.add(ROOT_ID))
    for p in curve((1.0, 0.6), (0.25, 0.5)):
        b.emit(EventKind.node_progress, rival, progress=p.model_dump())
    me = b.tree.get(b.start(b.add(ROOT_ID)))
    assert policy().decide(b.tree, me, prog(0.5, 0.9)) is Decision.STOP


@pytest.mark.parametrize("loss", [None, math.nan, math.inf])
def test_decide_continues_without_a_finite_val_loss(loss):
    b, me, p = racing()
    assert p.decide(b.tree, me, prog(0.5, loss)) is Decision.CONTINUE


def test_decide_keeps_the_top_fraction_of_many_rivals():
    b = TreeBuilder()
    b.root(metric=0.3)
    for loss in (0.5, 0.6, 0.7):
        b.child(ROOT_ID, finished(0.8, (1.0, loss, loss, loss)))
    me = b.tree.get(b.start(b.add(ROOT_ID)))
    p = policy(halving_eta=2)  # 4 runs at the rung: keep 2, cutoff = 0.6
    assert p.decide(b.tree, me, prog(0.5, 0.61)) is Decision.CONTINUE  # within the margin of 0.6
    assert p.decide(b.tree, me, prog(0.5, 0.63)) is Decision.STOP
    assert policy(halving_eta=4).decide(b.tree, me, prog(0.5, 0.65)) is Decision.STOP  # keep 1: cutoff 0.5


def test_a_diverged_or_crashed_leaf_is_selected_once_for_repair():
    b = TreeBuilder()
    b.root(metric=0.3)
    b.child(ROOT_ID, 0.6)
    bad = b.child(ROOT_ID, diverged())
    assert policy().select(b.tree).id == bad
    b.child(bad, 0.5)  # repaired once: no longer a candidate
    assert policy().select(b.tree).id != bad
    b2 = TreeBuilder()
    b2.root(metric=0.3)
    gone = b2.child(ROOT_ID, lost())  # a lost worker is retried by the runtime, not repaired
    assert policy().select(b2.tree).id != gone


def test_decide_compares_a_run_only_with_siblings_that_start_where_it_starts():
    b = TreeBuilder()
    b.root(metric=0.3)
    parent = b.child(ROOT_ID, 0.7)
    b.child(parent, finished(0.8, (0.3, 0.25, 0.2, 0.2)), plan=make_plan(warm_start=True))  # starts lower
    me = b.tree.get(b.start(b.add(parent, plan=make_plan(epochs=2))))
    assert policy().decide(b.tree, me, prog(0.5, 1.0)) is Decision.CONTINUE  # a cold run vs a warm one
    b.child(parent, finished(0.8, (1.0, 0.6, 0.5, 0.5)), plan=make_plan(1e-3, epochs=2))
    assert policy().decide(b.tree, me, prog(0.5, 1.0)) is Decision.STOP  # a cold rival at 0.6


def test_decide_compares_after_as_many_epochs_of_training():
    b = TreeBuilder()
    b.root(metric=0.3)
    b.child(ROOT_ID, finished(0.8, (1.0, 0.5, 0.4, 0.4)), plan=make_plan(1e-3, epochs=4))
    me = b.tree.get(b.start(b.add(ROOT_ID, plan=make_plan(epochs=2))))
    # after 1 epoch (half of mine) the 4-epoch rival was at 1.0 (a quarter of its run), not at 0.5
    assert policy().decide(b.tree, me, prog(0.5, 1.02)) is Decision.CONTINUE
    assert policy().decide(b.tree, me, prog(0.5, 1.2)) is Decision.STOP
