"""What benchmarks/overhead.py and search_efficiency.py changed in the pure code, held in place:
the tree's plan and status indexes, the insight index, the Researcher's candidate ranking, the
store's snapshot cadence, and the planner's warm-chain limits."""

from __future__ import annotations

import random

from factories import TreeBuilder, diverged, drive, finished, make_plan, make_task, stopped

from trex_ray.research import InsightMemory, Researcher
from trex_ray.research.heuristic import MAX_WARM_CHAIN, MIN_LR_FRACTION, HeuristicPlanner, warm_chain
from trex_ray.store import Store
from trex_ray.store.snapshot import tree_from_dict, tree_to_dict
from trex_ray.tree import ROOT_ID, EventKind, NodeStatus


def _scan(tree, *statuses):
    return [n for n in tree.nodes.values() if n.status in statuses]


def _random_tree(seed: int = 0, n: int = 60) -> TreeBuilder:
    rng = random.Random(seed)
    b = TreeBuilder()
    b.root()
    ids = [ROOT_ID]
    for i in range(n):
        node = b.child(rng.choice(ids), plan=make_plan(1e-4 * (1 + i), warm_start=rng.random() < 0.3))
        roll = rng.random()
        if roll < 0.5:
            b.finish(node, finished(rng.uniform(0.3, 0.9)))
            ids.append(node)
        elif roll < 0.6:
            b.finish(node, diverged())
        elif roll < 0.7:
            b.finish(node, stopped())
        elif roll < 0.8:
            b.start(node)
        if roll < 0.5 and rng.random() < 0.2:
            b.emit(EventKind.node_pruned, node, reason="lost")
    return b


def test_with_status_index_matches_a_scan_through_events_and_snapshots():
    b = _random_tree()
    all_statuses = list(NodeStatus)
    for statuses in (
        [NodeStatus.pending],
        [NodeStatus.running],
        [NodeStatus.failed, NodeStatus.pruned],
        all_statuses,
    ):
        assert [n.id for n in b.tree.with_status(*statuses)] == [n.id for n in _scan(b.tree, *statuses)]
    loaded = tree_from_dict(tree_to_dict(b.tree))  # nodes inserted directly: the index rebuilds
    assert [n.id for n in loaded.with_status(NodeStatus.finished)] == [
        n.id for n in _scan(b.tree, NodeStatus.finished)
    ]


def test_has_plan_index_follows_additions_and_snapshot_loads():
    b = _random_tree(1)
    for node in b.tree:
        assert b.tree.has_plan(node.plan, node.parent)
    assert not b.tree.has_plan(make_plan(0.0424242), ROOT_ID)
    loaded = tree_from_dict(tree_to_dict(b.tree))
    new = b.child(ROOT_ID, plan=make_plan(0.0123))
    assert b.tree.has_plan(b.tree.get(new).plan, ROOT_ID)
    assert not loaded.has_plan(b.tree.get(new).plan, ROOT_ID) and loaded.has_plan(b.tree.root.plan, None)
    warm = make_plan(1e-3, warm_start=True)  # a warm start is distinct per parent
    b.child(ROOT_ID, plan=warm)
    assert b.tree.has_plan(warm, ROOT_ID) and not b.tree.has_plan(warm, "n1")


def test_insight_memory_index_grows_with_the_records():
    records = [{"facts": {"kind": "delta", "changes": ["+data.dedup"], "delta": 0.1}}]
    memory = InsightMemory(records)
    assert memory.change_effect("+data.dedup") == 0.1 and memory.lr_ceiling("full") is None
    records.append({"facts": {"kind": "delta", "changes": ["+data.dedup"], "delta": 0.3}})
    records.append({"facts": {"kind": "diverged", "mode": "full", "lr": 0.02}})
    assert memory.change_effect("+data.dedup") == 0.2 and InsightMemory(records).lr_ceiling("full") == 0.02
    assert len(InsightMemory(list(records)).facts("delta")) == 2  # another list: its own index


def test_next_candidate_ranking_matches_the_full_sort(tmp_path):
    r = Researcher.open(tmp_path / "run", make_task())
    rng = random.Random(0)
    # the production trial loop, 2 slots, 25 results (the base at 0.3, the rest random)
    drive(r, slots=2, max_results=25, report_progress=False,
          run_trial=lambda t: finished(0.3 if t.node_id == ROOT_ID else rng.uniform(0.3, 0.9)))

    def full_sort():
        pool = [n for n in r.tree if (n.expandable or n.parent is None) and n.id not in r._no_ideas]
        pool.sort(key=lambda n: n.metric if n.metric is not None else -1.0, reverse=True)
        return pool[0] if pool else None

    for _ in range(len(r.tree)):
        expected = full_sort()
        assert r._next_candidate(r.tree.root) is expected
        if expected is None:
            break
        r._no_ideas.add(expected.id)


def test_snapshot_cadence_grows_with_the_tree(tmp_path):
    b = _random_tree(2, n=150)
    store = Store(tmp_path / "s", snapshot_every=50)
    store._since_snapshot = 60
    store.maybe_snapshot(b.tree)  # 151 nodes: every 75 events
    assert store._since_snapshot == 60
    store._since_snapshot = 75
    store.maybe_snapshot(b.tree)
    assert store._since_snapshot == 0


def test_warm_chains_are_bounded_and_cold_variants_rerun_the_whole_chain():
    task = make_task()
    planner = HeuristicPlanner(task)
    b = TreeBuilder()
    b.root()
    underfit = (1.0, 0.8, 0.6, 0.45)
    node = b.child(ROOT_ID, finished(0.7, underfit), plan=make_plan(1e-3, epochs=3))
    for _ in range(MAX_WARM_CHAIN):
        plans = planner.propose(b.tree, b.tree.get(node), k=8)
        warm = [p for p in plans if p.train.warm_start]
        assert warm, "a chain shorter than the limit may continue"
        assert all(p.train.learning_rate >= 1e-3 * MIN_LR_FRACTION for p in warm)
        node = b.child(node, finished(0.7, underfit), plan=warm[0])
    chain = warm_chain(b.tree, b.tree.get(node))
    assert len(chain) == MAX_WARM_CHAIN + 1 and chain[-1].plan.train.epochs == 3
    plans = planner.propose(b.tree, b.tree.get(node), k=8)
    assert plans and not any(p.train.warm_start for p in plans)
    total = sum(n.plan.train.epochs for n in chain)
    longer = [p for p in plans if "train longer" in p.rationale]
    assert longer and longer[0].train.epochs == total + 1 and longer[0].train.learning_rate == 1e-3
