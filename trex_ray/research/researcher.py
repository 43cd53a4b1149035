"""The Researcher: owns the tree, decides what runs next, takes results in. No Ray here.

Every change goes through ``_emit``: journal first (durable), then the in-memory tree. The
runtime drives it::

    researcher = Researcher.open(run_dir, task)
    while researcher.stop_reason() is None:
        for node in researcher.next_nodes(free_slots):
            ...dispatch node.plan...
        researcher.on_result(node_id, result)      # as results arrive
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from trex_ray.research.budget import BudgetTracker
from trex_ray.research.insights import distill
from trex_ray.research.planner import Planner, get_planner
from trex_ray.research.retention import deletable
from trex_ray.spec import Budget, Decision, Plan, Progress, Result, TaskSpec, TrainMode, TrainRecipe
from trex_ray.store import Store
from trex_ray.store.files import dir_size, exists, remove_dir
from trex_ray.tree import ROOT_ID, Event, EventKind, Node, NodeStatus, SearchTree, TreePolicy, UCTPolicy

log = logging.getLogger(__name__)
RECHECK_EVERY = 8  # results between two asks of every node the planner had no new ideas for


class Researcher:
    def __init__(self, task: TaskSpec, store: Store, planner: Planner, policy: TreePolicy) -> None:
        self.task = task
        self.store = store
        self.planner = planner
        self.policy = policy
        self.tree: SearchTree = store.replay()
        self.budget = BudgetTracker(task.budget, self.tree)
        self._lock = threading.RLock()
        self._no_ideas: set[str] = set()  # nodes the planner had nothing new for (this session)
        self._results_seen = 0
        # expandable non-root nodes as (-metric, order, id), best first; kept by _emit, read by
        # _next_candidate; built here so that no decision pays for the sort
        self._ranked: list[tuple[float, int, str]] | None = sorted(
            _rank_key(n) for n in self.tree if n.expandable and n.parent is not None)

    @classmethod
    def open(
        cls,
        run_dir: str | Path,
        task: TaskSpec,
        profile: dict[str, Any] | None = None,
        planner: Planner | None = None,
        run_id: str | None = None,
        store: Store | None = None,
    ) -> Researcher:
        """Start a new run in ``run_dir`` or resume the one there.

        ``store``: where the journal lives when not in ``run_dir`` (an object-store URI; ``run_dir``
        is then this machine's scratch). The planner keeps its records (an LLM's calls and findings)
        with the journal, so that they survive a resume on another machine.
        """
        store = store or Store(run_dir)
        planner = planner or get_planner(task.search.planner, task, store.location)
        self = cls(task, store, planner, UCTPolicy(task.search))
        if not store.exists:
            self._emit(EventKind.run_started, None, task=task.model_dump(mode="json"),
                       run_id=run_id or Path(run_dir).name, profile=profile or {}, started=time.time())
        else:
            self._record_budget()
            self._requeue_interrupted()
            self._sweep_deleted()
        if self.tree.root is None:  # a new run, or a crash right after run_started
            root = Plan(train=TrainRecipe(mode=TrainMode.none), seed=task.search.seed,
                        rationale="the base model as it is")
            self._emit(EventKind.node_added, ROOT_ID, parent=None, plan=root.model_dump(mode="json"))
        return self

    # --- state changes ------------------------------------------------------------------
    def _emit(self, kind: EventKind, node_id: str | None, **payload: Any) -> Node | None:
        with self._lock:
            event = self.store.append(Event(kind=kind, node_id=node_id, payload=payload))
            node = self.tree.apply(event)
            self.store.maybe_snapshot(self.tree)
            if node is not None and self._ranked is not None and node.parent is not None:
                if kind is EventKind.node_finished and node.expandable:
                    bisect.insort(self._ranked, _rank_key(node))
                elif kind is EventKind.node_pruned:
                    i = bisect.bisect_left(self._ranked, _rank_key(node))
                    if i < len(self._ranked) and self._ranked[i][2] == node.id:
                        del self._ranked[i]
            return node

    def _record_budget(self) -> None:
        """A resume with a new budget (``trex resume RUN budget.max_nodes=N``) journals it, so that every
        replay and later resume reads it back; a finished run then goes on."""
        recorded = (self.tree.meta.get("task") or {}).get("budget")
        try:
            if recorded is not None and Budget.model_validate(recorded) == self.task.budget:
                return
        except ValueError:  # a budget this version cannot read: record the current one
            pass
        budget = self.task.budget.model_dump(mode="json")
        log.info("resume: the budget is now %s", budget)
        self._emit(EventKind.budget_changed, None, budget=budget)

    def _requeue_interrupted(self) -> None:
        for node in self.tree.with_status(NodeStatus.running):
            log.info("resume: %s was running when the run stopped; it runs again", node.id)
            self._emit(EventKind.node_requeued, node.id, reason="interrupted")

    # --- checkpoint retention (search.keep_checkpoints; research/retention.py) ------------------
    def _retain(self) -> None:
        """Delete the checkpoints retention lets go: journaled first, so that no warm start is planned
        on one that is going, then removed."""
        search = self.task.search
        for node in deletable(self.tree, search.keep_checkpoints, search.test_top_k):
            location = str(node.result.checkpoint)  # type: ignore[union-attr]
            self._emit(EventKind.checkpoint_deleted, node.id, location=location, bytes=dir_size(location))
            remove_dir(location)
            log.info("%s: checkpoint deleted (keep_checkpoints=%d)", node.id, search.keep_checkpoints)

    def _sweep_deleted(self) -> None:
        """On resume: remove what a crash between the journal and the delete left behind."""
        for node in self.tree:
            location = node.result.checkpoint if node.result else None
            if node.checkpoint_deleted and location and exists(location):
                remove_dir(location)

    # --- what runs next -----------------------------------------------------------------
    def next_nodes(self, slots: int) -> list[Node]:
        """Up to ``slots`` nodes to start now (marked running): re-queued ones first, then new ones.

        The planner is asked outside the lock (an LLM may take seconds): progress reports and status
        queries are answered meanwhile. Only the loop's thread calls this and ``on_result``; the others
        (``on_progress``) add reports to running nodes and never add or start one."""
        with self._lock:
            if slots <= 0 or self.budget.exhausted() is not None:
                return []
            now = time.time()
            pending = self.tree.with_status(NodeStatus.pending)
            ready = sorted((n for n in pending if _due(n, now)), key=_id_order)
        while len(ready) < slots:
            with self._lock:
                if not self.budget.can_add_node():
                    break
                want = min(slots - len(ready), self.budget.nodes_left())
            added = self._expand_once(want)
            if not added:
                break
            ready += added
        with self._lock:
            started = ready[:slots]
            for node in started:
                self._emit(EventKind.node_started, node.id, attempt=node.attempts + 1)
            return started

    def _expand_once(self, want: int) -> list[Node]:
        # One expansion adds at most children_per_expansion nodes; more free slots mean more
        # expansions, each re-selected, so progressive widening still holds.
        while True:
            with self._lock:
                k = max(1, min(self.task.search.children_per_expansion, self.budget.nodes_left()))
                parent = self._pick_parent()
                if parent is None:
                    return []
            proposed = self.planner.propose(self.tree, parent, k)  # outside the lock: it may ask an LLM
            with self._lock:
                plans = self._new_plans(proposed, parent)[:k]
                if not plans:
                    self._no_ideas.add(parent.id)
                    continue
                added = []
                for plan in plans:
                    node = self._emit(EventKind.node_added, self.tree.next_id(), parent=parent.id,
                                      plan=plan.model_dump(mode="json"))
                    assert node is not None
                    added.append(node)
                return added

    def _new_plans(self, plans: list[Plan], parent: Node) -> list[Plan]:
        """Drop plans that repeat an experiment already in the tree (or in this batch)."""
        seen: set[str] = set()
        fresh = []
        for plan in plans:
            if plan.hash in seen or self.tree.has_plan(plan, parent.id):
                log.info("planner %s repeated plan %s for %s; dropped", self.planner.name, plan.hash,
                         parent.id)
                continue
            if plan.train.warm_start and parent.checkpoint_deleted:
                log.info("%s: its checkpoint was deleted (keep_checkpoints); warm start dropped", parent.id)
                continue
            seen.add(plan.hash)
            fresh.append(plan)
        return fresh

    def _pick_parent(self) -> Node | None:
        """The node to expand next: the policy's choice, or another when the planner had no ideas for it;
        when nothing runs and no trained node (nor the root) is left to build on, a node stopped early
        (its children train from scratch: a stopped trial keeps no checkpoint), so that a search whose
        drafts all lost to each other still trains something."""
        parent = self.policy.select(self.tree)
        while parent is not None and parent.id in self._no_ideas:
            parent = self._next_candidate(parent)
        if parent is None and not self.running():
            parent = self._stopped_parent()
        return parent

    def _stopped_parent(self) -> Node | None:
        """The stopped node with the lowest validation loss reported (the earlier on a tie), among those
        the planner may still have ideas for."""
        stopped = [n for n in self.tree.with_status(NodeStatus.stopped) if n.id not in self._no_ideas]
        return min(stopped, key=lambda n: (_best_val_loss(n), _id_order(n)), default=None)

    def _next_candidate(self, exhausted: Node) -> Node | None:
        """Another expandable node (or the root) when the selected one has no new ideas: best metric
        first, the earlier node on a tie. Reads a ranking kept up to date, not the whole tree."""
        if self._ranked is None:
            self._ranked = sorted(_rank_key(n) for n in self.tree if n.expandable and n.parent is not None)
        best = None
        for _, _, node_id in self._ranked:
            node = self.tree.nodes[node_id]
            if node.expandable and node_id not in self._no_ideas:
                best = node
                break
        root = self.tree.root
        if root is not None and root.id not in self._no_ideas and (
                best is None or _rank_key(root) < _rank_key(best)):
            best = root
        return best

    # --- results ------------------------------------------------------------------------
    def on_progress(self, node_id: str, progress: Progress, attempt: int | None = None) -> Decision:
        """Record a running trial's report and say whether it goes on. ``attempt``: the reporting trial's
        (None: the current one); a report of an earlier attempt, a trial that outlived a crash, is not
        recorded and that trial is told to stop."""
        with self._lock:
            node = self.tree.get(node_id)
            if node.status is not NodeStatus.running or attempt not in (None, node.attempts):
                return Decision.STOP
            decision = self.policy.decide(self.tree, node, progress)
            self._emit(EventKind.node_progress, node_id, progress=progress.model_dump(mode="json"),
                       attempt=node.attempts)
            if decision is Decision.STOP:
                log.info("%s: stopping early at %.0f%% (val loss %.4f)", node_id, 100 * progress.fraction,
                         progress.val_loss or float("nan"))
            return decision

    def on_result(self, node_id: str, result: Result) -> None:
        with self._lock:
            if self.tree.get(node_id).status is not NodeStatus.running:
                log.warning("%s: result ignored, the node is %s", node_id,
                            self.tree.get(node_id).status.value)
                return
            if self._retry(node_id, result):
                return
            node = self._emit(EventKind.node_finished, node_id, result=result.model_dump(mode="json"))
            assert node is not None
            if node.ok:
                for loser in self.policy.prune(self.tree, node):
                    self._emit(EventKind.node_pruned, loser.id,
                               reason=f"lost to its siblings ({loser.metric:.3f})")
        if node.parent is not None:
            reflect = getattr(self.planner, "reflect", None)
            insight = reflect(self.tree, node) if reflect is not None else None  # outside: an LLM call
            text, facts = insight or distill(self.tree, node)
            self._emit(EventKind.insight, node_id, text=text, facts=facts)
        with self._lock:
            self._forget_no_ideas(node)
            self._retain()

    @contextmanager
    def reading(self) -> Iterator[SearchTree]:
        """The tree, unchanged while the block runs (``status`` reads a consistent snapshot)."""
        with self._lock:
            yield self.tree

    def _forget_no_ideas(self, node: Node) -> None:
        """A result gives its node and its parent new ideas at once; it may give others some through
        the insight memory, so every node is asked again every ``RECHECK_EVERY`` results (asking all of
        them after each result made decisions O(exhausted nodes) on large trees)."""
        self._results_seen += 1
        if self._results_seen % RECHECK_EVERY == 0:
            self._no_ideas.clear()
            return
        self._no_ideas.discard(node.id)
        if node.parent is not None:
            self._no_ideas.discard(node.parent)

    def _retry(self, node_id: str, result: Result) -> bool:
        """Re-queue a node whose trial was lost or timed out, within ``budget.max_retries``.

        The node goes back to pending (no result, so nothing is backed up); the failed attempt and
        its cost are kept on the node.
        """
        budget, node = self.task.budget, self.tree.get(node_id)
        if result.failure is None or result.failure not in budget.retry_on:
            return False
        if len(node.failed_attempts) >= budget.max_retries:
            return False
        log.warning("%s: attempt %d %s (%s); it runs again", node_id, node.attempts, result.failure.value,
                    result.error)
        self._emit(EventKind.node_requeued, node_id, reason=f"retry after {result.failure.value}",
                   failure=result.failure.value, error=result.error, cost=result.cost.model_dump(mode="json"),
                   retry_at=time.time() + budget.retry_delay_seconds)
        return True

    def retry_wait(self) -> float | None:
        """Seconds until the next delayed retry may start (None: no retry is waiting)."""
        with self._lock:
            now = time.time()
            pending = self.tree.with_status(NodeStatus.pending)
            waits = [_retry_at(n) - now for n in pending if not _due(n, now)]
            return max(0.0, min(waits)) if waits else None

    # --- the test split: scored in slots the search leaves idle, never read by it ------------
    def to_test(self) -> list[Node]:
        """Nodes still to be scored on the test split: the base model and the ``search.test_top_k`` best
        on validation (trained nodes with a checkpoint). Asked once the search has stopped."""
        with self._lock:
            return [n for n in self._base() + self._best_trained() if n.test is None]

    def to_test_early(self) -> list[Node]:
        """What may be scored on the test split while the search runs, in a slot it leaves idle: the base
        model once it is scored on validation (its test score cannot depend on the search, nor the search
        on it); and in the search's last stretch (no node waits and the node budget is spent, so only
        running trials are left) the best on validation so far, rather than after the last trial ends.
        A node that loses its place is scored for nothing, never read: the search reads no test score.
        Under ``search.keep_checkpoints`` only those whose checkpoints outlast the running trials' results
        (retention could not delete one while it is being scored)."""
        with self._lock:
            early = self._base()
            if not self.tree.with_status(NodeStatus.pending) and not self.budget.can_add_node():
                best, search = self._best_trained(), self.task.search
                if search.keep_checkpoints is not None:
                    safe = max(search.keep_checkpoints, search.test_top_k) - len(self.running())
                    best = best[: max(0, safe)]
                early += best
            return [n for n in early if n.test is None]

    def _base(self) -> list[Node]:
        root = self.tree.root
        return [root] if root is not None and root.ok else []

    def _best_trained(self) -> list[Node]:
        """The ``search.test_top_k`` best trained nodes on validation that have a checkpoint."""
        return [n for n in self.tree.ranked() if n.parent is not None and n.result is not None
                and n.result.checkpoint and not n.checkpoint_deleted][: self.task.search.test_top_k]

    def on_test(self, node_id: str, scored: dict[str, Any]) -> None:
        """Record a node's test score (or ``{"error": ...}``); the search never reads it."""
        self._emit(EventKind.node_tested, node_id, **scored)

    def finish(self, reason: str) -> None:
        with self._lock:
            if self.tree.finished_reason is None:
                self._retain()
                self._emit(EventKind.run_finished, None, reason=reason)
            self.store.snapshot(self.tree)

    # --- queries ------------------------------------------------------------------------
    def running(self) -> list[Node]:
        return self.tree.with_status(NodeStatus.running)

    def stop_reason(self) -> str | None:
        """Why nothing more will start: a budget limit, or the tree has nothing left to try."""
        with self._lock:
            exhausted = self.budget.exhausted()
            if exhausted is not None:
                return exhausted
            if self.tree.with_status(NodeStatus.pending):
                return None
            if self.budget.can_add_node() and self._pick_parent() is not None:
                return None  # next_nodes would try it; once the planner has no ideas, _pick_parent says so
            if self.running():
                return None
            if not self.budget.can_add_node():
                used, stopped = self.budget.nodes_used(), self.budget.nodes_stopped()
                also = f"; {stopped} more stopped early" if stopped else ""
                return f"node budget spent ({used}/{self.budget.budget.max_nodes} nodes{also})"
            return "no expandable node left"


def _retry_at(node: Node) -> float:
    return float(node.failed_attempts[-1].get("retry_at") or 0.0) if node.failed_attempts else 0.0


def _due(node: Node, now: float) -> bool:
    """A pending node may start now: it is new, or its retry delay is over."""
    return _retry_at(node) <= now


def _id_order(node: Node) -> int:
    return int(node.id[1:])


def _best_val_loss(node: Node) -> float:
    losses = [p.val_loss for p in node.progress if p.val_loss is not None and p.val_loss == p.val_loss]
    return min(losses, default=float("inf"))


def _rank_key(node: Node) -> tuple[float, int, str]:
    """Best metric first (a node without one counts as -1), then tree order."""
    metric = node.metric
    return (-(metric if metric is not None else -1.0), _id_order(node), node.id)
