"""Durable run state: an append-only event journal (durable per event) plus atomic snapshots.

A run's location is a local directory or an object-store URI (``s3://``, ``gs://``); a backend
(``store/backends.py``) moves the bytes:

* local: ``journal.jsonl`` (one event a line, ``fsync`` per event) and ``snapshot.json`` (a temp
  file, then ``os.replace``); a torn last line (a crash mid-write) is dropped and cut off;
* object store: one immutable object per event (``events/<seq>.json``; a PUT is atomic) and
  ``snapshot.json``; replay lists the events.

``replay`` loads the snapshot and applies the later events, so a crash at any instant loses no
event that ``append`` returned from.

Example::

    store = Store(run_dir)                 # or Store("s3://bucket/runs/r1")
    store.append(Event(kind=EventKind.node_added, node_id="n1", payload={...}))
    tree = store.replay()
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

from trex_ray.spec import TaskSpec
from trex_ray.store.backends import JOURNAL, SNAPSHOT, JournalBackend, StoreError, open_backend
from trex_ray.store.files import is_remote
from trex_ray.store.snapshot import tree_from_dict, tree_to_dict
from trex_ray.tree import Event, SearchTree

log = logging.getLogger(__name__)

__all__ = ["JOURNAL", "SNAPSHOT", "Store", "StoreError", "read_tree"]


class Store:
    def __init__(self, run_dir: str | Path, snapshot_every: int = 50, readonly: bool = False) -> None:
        """``readonly``: a reader of a live run; it never creates, repairs or appends."""
        self.location = str(run_dir)
        self.run_dir = run_dir if is_remote(run_dir) else Path(run_dir)
        self.readonly = readonly
        self.backend: JournalBackend = open_backend(run_dir, create=not readonly)
        self.snapshot_every = snapshot_every
        self._lock = threading.Lock()
        self._seq = 0 if readonly else self.backend.recover()
        self._since_snapshot = 0

    @property
    def exists(self) -> bool:
        return self._seq > 0

    def append(self, event: Event) -> Event:
        """Write one event durably; when this returns, the event survives any crash."""
        if self.readonly:
            raise StoreError(f"{self.location}: opened read-only")
        with self._lock:
            event = event.model_copy(update={"seq": self._seq})
            self.backend.append(self._seq, (event.model_dump_json() + "\n").encode())
            self._seq += 1
            self._since_snapshot += 1
            return event

    def maybe_snapshot(self, tree: SearchTree) -> None:
        """Snapshot every ``snapshot_every`` events, or every ``len(tree) // 2`` once the tree is larger:
        a snapshot costs O(nodes), so a fixed cadence would make each event O(nodes) on a large tree;
        this keeps it O(1) amortized, and a replay reads at most about ``len(tree) / 2`` events."""
        if self._since_snapshot >= max(self.snapshot_every, len(tree) // 2):
            self.snapshot(tree)

    def snapshot(self, tree: SearchTree) -> None:
        """Write the whole tree atomically; replay then starts from it."""
        self.backend.write_snapshot(json.dumps(tree_to_dict(tree)).encode())
        self._since_snapshot = 0

    def events(self, after: int = -1) -> Iterator[Event]:
        for lineno, line in enumerate(self.backend.lines(after), 1):
            try:
                event = Event.model_validate_json(line)
            except ValueError as exc:
                raise StoreError(f"{self.location}:{lineno}: corrupt event ({exc})") from None
            if event.seq > after:
                yield event

    def replay(self) -> SearchTree:
        """Rebuild the tree: the snapshot, then every later event of the journal."""
        tree = SearchTree()
        raw = self.backend.read_snapshot()
        if raw is not None:
            try:
                tree = tree_from_dict(json.loads(raw))
            except (ValueError, KeyError) as exc:
                log.warning("snapshot unreadable (%s); replaying the whole journal", exc)
                tree = SearchTree()
        for event in self.events(after=tree.last_seq):
            tree.apply(event)
        return tree


def read_tree(run_dir: str | Path) -> SearchTree:
    """The tree of a run (a directory or a URI), live or finished, read without writing to it."""
    store = Store(run_dir, readonly=True)
    if not store.backend.exists():
        raise FileNotFoundError(f"{run_dir}: not a trex run directory (no {JOURNAL}); "
                                "give the folder `trex run` printed")
    return store.replay()


def read_run(run_dir: str | Path) -> tuple[TaskSpec, SearchTree]:
    """The task a run was started with (from its journal) and its tree, read without writing."""
    tree = read_tree(run_dir)  # FileNotFoundError when there is no run there
    return TaskSpec.model_validate(tree.meta["task"]), tree


def read_task(run_dir: str | Path) -> TaskSpec:
    """The task a run directory (or stored run URI) was started with (from its journal)."""
    return read_run(run_dir)[0]
