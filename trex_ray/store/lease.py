"""One writer per run: the driver of a run holds its lease for as long as it lives.

* A local run folder: an exclusive ``flock`` on ``RUN_DIR/lease`` (the file names the holder: host,
  pid, since). The kernel drops the lock when the holder dies however it dies (``kill -9`` too), so a
  dead holder's lease is taken at once; a live one's is refused. ``flock`` works on NFS v4.
* A bucket run: the object ``<run>/lease.json`` (holder, ``expires``), made with a conditional create
  (S3 ``If-None-Match: *``, ``store/objects.py``), renewed by the holder every ``ttl / 3`` with a
  conditional replace (``If-Match``: only the version it wrote). Another writer may take it over only
  once it has expired, or at once when its holder was on this very machine (same host and boot) and
  its process is gone. A holder that finds its lease taken (it could not renew in time) is told so
  through ``lost``, and the driver stops.

A second writer gets ``LeaseHeld``: one line naming the holder. Example::

    lease = acquire_lease("runs/r1")       # or "s3://bucket/trex/r1"; raises LeaseHeld
    try:
        ...                                # the run's writer works here
    finally:
        lease.release()
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from trex_ray.store.files import is_remote, join
from trex_ray.store.objects import conditional_objects

log = logging.getLogger(__name__)

LEASE_FILE = "lease"
LEASE_OBJECT = "lease.json"
DEFAULT_TTL_S = 60.0


class LeaseHeld(RuntimeError):
    """Another live writer holds the run; the message is one line naming it."""


def lease_ttl() -> float:
    """Seconds a bucket lease lives without renewal (``TREX_LEASE_TTL_S``, default 60)."""
    try:
        return max(1.0, float(os.environ.get("TREX_LEASE_TTL_S") or DEFAULT_TTL_S))
    except ValueError:
        return DEFAULT_TTL_S


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    since: float
    token: str
    boot: str = ""
    expires: float | None = None

    @classmethod
    def me(cls, expires: float | None = None) -> Holder:
        return cls(socket.gethostname(), os.getpid(), time.time(), uuid.uuid4().hex, _boot_id(), expires)

    @classmethod
    def parse(cls, data: bytes | str) -> Holder | None:
        try:
            raw = json.loads(data)
            return cls(str(raw["host"]), int(raw["pid"]), float(raw["since"]), str(raw["token"]),
                       str(raw.get("boot") or ""), raw.get("expires"))
        except (ValueError, KeyError, TypeError):
            return None

    def dump(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        return f"host {self.host}, pid {self.pid}, since {since}"

    def dead_here(self) -> bool:
        """Its process is gone, and it ran on this machine (same host name and boot)."""
        if self.host != socket.gethostname() or not self.boot or self.boot != _boot_id():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, another user's
            return False
        return False


def _held(location: str, holder: Holder | None, extra: str = "") -> LeaseHeld:
    who = holder.describe() if holder is not None else "another process (it has not named itself yet)"
    return LeaseHeld(f"{location}: this run is being written by {who}{extra}; one writer per run — "
                     "wait for it to end or stop it (`trex status` shows it), then `trex resume`")


class LocalLease:
    """An exclusive ``flock`` on ``RUN_DIR/lease``, held until ``release`` or the process ends."""

    def __init__(self, run_dir: str | Path) -> None:
        self.location = str(run_dir)
        self.path = Path(run_dir) / LEASE_FILE
        self.holder: Holder | None = None
        self.lost: str | None = None  # a local lock cannot be taken from a live holder
        self._fd: int | None = None

    def acquire(self) -> LocalLease:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise _held(self.location, Holder.parse(self.path.read_bytes())) from None
        previous = Holder.parse(os.pread(fd, 4096, 0))
        if previous is not None:  # it never released: it died holding the run
            log.warning("%s: taking over the lease of a writer that died (%s)", self.location,
                        previous.describe())
        self.holder = Holder.me()
        os.ftruncate(fd, 0)
        os.pwrite(fd, self.holder.dump(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)  # a clean end: the next writer has nothing to take over
        os.close(self._fd)  # closing the only descriptor drops the lock
        self._fd = None


class ObjectLease:
    """A lease object with an expiry, renewed by a thread while the holder lives."""

    def __init__(self, location: str, ttl_s: float | None = None) -> None:
        self.location = location
        self.ttl = ttl_s if ttl_s is not None else lease_ttl()
        self.object = conditional_objects(join(location, LEASE_OBJECT))
        self.holder: Holder | None = None
        self.lost: str | None = None
        self._etag: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self, renew: bool = True) -> ObjectLease:
        if not self.object.atomic:
            log.warning("%s: this store offers no conditional write; the lease is checked by read-then-write",
                        self.location)
        me = Holder.me(expires=time.time() + self.ttl)
        for _ in range(5):  # a lease deleted or replaced between our read and our write: look again
            etag = self.object.create(me.dump())
            if etag is None:
                etag = self._take_over(me)
            if etag is not None:
                self.holder, self._etag = me, etag
                if renew:
                    self._thread = threading.Thread(target=self._renew_loop, name="trex-lease", daemon=True)
                    self._thread.start()
                return self
        raise _held(self.location, None)

    def _take_over(self, me: Holder) -> str | None:
        found = self.object.read()
        if found is None:
            return None
        data, etag = found
        current = Holder.parse(data)
        now = time.time()
        if current is not None and current.expires is not None and current.expires > now \
                and not current.dead_here():
            left = current.expires - now
            raise _held(self.location, current, f" (its lease expires in {left:.0f} s unless renewed)")
        why = "its process is gone" if current is not None and current.dead_here() else "its lease expired"
        log.warning("%s: taking over the lease of %s: %s", self.location,
                    current.describe() if current is not None else "an unreadable holder", why)
        return self.object.replace(me.dump(), etag)

    def renew(self) -> bool:
        """Push the expiry on; False (and ``lost`` set) when someone else holds the lease now."""
        if self.holder is None or self._etag is None:
            return False
        fresh = Holder(**{**asdict(self.holder), "expires": time.time() + self.ttl})
        etag = self.object.replace(fresh.dump(), self._etag)
        if etag is None:
            found = self.object.read()
            other = Holder.parse(found[0]) if found is not None else None
            self.lost = f"the run's lease was taken by {other.describe() if other else 'another writer'}"
            log.error("%s: %s; this writer stops", self.location, self.lost)
            return False
        self.holder, self._etag = fresh, etag
        return True

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                if not self.renew():
                    return
            except Exception as exc:  # noqa: BLE001 - a blip of the store: try again before expiry
                log.warning("%s: lease renewal failed (%s); retrying", self.location, exc)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self.holder is None or self.lost is not None:
            return
        with contextlib.suppress(Exception):
            found = self.object.read()
            mine = found is not None and (h := Holder.parse(found[0])) is not None \
                and h.token == self.holder.token
            if mine:
                self.object.delete()
        self.holder = None


class Lease(Protocol):
    location: str
    holder: Holder | None
    lost: str | None  # set when the lease was taken from this writer: it must stop writing

    def release(self) -> None: ...


def acquire_lease(location: str | Path, renew: bool = True) -> Lease:
    """Take the lease of the run at ``location`` (a folder or a bucket URI); raises ``LeaseHeld``."""
    if is_remote(location):
        return ObjectLease(str(location)).acquire(renew=renew)
    return LocalLease(location).acquire()
