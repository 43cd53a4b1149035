"""Hardening (issue 18): secrets out of run locations, journal writes that cannot tear the log,
bounded data-op params. Pure: no Ray, no training."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import yaml
from factories import make_plan, task_dict

from trex_ray.cli import main
from trex_ray.spec import SpecError, load_task
from trex_ray.spec.uri import credentials_problem
from trex_ray.store import JOURNAL, Store, StoreError
from trex_ray.tree import Event, EventKind

SECRET = "wJalrXUtnFEMIK7MDENGbPxRfiCYzEXAMPLEKEY"
SECRET_URIS = [
    f"s3://AKIAIOSFODNN7EXAMPLE:{SECRET}@bucket/trex",
    f"s3://{SECRET}@bucket/trex",
    f"gs://bucket/trex?access_key=AKIA&secret_key={SECRET}",
    f"s3://bucket/trex?endpoint_override=127.0.0.1:9000&X-Amz-Signature={SECRET}",
    f"s3://bucket/trex?session_token={SECRET}",
]


# --- secrets ------------------------------------------------------------------------------------
@pytest.mark.parametrize("uri", SECRET_URIS)
def test_a_storage_path_with_credentials_is_refused_without_echoing_them(uri):
    with pytest.raises(SpecError) as info:
        load_task(task_dict(storage_path=uri))
    message = str(info.value)
    assert "\n" not in message and "storage_path" in message and "AWS_ACCESS_KEY_ID" in message
    assert SECRET not in message and "AKIA" not in message


@pytest.mark.parametrize("uri", ["runs", "/tmp/runs", "runs/me@host", "s3://bucket/trex",
                                 "s3://bucket/trex?endpoint_override=127.0.0.1:9000&scheme=http",
                                 "gs://bucket/a/b?region=eu-west-1"])
def test_plain_locations_pass(uri):
    assert credentials_problem(uri) is None
    assert load_task(task_dict(storage_path=uri)).storage_path == uri


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@pytest.mark.parametrize("uri", SECRET_URIS)
@pytest.mark.parametrize("command", ["run", "resume", "status", "report"])
def test_the_cli_refuses_a_run_dir_with_credentials_and_writes_nothing(uri, command, tmp_path,
                                                                       monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    task_file = tmp_path / "task.yaml"
    task_file.write_text(yaml.safe_dump(task_dict()))
    before = _files(tmp_path)
    argv = ["run", str(task_file), "--run-dir", uri] if command == "run" else [command, uri]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert SECRET not in out + err and err.count("\n") == 1 and "environment" in err
    assert "--run-dir" in err if command == "run" else "RUN_DIR" in err
    assert _files(tmp_path) == before


def test_trex_run_refuses_a_task_whose_storage_path_holds_credentials(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    task_file = tmp_path / "task.yaml"
    task_file.write_text(yaml.safe_dump(task_dict(storage_path=SECRET_URIS[0])))
    clean_file = tmp_path / "clean.yaml"
    clean_file.write_text(yaml.safe_dump(task_dict()))
    assert main(["run", str(task_file)]) == 2
    assert main(["run", str(clean_file), f"storage_path={SECRET_URIS[2]}"]) == 2
    out, err = capsys.readouterr()
    assert SECRET not in out + err and err.count("\n") == 2
    assert _files(tmp_path) == {task_file, clean_file}


# --- journal writes -----------------------------------------------------------------------------
def _events(store: Store) -> list[tuple[int, str | None]]:
    return [(e.seq, e.node_id) for e in store.events()]


def _add(store: Store, i: int) -> Event:
    plan = make_plan(lr=1e-3 * (1 + i)).model_dump(mode="json")
    return store.append(Event(kind=EventKind.node_added, node_id=f"n{i}", payload={
        "parent": None if i == 0 else "n0", "plan": plan, "note": "é" * 50}))


def test_short_writes_are_written_whole(tmp_path, monkeypatch):
    real_write = os.write
    store = Store(tmp_path / "run")
    with monkeypatch.context() as m:
        m.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data[:7])))  # 7 bytes a call
        for i in range(5):
            _add(store, i)
    assert _events(Store(tmp_path / "run", readonly=True)) == [(i, f"n{i}") for i in range(5)]
    assert len(Store(tmp_path / "run").replay()) == 5


def _full_disk_after(limit: int):
    """An ``os.write`` that writes ``limit`` more bytes, part of a line, then fails with ENOSPC."""
    real_write, left = os.write, [limit]

    def write(fd: int, data: bytes) -> int:
        if left[0] <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        n = real_write(fd, bytes(data[: min(len(data), left[0], 40)]))
        left[0] -= n
        return n

    return write


@pytest.mark.parametrize("cut_fails", [False, True])
def test_a_full_disk_mid_line_fails_loudly_and_leaves_the_journal_replayable(tmp_path, monkeypatch,
                                                                             cut_fails):
    store = Store(tmp_path / "run")
    for i in range(3):
        _add(store, i)
    with monkeypatch.context() as m:
        m.setattr(os, "write", _full_disk_after(100))
        if cut_fails:  # the disk refuses even the repair: the next append repairs first
            m.setattr(os, "ftruncate", lambda fd, size: (_ for _ in ()).throw(OSError(errno.EIO, "EIO")))
        with pytest.raises(StoreError, match="event 3 not written .*No space left.*free disk space") as info:
            _add(store, 3)
        assert "\n" not in str(info.value)
    journal = (tmp_path / "run" / JOURNAL).read_bytes()
    assert journal.endswith(b"\n") is not cut_fails  # a torn tail only if it could not be cut
    assert _events(Store(tmp_path / "run", readonly=True)) == [(0, "n0"), (1, "n1"), (2, "n2")]
    _add(store, 3)  # space again: the same sequence number, after the last whole event
    _add(store, 4)
    assert _events(Store(tmp_path / "run", readonly=True)) == [(i, f"n{i}") for i in range(5)]
    assert [n.id for n in Store(tmp_path / "run").replay()] == [f"n{i}" for i in range(5)]


def test_a_writer_that_died_mid_line_is_repaired_by_the_next(tmp_path, monkeypatch):
    store = Store(tmp_path / "run")
    _add(store, 0)
    with monkeypatch.context() as m:
        m.setattr(os, "write", _full_disk_after(60))
        m.setattr(os, "ftruncate", lambda fd, size: (_ for _ in ()).throw(OSError(errno.EIO, "EIO")))
        with pytest.raises(StoreError):
            _add(store, 1)
    reopened = Store(tmp_path / "run")  # a resume: recover() cuts the torn tail
    assert reopened.exists and (tmp_path / "run" / JOURNAL).read_bytes().endswith(b"\n")
    _add(reopened, 1)
    assert _events(reopened) == [(0, "n0"), (1, "n1")]
