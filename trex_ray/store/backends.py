"""Where a run's events and snapshot live: a local directory, or an object store through ``pyarrow.fs``.

``Store`` (journal.py) keeps the contract (append / replay / snapshot); a backend only moves bytes:

* ``LocalBackend`` — ``journal.jsonl`` appended with ``fsync`` per event, each line written whole
  (``os.write`` in a loop); a write that fails (a full disk) is cut back at once and raises, and a
  torn last line, the trace of a crash mid-write, is cut on open; ``snapshot.json`` written to a
  temp file, fsynced and ``os.replace``d.
* ``ObjectBackend`` — ``s3://`` / ``gs://`` (anything ``pyarrow.fs.FileSystem.from_uri`` opens):
  one immutable object per event, ``events/<seq:012d>.json`` (an object PUT is atomic, so there
  is no torn tail), and ``snapshot.json`` overwritten whole. Replay lists ``events/``. Where the
  store has conditional writes (S3: ``If-None-Match: *``, ``store/objects.py``) an event is created
  only if its number is free, so that a second writer fails at once instead of forking the log. One
  writer per run (the driver's lease, ``store/lease.py``), as for the local journal.

Example::

    backend = open_backend("s3://bucket/runs/sentiment-1")   # or a local path
    backend.append(0, b'{"kind": "run_started", ...}')
    [(seq, line) for seq, line in backend.lines(after=-1)]
"""

from __future__ import annotations

import errno
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from trex_ray.store.files import is_remote, join, resolve
from trex_ray.store.objects import conditional_objects

log = logging.getLogger(__name__)

JOURNAL = "journal.jsonl"
SNAPSHOT = "snapshot.json"
EVENTS = "events"


class StoreError(RuntimeError):
    pass


class JournalBackend(Protocol):
    """Bytes of one run: numbered event lines and one snapshot. Single writer."""

    location: str

    def exists(self) -> bool: ...

    def recover(self) -> int:
        """Writer start-up: make the log consistent after a crash; return the next sequence number."""
        ...

    def append(self, seq: int, line: bytes) -> None:
        """Durably record event ``seq``; when this returns the event survives any crash."""
        ...

    def lines(self, after: int = -1) -> Iterator[bytes]:
        """Event lines in order, from the first with a sequence number above ``after`` (a backend may
        start earlier; the Store skips what it has)."""
        ...

    def write_snapshot(self, data: bytes) -> None: ...

    def read_snapshot(self) -> bytes | None: ...


class LocalBackend:
    def __init__(self, run_dir: str | Path, create: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.location = str(self.run_dir)
        if create:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self.journal_path = self.run_dir / JOURNAL
        self.snapshot_path = self.run_dir / SNAPSHOT
        self._torn = False  # a failed append may have left part of a line that is not yet cut

    def exists(self) -> bool:
        return self.journal_path.is_file() or self.snapshot_path.is_file()

    def recover(self) -> int:
        """Cut a torn last line (a crash mid-append); the next sequence number."""
        if not self.journal_path.exists():
            return 0
        data = self.journal_path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end != len(data):
            log.warning("journal %s: dropping a torn last line (%d bytes)", self.journal_path,
                        len(data) - end)
            with open(self.journal_path, "r+b") as f:
                f.truncate(end)
                os.fsync(f.fileno())
        last = -1
        for lineno, line in enumerate(self.lines(), 1):
            try:
                last = int(json.loads(line)["seq"])
            except (ValueError, KeyError, TypeError) as exc:
                raise StoreError(f"{self.journal_path}:{lineno}: corrupt event ({exc})") from None
        return last + 1

    def append(self, seq: int, line: bytes) -> None:
        """Write the whole line (``os.write`` may write part of it) and fsync; on a failure (a full
        disk) cut what was written of it, so that the journal still ends with a whole event, and
        raise: the event was not recorded."""
        fd = os.open(self.journal_path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if self._torn:
                self._cut(fd, _last_line_end(fd))
            start = os.fstat(fd).st_size
            try:
                _write_all(fd, line)
                os.fsync(fd)
            except OSError as exc:
                self._torn = True
                self._cut(fd, start)
                raise StoreError(f"{self.journal_path}: event {seq} not written ({exc.strerror or exc}); "
                                 "free disk space, then resume the run") from None
        finally:
            os.close(fd)

    def _cut(self, fd: int, size: int) -> None:
        """Truncate the journal to ``size`` (a whole-event boundary); if that fails too the next
        append tries again before it writes, and a replay stops at the torn tail meanwhile."""
        try:
            os.ftruncate(fd, size)
            os.fsync(fd)
            self._torn = False
        except OSError as exc:
            log.error("journal %s: could not cut a partly written event (%s)", self.journal_path, exc)

    def lines(self, after: int = -1) -> Iterator[bytes]:
        if not self.journal_path.exists():
            return
        with open(self.journal_path, "rb") as f:
            for line in f:
                if not line.endswith(b"\n"):
                    return  # torn tail: never acknowledged to anyone
                yield line

    def write_snapshot(self, data: bytes) -> None:
        tmp = self.snapshot_path.with_suffix(".json.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.snapshot_path)
        fd = os.open(self.run_dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def read_snapshot(self) -> bytes | None:
        return self.snapshot_path.read_bytes() if self.snapshot_path.is_file() else None


class ObjectBackend:
    """Events as immutable objects ``events/<seq>.json`` under a bucket prefix; replay by listing."""

    def __init__(self, uri: str) -> None:
        self.location = uri.rstrip("/")
        self.fs, self.base = resolve(self.location)
        self._atomic: bool | None = None  # conditional creates offered? (asked at the first append)

    def _event_key(self, seq: int) -> str:
        return f"{self.base}/{EVENTS}/{seq:012d}.json"

    def _seqs(self) -> list[int]:
        from pyarrow import fs as pafs

        infos = self.fs.get_file_info(pafs.FileSelector(f"{self.base}/{EVENTS}", allow_not_found=True))
        seqs = []
        for info in infos:
            name = info.base_name
            if info.type == pafs.FileType.File and name.endswith(".json") and name[:-5].isdigit():
                seqs.append(int(name[:-5]))
        return sorted(seqs)

    def exists(self) -> bool:
        from pyarrow import fs as pafs

        snapshot = self.fs.get_file_info(f"{self.base}/{SNAPSHOT}")
        return bool(self._seqs()) or snapshot.type == pafs.FileType.File

    def recover(self) -> int:
        return len(_contiguous(self._seqs()))

    def append(self, seq: int, line: bytes) -> None:
        if self._atomic is None:
            self._atomic = conditional_objects(join(self.location, EVENTS)).atomic
        if self._atomic:  # created only if the number is free: never two events under one number
            target = conditional_objects(join(self.location, EVENTS, f"{seq:012d}.json"))
            if target.create(line) is None:
                found = target.read()
                if found is None or found[0] != line:  # not our own PUT retried after a lost answer
                    raise StoreError(f"{self.location}: event {seq} was written by another writer; "
                                     "one writer per run — stop the other `trex run/resume`, then resume")
            return
        with self.fs.open_output_stream(self._event_key(seq)) as f:  # one PUT: all or nothing
            f.write(line)

    def lines(self, after: int = -1) -> Iterator[bytes]:
        for seq in _contiguous(self._seqs()):
            if seq > after:
                with self.fs.open_input_stream(self._event_key(seq)) as f:
                    yield f.read()

    def write_snapshot(self, data: bytes) -> None:
        with self.fs.open_output_stream(f"{self.base}/{SNAPSHOT}") as f:
            f.write(data)

    def read_snapshot(self) -> bytes | None:
        from pyarrow import fs as pafs

        path = f"{self.base}/{SNAPSHOT}"
        if self.fs.get_file_info(path).type != pafs.FileType.File:
            return None
        with self.fs.open_input_stream(path) as f:
            return bytes(f.read())


def _write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written (it may write fewer than asked, e.g. on a full disk)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.EIO, f"write returned {written}")
        view = view[written:]


def _last_line_end(fd: int, chunk: int = 65536) -> int:
    """The size of the journal up to its last newline (0 if none): where its whole events end."""
    end = os.fstat(fd).st_size
    while end > 0:
        start = max(0, end - chunk)
        block = os.pread(fd, end - start, start)
        cut = block.rfind(b"\n")
        if cut >= 0:
            return start + cut + 1
        end = start
    return 0


def _contiguous(seqs: list[int]) -> list[int]:
    """0, 1, 2, ... up to the first gap: an event after a gap was never acknowledged (a failed PUT
    is retried under the same number), so the log ends there."""
    out = []
    for expected, seq in enumerate(seqs):
        if seq != expected:
            log.warning("event log: sequence gap at %d (found %d); replay stops there", expected, seq)
            break
        out.append(seq)
    return out


def open_backend(location: str | Path, create: bool = True) -> JournalBackend:
    """The backend for a run's location: ``s3://``/``gs://``/... URIs, else a local directory."""
    if is_remote(location):
        return ObjectBackend(str(location))
    return LocalBackend(location, create=create)
