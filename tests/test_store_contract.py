"""One contract for every store backend: a local directory and S3 (moto on 127.0.0.1).

Every test runs against both; what a backend must do is written once (Optuna's storage tests).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from factories import diverged, finished, make_plan
from s3_local import LocalS3, fresh_location, local_s3

from trex_ray.spec import Progress, TrainMode
from trex_ray.store import Store, StoreError, read_tree, tree_to_dict
from trex_ray.store.backends import ObjectBackend, open_backend
from trex_ray.store.files import download_dir, exists, is_complete_dir, join, upload_dir
from trex_ray.tree import Event, EventKind, SearchTree


@pytest.fixture(scope="module")
def s3() -> Iterator[LocalS3]:
    with local_s3() as server:
        yield server


@pytest.fixture(params=["local", "s3"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_location(request, tmp_path)


def dump(tree: SearchTree) -> str:
    return json.dumps(tree_to_dict(tree), sort_keys=True)


def record(store: Store, tree: SearchTree, kind: EventKind, node_id: str | None = None, **payload) -> Event:
    event = store.append(Event(kind=kind, node_id=node_id, payload=payload))
    tree.apply(event)
    return event


def small_run(store: Store, tree: SearchTree) -> None:
    record(store, tree, EventKind.run_started, task={"name": "t"}, run_id="r", profile={}, started=1.0)
    record(store, tree, EventKind.node_added, "n0", parent=None,
           plan=make_plan(mode=TrainMode.none).model_dump(mode="json"))
    record(store, tree, EventKind.node_started, "n0", attempt=1)
    record(store, tree, EventKind.node_finished, "n0", result=finished(0.3).model_dump(mode="json"))
    record(store, tree, EventKind.node_added, "n1", parent="n0", plan=make_plan(1e-3).model_dump(mode="json"))
    record(store, tree, EventKind.node_started, "n1", attempt=1)
    nan = float("nan")
    record(store, tree, EventKind.node_progress, "n1",
           progress=Progress(fraction=0.5, step=2, train_loss=nan, val_loss=nan).model_dump())
    record(store, tree, EventKind.node_finished, "n1", result=diverged().model_dump(mode="json"))


def test_a_new_location_is_empty(location: str) -> None:
    store = Store(location)
    assert not store.exists and len(store.replay()) == 0
    with pytest.raises(FileNotFoundError):
        read_tree(location)


def test_append_assigns_consecutive_seqs_and_a_reopened_store_continues(location: str) -> None:
    store = Store(location)
    seqs = [store.append(Event(kind=EventKind.insight, payload={"i": i})).seq for i in range(4)]
    assert seqs == [0, 1, 2, 3]
    assert store.exists and [e.payload["i"] for e in store.events()] == [0, 1, 2, 3]
    assert Store(location).append(Event(kind=EventKind.insight)).seq == 4


def test_replay_equals_the_live_tree_nan_included(location: str) -> None:
    store, tree = Store(location), SearchTree()
    small_run(store, tree)
    replayed = Store(location).replay()
    assert dump(replayed) == dump(tree)
    assert replayed.get("n1").status.value == "failed"
    progress = [e for e in Store(location).events() if e.kind is EventKind.node_progress]
    assert math.isnan(progress[0].payload["progress"]["train_loss"])


def test_snapshot_then_later_events(location: str) -> None:
    store, tree = Store(location, snapshot_every=10_000), SearchTree()
    small_run(store, tree)
    store.snapshot(tree)
    record(store, tree, EventKind.node_added, "n2", parent="n0", plan=make_plan(2e-3).model_dump(mode="json"))
    record(store, tree, EventKind.run_finished, reason="budget")
    assert dump(Store(location).replay()) == dump(tree)  # old events applied twice would raise
    assert dump(read_tree(location)) == dump(tree)


def test_maybe_snapshot_every_n_events(location: str) -> None:
    store, tree = Store(location, snapshot_every=3), SearchTree()
    for i in range(7):
        record(store, tree, EventKind.insight, None, text=str(i))
        store.maybe_snapshot(tree)
    assert json.loads(store.backend.read_snapshot() or b"{}")["last_seq"] == 5
    assert dump(Store(location).replay()) == dump(tree)


def test_a_reader_never_writes(location: str) -> None:
    writer, tree = Store(location), SearchTree()
    small_run(writer, tree)
    reader = Store(location, readonly=True)
    with pytest.raises(StoreError):
        reader.append(Event(kind=EventKind.insight))
    assert dump(reader.replay()) == dump(tree)
    record(writer, tree, EventKind.insight, None, text="later")  # the live writer goes on
    assert dump(read_tree(location)) == dump(tree)


def test_a_crashed_writer_is_replaced_by_a_new_one_and_nothing_is_lost(location: str) -> None:
    first, tree = Store(location), SearchTree()
    small_run(first, tree)
    del first  # the writer dies; a restarted one opens the same location
    second = Store(location)
    assert second.replay().last_seq == tree.last_seq
    event = record(second, tree, EventKind.node_requeued, "n1", reason="interrupted")
    assert event.seq == 8
    assert dump(Store(location).replay()) == dump(tree)


def test_unicode_survives(location: str) -> None:
    store = Store(location)
    store.append(Event(kind=EventKind.insight, payload={"text": "LoRA → full: ça marche, 学习率"}))
    assert Store(location).replay().insights[0]["text"] == "LoRA → full: ça marche, 学习率"


@pytest.mark.parametrize("sub", ["sub", ""], ids=["nested", "flat"])
def test_folders_go_up_and_come_back(location: str, tmp_path: Path, sub: str) -> None:
    # "flat": files only, as a saved checkpoint is; an object store then lists no folder to create
    src = tmp_path / "ckpt"
    (src / sub).mkdir(parents=True)
    (src / "weights.bin").write_bytes(b"\x00\x01" * 1000)
    (src / sub / "config.json").write_text('{"a": 1}')
    dest = join(location, "nodes", "n1", "checkpoint")
    if not location.startswith("s3://"):
        Path(dest).parent.mkdir(parents=True)
    upload_dir(src, dest)
    assert exists(dest) and is_complete_dir(dest)
    back = download_dir(dest, tmp_path / "cache" / "checkpoints" / "back")  # its parent not there yet
    assert (back / "weights.bin").read_bytes() == b"\x00\x01" * 1000
    assert json.loads((back / sub / "config.json").read_text()) == {"a": 1}
    assert sorted(p.name for p in back.parent.iterdir()) == ["back"]  # no temporary folder left
    assert not is_complete_dir(join(location, "nodes", "n2", "checkpoint"))


# --- object-store specifics -------------------------------------------------------------------
def test_s3_events_are_one_object_each_and_a_gap_ends_the_log(s3: LocalS3) -> None:
    bucket = s3.new_bucket()
    location = f"s3://{bucket}/runs/r1"
    store, tree = Store(location), SearchTree()
    small_run(store, tree)
    keys = s3.keys(bucket, "runs/r1/events/")
    assert keys == [f"runs/r1/events/{i:012d}.json" for i in range(8)]
    backend = open_backend(location)
    assert isinstance(backend, ObjectBackend)
    backend.append(10, b'{"kind": "insight", "seq": 10}\n')  # never acknowledged: 8 and 9 are missing
    assert Store(location).replay().last_seq == 7
    assert Store(location).append(Event(kind=EventKind.insight)).seq == 8


def test_a_local_location_stays_a_jsonl_journal(tmp_path: Path) -> None:
    store = Store(tmp_path / "run")
    store.append(Event(kind=EventKind.insight))
    assert (tmp_path / "run" / "journal.jsonl").read_text().count("\n") == 1
