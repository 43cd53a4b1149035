"""Hardening (issue 18): secrets out of run locations, journal writes that cannot tear the log,
bounded data-op params. Pure: no Ray, no training."""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path

import pytest
import yaml
from factories import TreeBuilder, make_plan, make_task, task_dict

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


# --- bounded data-op params ---------------------------------------------------------------------
def _nest(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(("op", "params", "reason"), [
    ("source_mix", {"n": 10**12}, r"n=1000000000000; use a number in \[1, 40000\] \(at most 100x"),
    ("source_mix", {"n": 2_000_000}, r"n=2000000; use a number in \[1, 40000\]"),
    ("source_mix", {"weights": {"builtin:sentiment": {"deep": 1}}}, r"weights\[builtin:sentiment\]="),
    ("source_mix", {"weights": [1, 2]}, "weights must be a mapping"),
    ("subsample", {"n": 10**7}, r"n=10000000; use a number in \[1, 1e\+06\]"),
    ("subsample", {"fraction": float("nan")}, "fraction=nan"),
    ("length_filter", {"max_words": 10**6}, r"max_words=1000000; use a number in \[1, 100000\]"),
    ("length_filter", {"min_words": 10**9}, "min_words="),
    ("label_noise_filter", {"folds": 101}, r"folds=101; use a number in \[2, 100\]"),
    ("label_noise_filter", {"folds": 1e308}, "folds="),
    ("label_noise_filter", {"mode": {"$gt": ""}}, "mode=.*single number or word"),
    ("dedup", {"key": "x" * 1000}, "key=.*single number or word"),
    ("dedup", {"key": _nest(100)}, r"key=\[\[\[.*single number or word"),
    ("subsample", {"n": [5]}, "n=.*not a list or mapping"),
])
def test_every_op_param_is_bounded_and_scalar(op, params, reason):
    from trex_ray.execute.sources import DataError
    from trex_ray.spec.data_ops import check_op

    with pytest.raises(DataError, match=f"data op '{op}': {reason}") as info:
        check_op(op, params, rows=400, task=make_task())
    assert "\n" not in str(info.value) and len(str(info.value)) < 300


def test_bounded_params_within_limits_pass():
    from trex_ray.spec.data_ops import check_op

    task = make_task()
    assert check_op("source_mix", {"n": 40_000}, 400, task)["n"] == 40_000
    assert check_op("source_mix", {}, 3_000_000, task)["n"] == 3_000_000  # n defaults to the data's size
    assert check_op("subsample", {"n": 1_000_000}, 400, task)["n"] == 1_000_000
    assert check_op("label_noise_filter", {"folds": 100.0}, 400, task)["folds"] == 100
    assert check_op("length_filter", {}, 400, task) == {"min_words": 1, "max_words": 48}


def _plan_check(profile_rows: int | None = 400):
    from trex_ray.research.llm.validate import PlanCheck, registry

    registry()  # the executor's imports (datasets), once per process: not the answer's cost
    builder = TreeBuilder()
    builder.emit(EventKind.run_started, None, task={}, profile={"train_examples": profile_rows})
    root = builder.tree.get(builder.root())
    return PlanCheck(make_task(), builder.tree, root, k=2, cite_ids=set())


def _answer(*ops: dict) -> str:
    plans = [{"data": {"ops": [op]}, "train": {"learning_rate": 1e-3 * (i + 1)},
              "rationale": f"plan {i}"} for i, op in enumerate(ops)]
    return json.dumps({"plans": plans})


def test_an_llm_plan_asking_for_10_to_the_12_rows_is_refused_at_once_with_its_reason(monkeypatch):
    from trex_ray.execute.data import OPS
    from trex_ray.research.llm.client import Rejection

    check = _plan_check()
    for name in list(OPS):  # the validator checks params; it never runs an op
        monkeypatch.setitem(OPS, name, lambda *a: pytest.fail("an op ran inside the validator"))
    t0 = time.perf_counter()
    with pytest.raises(Rejection, match=r"no usable plan: plans.0: data op 'source_mix': n=1000000000000"):
        check(_answer({"op": "source_mix", "params": {"n": 10**12}}))
    plans, problems = check(_answer({"op": "source_mix", "params": {"n": 10**12}},
                                    {"op": "source_mix", "params": {"n": 800}}))
    assert time.perf_counter() - t0 < 0.5
    assert [p.data.ops[0].params for p in plans] == [{"n": 800}]
    assert problems == [f"plans.0: data op 'source_mix': n={10**12}; use a number in [1, 40000] "
                        "(at most 100x the data's 400 examples and 1,000,000)"]


def test_an_llm_plan_nesting_params_a_hundred_deep_is_refused_at_once_with_its_reason():
    from trex_ray.research.llm.client import Rejection

    check = _plan_check(profile_rows=None)  # no profile: the default size
    t0 = time.perf_counter()
    with pytest.raises(Rejection, match="the answer nests lists or objects 10[0-9] deep; keep it under 12"):
        check(_answer({"op": "subsample", "params": {"n": _nest(100)}}))
    deep = _answer({"op": "dedup", "params": {"key": "KEY"}}).replace('"KEY"', "[" * 7000 + "1" + "]" * 7000)
    with pytest.raises(Rejection, match="nests lists or objects 700[0-9] deep"):  # json.loads would recurse
        check(deep)
    plans, problems = check(_answer({"op": "subsample", "params": {"n": _nest(3)}},
                                    {"op": "subsample", "params": {"n": 100}}))
    assert time.perf_counter() - t0 < 0.5
    assert len(plans) == 1
    assert problems[0].startswith("plans.0: data op 'subsample': n=[[[1]]]; give a single")
