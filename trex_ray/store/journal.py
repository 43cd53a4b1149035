"""Durable run state: an append-only event journal (fsync per event) plus atomic snapshots.

A run directory holds ``journal.jsonl`` (one event a line) and ``snapshot.json`` (the tree up to
some sequence number, written to a temp file then ``os.replace``d). ``replay`` loads the
snapshot and applies the journal's later events, so a crash at any instant loses no event that
``append`` returned from: a torn last line (the crash hit mid-write) is dropped and cut off.

Example::

    store = Store(run_dir)
    store.append(Event(kind=EventKind.node_added, node_id="n1", payload={...}))
    tree = store.replay()
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from trex_ray.store.snapshot import tree_from_dict, tree_to_dict
from trex_ray.tree import Event, SearchTree

log = logging.getLogger(__name__)

JOURNAL = "journal.jsonl"
SNAPSHOT = "snapshot.json"


class StoreError(RuntimeError):
    pass


class Store:
    def __init__(self, run_dir: str | Path, snapshot_every: int = 50, readonly: bool = False) -> None:
        """``readonly``: a reader of a live run; it never creates, repairs or appends."""
        self.run_dir = Path(run_dir)
        self.readonly = readonly
        if not readonly:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self.journal_path = self.run_dir / JOURNAL
        self.snapshot_path = self.run_dir / SNAPSHOT
        self.snapshot_every = snapshot_every
        self._lock = threading.Lock()
        self._seq = 0 if readonly else self._repair_and_count()
        self._since_snapshot = 0

    @property
    def exists(self) -> bool:
        return self._seq > 0

    def _repair_and_count(self) -> int:
        """Cut a torn last line (a crash mid-append) and return the next sequence number."""
        if not self.journal_path.exists():
            return 0
        data = self.journal_path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end != len(data):
            log.warning("journal %s: dropping a torn last line (%d bytes)", self.journal_path, len(data) - end)
            with open(self.journal_path, "r+b") as f:
                f.truncate(end)
                os.fsync(f.fileno())
        last = -1
        for event in self._read_journal():
            last = event.seq
        return last + 1

    def append(self, event: Event) -> Event:
        """Write one event durably; when this returns, the event survives any crash."""
        if self.readonly:
            raise StoreError(f"{self.run_dir}: opened read-only")
        with self._lock:
            event = event.model_copy(update={"seq": self._seq})
            line = event.model_dump_json() + "\n"
            fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            self._seq += 1
            self._since_snapshot += 1
            return event

    def maybe_snapshot(self, tree: SearchTree) -> None:
        if self._since_snapshot >= self.snapshot_every:
            self.snapshot(tree)

    def snapshot(self, tree: SearchTree) -> None:
        """Write the whole tree atomically; replay then starts from it."""
        tmp = self.snapshot_path.with_suffix(".json.tmp")
        with open(tmp, "w") as f:
            json.dump(tree_to_dict(tree), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.snapshot_path)
        _fsync_dir(self.run_dir)
        self._since_snapshot = 0

    def events(self) -> Iterator[Event]:
        return self._read_journal()

    def _read_journal(self) -> Iterator[Event]:
        if not self.journal_path.exists():
            return
        with open(self.journal_path, encoding="utf-8") as f:  # model_dump_json writes UTF-8
            for lineno, line in enumerate(f, 1):
                if not line.endswith("\n"):
                    return  # torn tail: never acknowledged to anyone
                try:
                    yield Event.model_validate_json(line)
                except ValueError as exc:
                    raise StoreError(f"{self.journal_path}:{lineno}: corrupt event ({exc})") from None

    def replay(self) -> SearchTree:
        """Rebuild the tree: the snapshot, then every later event of the journal."""
        tree = SearchTree()
        if self.snapshot_path.exists():
            try:
                tree = tree_from_dict(json.loads(self.snapshot_path.read_text()))
            except (ValueError, KeyError) as exc:
                log.warning("snapshot unreadable (%s); replaying the whole journal", exc)
                tree = SearchTree()
        for event in self._read_journal():
            if event.seq > tree.last_seq:
                tree.apply(event)
        return tree


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_tree(run_dir: str | Path) -> SearchTree:
    """The tree of a run directory, live or finished, read without writing to it."""
    path = Path(run_dir)
    if not (path / JOURNAL).is_file() and not (path / SNAPSHOT).is_file():
        raise FileNotFoundError(f"{run_dir}: not a trex run directory (no {JOURNAL}); give the folder `trex run` printed")
    return Store(path, readonly=True).replay()
