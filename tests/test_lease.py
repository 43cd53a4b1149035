"""One writer per run: the lease of a local run folder (flock) and of a bucket run (a lease object on a
loopback S3), the second writer refused with one line, a dead holder's lease taken over, and events
that a second writer could not fork in the bucket (conditional creates).

No Ray: holders are plain processes; `trex resume` is refused before Ray starts.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from factories import make_task
from s3_local import LocalS3, local_s3

from trex_ray.research import Researcher
from trex_ray.store import Store, StoreError
from trex_ray.store.lease import LEASE_OBJECT, Holder, LeaseHeld, LocalLease, ObjectLease, acquire_lease
from trex_ray.store.objects import S3Object, conditional_objects
from trex_ray.tree import Event, EventKind

REPO = Path(__file__).resolve().parents[1]
TREX = [sys.executable, "-m", "trex_ray.cli"]
HOLD = ("import sys, time; from trex_ray.store.lease import acquire_lease; "
        "acquire_lease(sys.argv[1]); print('held', flush=True); time.sleep(600)")


@pytest.fixture(scope="module")
def s3() -> Iterator[LocalS3]:
    with local_s3() as server:
        yield server


def _holder(location: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Another process that takes the run's lease and holds it until killed."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, location], stdout=subprocess.PIPE, text=True,
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def _kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def _new_run(run_dir: Path | str, store: Store | None = None) -> None:
    """A run's first events (no Ray): what `trex resume` reads its task from."""
    Researcher.open(run_dir if store is None else Path(run_dir), make_task(), profile={}, store=store)


# --- a local run folder ---------------------------------------------------------------------------
def test_a_live_local_holder_refuses_a_second_writer_with_one_line_naming_it(tmp_path: Path) -> None:
    run = tmp_path / "run"
    holder = _holder(str(run))
    try:
        with pytest.raises(LeaseHeld) as info:
            acquire_lease(run)
        message = str(info.value)
        assert f"pid {holder.pid}" in message and "host " in message and "since " in message
        assert "\n" not in message
    finally:
        _kill(holder)


def test_trex_resume_of_a_live_local_run_exits_2_with_one_line(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _new_run(run)
    holder = _holder(str(run))
    try:
        t0 = time.time()
        out = subprocess.run([*TREX, "resume", str(run), "--quiet"], capture_output=True, text=True,
                             cwd=REPO, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
        assert out.returncode == 2, out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and f"pid {holder.pid}" in lines[0] and "Traceback" not in out.stderr
        assert lines[0].startswith("trex: error: ") and "one writer per run" in lines[0]
        assert time.time() - t0 < 60  # refused before any Ray cluster starts
    finally:
        _kill(holder)


def test_a_killed_local_holder_s_lease_is_taken_at_once_with_a_warning(tmp_path: Path, caplog) -> None:
    run = tmp_path / "run"
    holder = _holder(str(run))
    _kill(holder)  # kill -9: it never released
    with caplog.at_level(logging.WARNING, logger="trex_ray.store.lease"):
        lease = acquire_lease(run)
    assert f"pid {holder.pid}" in caplog.text and "died" in caplog.text
    assert Holder.parse((run / "lease").read_bytes()).pid == os.getpid()  # type: ignore[union-attr]
    lease.release()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="trex_ray.store.lease"):
        again = LocalLease(run).acquire()  # a clean release leaves nothing to take over
    assert "taking over" not in caplog.text
    with pytest.raises(LeaseHeld):  # one writer, even within one process
        LocalLease(run).acquire()
    again.release()


# --- a bucket run -----------------------------------------------------------------------------------
def _uri(s3: LocalS3) -> str:
    return f"s3://{s3.new_bucket()}/trex/{uuid.uuid4().hex[:6]}"


def _plant(uri: str, host: str, expires_in: float) -> None:
    """A lease object as another machine's driver would have left it."""
    other = Holder(host, 4242, time.time() - 100, "their-token", "another-boot", time.time() + expires_in)
    assert conditional_objects(f"{uri}/{LEASE_OBJECT}").create(other.dump()) is not None


def test_bucket_lease_is_a_conditional_create_and_a_second_writer_is_refused(s3: LocalS3) -> None:
    uri = _uri(s3)
    first = ObjectLease(uri, ttl_s=30).acquire(renew=False)
    with pytest.raises(LeaseHeld) as info:
        ObjectLease(uri, ttl_s=30).acquire(renew=False)
    assert f"pid {os.getpid()}" in str(info.value) and "expires in" in str(info.value)
    assert "\n" not in str(info.value)
    assert isinstance(first.object, S3Object) and first.object.atomic
    first.release()
    assert first.object.read() is None  # released: deleted
    ObjectLease(uri, ttl_s=30).acquire(renew=False).release()


def test_another_machine_s_bucket_lease_is_taken_only_after_it_expires(s3: LocalS3, caplog) -> None:
    uri = _uri(s3)
    _plant(uri, "machine-a", expires_in=3.0)
    with pytest.raises(LeaseHeld) as info:
        acquire_lease(uri, renew=False)
    assert "host machine-a, pid 4242" in str(info.value)
    time.sleep(3.5)
    with caplog.at_level(logging.WARNING, logger="trex_ray.store.lease"):
        lease = acquire_lease(uri, renew=False)
    assert "machine-a" in caplog.text and "expired" in caplog.text
    assert lease.holder.pid == os.getpid()
    lease.release()


def test_a_live_bucket_holder_renews_and_a_killed_one_on_this_machine_is_taken_at_once(s3: LocalS3) -> None:
    uri = _uri(s3)
    holder = _holder(uri, {**s3.env, "TREX_LEASE_TTL_S": "2"})
    try:
        time.sleep(4)  # two lease lifetimes: only renewal keeps it
        with pytest.raises(LeaseHeld) as info:
            acquire_lease(uri, renew=False)
        assert f"pid {holder.pid}" in str(info.value)
    finally:
        _kill(holder)
    lease = acquire_lease(uri, renew=False)  # same host and boot, process gone: no wait for the expiry
    lease.release()


def test_a_holder_whose_lease_was_taken_knows_it_lost_it(s3: LocalS3) -> None:
    uri = _uri(s3)
    mine = ObjectLease(uri, ttl_s=1).acquire(renew=False)
    time.sleep(1.2)  # it failed to renew in time ...
    theirs = ObjectLease(uri, ttl_s=30).acquire(renew=False)  # ... and another writer took over
    assert mine.renew() is False and mine.lost is not None and f"pid {os.getpid()}" in mine.lost
    mine.release()  # does not delete the new holder's lease
    assert theirs.object.read() is not None
    theirs.release()


def test_two_writers_cannot_fork_a_bucket_journal(s3: LocalS3) -> None:
    uri = _uri(s3)
    a, b = Store(uri), Store(uri)  # both opened at seq 0, as two drivers without a lease would
    a.append(Event(kind=EventKind.insight, payload={"by": "a"}))
    with pytest.raises(StoreError, match="another writer"):
        b.append(Event(kind=EventKind.insight, payload={"by": "b"}))
    line = next(a.backend.lines())
    a.backend.append(0, line)  # our own PUT retried after a lost answer is not a second writer
    assert [e.payload["by"] for e in Store(uri, readonly=True).events()] == ["a"]


def test_trex_resume_of_a_live_bucket_run_exits_2_with_one_line(s3: LocalS3, tmp_path: Path) -> None:
    uri = _uri(s3)
    _new_run(tmp_path / "scratch", store=Store(uri))
    lease = acquire_lease(uri, renew=False)
    try:
        env = {**os.environ, **s3.env, "PYTHONPATH": str(REPO), "TREX_SCRATCH": str(tmp_path / "b")}
        out = subprocess.run([*TREX, "resume", uri, "--quiet"], capture_output=True, text=True, cwd=REPO,
                             timeout=120, env=env)
        assert out.returncode == 2, out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and f"pid {os.getpid()}" in lines[0] and "Traceback" not in out.stderr
    finally:
        lease.release()
