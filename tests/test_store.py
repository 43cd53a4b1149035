"""store: journal + snapshot replay equals the live tree; torn tails, corrupt lines, SIGKILL."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from factories import diverged, finished, make_plan, stopped

from trex_ray.spec import Progress, TrainMode
from trex_ray.store import JOURNAL, SNAPSHOT, Store, StoreError, read_tree, tree_from_dict, tree_to_dict
from trex_ray.tree import Event, EventKind, SearchTree

REPO = Path(__file__).resolve().parents[1]


def dump(tree: SearchTree) -> str:
    """A comparable form of a tree (JSON text, so that NaN losses compare equal)."""
    return json.dumps(tree_to_dict(tree), sort_keys=True)


class Recorder:
    """Appends events to a store and applies what append returned to a live tree."""

    def __init__(self, store: Store, tree: SearchTree | None = None) -> None:
        self.store = store
        self.tree = tree or SearchTree()

    def __call__(self, kind: EventKind, node_id: str | None = None, **payload) -> Event:
        event = self.store.append(Event(kind=kind, node_id=node_id, payload=payload))
        self.tree.apply(event)
        return event


def script(rec: Recorder, part: int) -> None:
    """A varied run: every event kind, NaN losses, prunes, a requeue, insights."""
    if part == 0:
        rec(
            EventKind.run_started,
            task={"name": "t"},
            run_id="r",
            profile={"noise_estimate": 0.1},
            started=1.0,
        )
        rec(
            EventKind.node_added,
            "n0",
            parent=None,
            plan=make_plan(mode=TrainMode.none).model_dump(mode="json"),
        )
        rec(EventKind.node_started, "n0", attempt=1)
        rec(EventKind.node_finished, "n0", result=finished(0.3).model_dump(mode="json"))
        for i, lr in enumerate((1e-3, 2e-3, 5e-3), start=1):
            rec(EventKind.node_added, f"n{i}", parent="n0", plan=make_plan(lr).model_dump(mode="json"))
        rec(EventKind.node_started, "n1", attempt=1)
        rec(
            EventKind.node_progress,
            "n1",
            progress=Progress(fraction=0.25, step=1, train_loss=1.0).model_dump(),
        )
        rec(EventKind.node_finished, "n1", result=finished(0.6).model_dump(mode="json"))
        rec(
            EventKind.insight,
            "n1",
            text="lr 1e-3 helped",
            facts={"kind": "delta", "delta": 0.3, "changes": []},
        )
    else:
        rec(EventKind.node_started, "n2", attempt=1)
        rec(EventKind.node_requeued, "n2", reason="interrupted")
        rec(EventKind.node_started, "n2", attempt=2)
        rec(EventKind.node_finished, "n2", result=finished(0.8).model_dump(mode="json"))
        rec(EventKind.node_pruned, "n1", reason="lost to its siblings")
        rec(EventKind.node_started, "n3", attempt=1)
        nan = float("nan")
        rec(
            EventKind.node_progress,
            "n3",
            progress=Progress(fraction=0.5, step=2, train_loss=nan, val_loss=nan).model_dump(),
        )
        rec(EventKind.node_finished, "n3", result=diverged().model_dump(mode="json"))
        rec(
            EventKind.insight,
            "n3",
            text="5e-3 diverged",
            facts={"kind": "diverged", "mode": "full", "lr": 5e-3},
        )
        rec(
            EventKind.node_added,
            "n4",
            parent="n2",
            plan=make_plan(1e-3, warm_start=True).model_dump(mode="json"),
        )
        rec(EventKind.node_started, "n4", attempt=1)
        rec(EventKind.node_finished, "n4", result=stopped().model_dump(mode="json"))
        rec(EventKind.run_finished, reason="budget")


def test_append_assigns_consecutive_seqs(tmp_path):
    store = Store(tmp_path)
    assert not store.exists
    seqs = [store.append(Event(kind=EventKind.insight, payload={"i": i})).seq for i in range(5)]
    assert seqs == [0, 1, 2, 3, 4] and store.exists
    assert [e.payload["i"] for e in store.events()] == [0, 1, 2, 3, 4]
    assert Store(tmp_path).append(Event(kind=EventKind.insight)).seq == 5  # a reopened store continues


def test_append_then_replay_equals_the_live_tree(tmp_path):
    rec = Recorder(Store(tmp_path, snapshot_every=10_000))
    script(rec, 0)
    script(rec, 1)
    replayed = Store(tmp_path).replay()
    assert dump(replayed) == dump(rec.tree)
    assert replayed.get("n3").status.value == "failed" and replayed.get("n4").status.value == "stopped"
    assert replayed.get("n1").status.value == "pruned" and replayed.get("n2").attempts == 2
    assert replayed.best().id == "n2" and replayed.finished_reason == "budget"
    assert not (tmp_path / SNAPSHOT).exists()


def test_snapshot_then_later_events_replay_correctly(tmp_path):
    store = Store(tmp_path, snapshot_every=10_000)
    rec = Recorder(store)
    script(rec, 0)
    store.snapshot(rec.tree)
    snap_seq = json.loads((tmp_path / SNAPSHOT).read_text())["last_seq"]
    assert snap_seq == rec.tree.last_seq
    script(rec, 1)
    replayed = Store(tmp_path).replay()  # a double application of old events would raise (duplicate ids)
    assert dump(replayed) == dump(rec.tree)


def test_snapshot_alone_restores_the_tree(tmp_path):
    store = Store(tmp_path)
    rec = Recorder(store)
    script(rec, 0)
    script(rec, 1)
    store.snapshot(rec.tree)
    assert dump(tree_from_dict(json.loads((tmp_path / SNAPSHOT).read_text()))) == dump(rec.tree)
    assert dump(store.replay()) == dump(rec.tree)


def test_maybe_snapshot_every_n_events(tmp_path):
    store = Store(tmp_path, snapshot_every=3)
    rec = Recorder(store)
    for i in range(7):
        rec(EventKind.insight, None, text=str(i))
        store.maybe_snapshot(rec.tree)
    assert json.loads((tmp_path / SNAPSHOT).read_text())["last_seq"] == 5
    assert not list(tmp_path.glob("*.tmp"))
    assert dump(Store(tmp_path).replay()) == dump(rec.tree)


def test_an_unreadable_snapshot_falls_back_to_the_journal(tmp_path):
    rec = Recorder(Store(tmp_path))
    script(rec, 0)
    (tmp_path / SNAPSHOT).write_text("{not json")
    assert dump(Store(tmp_path).replay()) == dump(rec.tree)
    (tmp_path / SNAPSHOT).write_text(json.dumps({"format": 999}))
    assert dump(Store(tmp_path).replay()) == dump(rec.tree)


def test_torn_last_line_is_dropped_and_later_appends_work(tmp_path):
    rec = Recorder(Store(tmp_path))
    script(rec, 0)
    journal = tmp_path / JOURNAL
    whole = journal.read_bytes()
    journal.write_bytes(whole + b'{"kind":"node_added","node_id":"n9","pay')  # a crash mid-write
    store = Store(tmp_path)
    assert journal.read_bytes() == whole  # cut back to the last whole line
    assert dump(store.replay()) == dump(rec.tree)
    event = store.append(Event(kind=EventKind.insight, payload={"text": "after the crash"}))
    assert event.seq == rec.tree.last_seq + 1
    replayed = Store(tmp_path).replay()
    assert replayed.insights[-1]["text"] == "after the crash"
    assert journal.read_bytes().endswith(b"\n")


def test_a_reader_never_cuts_the_line_a_live_writer_is_writing(tmp_path):
    rec = Recorder(Store(tmp_path))
    script(rec, 0)
    journal = tmp_path / JOURNAL
    partial = journal.read_bytes() + b'{"kind":"node_added","node_id":"n9","pay'  # mid-append right now
    journal.write_bytes(partial)
    assert dump(read_tree(tmp_path)) == dump(rec.tree)
    assert journal.read_bytes() == partial  # untouched
    with pytest.raises(StoreError):
        Store(tmp_path, readonly=True).append(Event(kind=EventKind.insight, payload={}))
    with pytest.raises(FileNotFoundError):
        read_tree(tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()


def test_a_journal_that_is_only_a_torn_line(tmp_path):
    (tmp_path / JOURNAL).write_bytes(b'{"kind":"run_sta')
    store = Store(tmp_path)
    assert not store.exists and len(store.replay()) == 0
    assert store.append(Event(kind=EventKind.insight)).seq == 0


def test_a_corrupt_middle_line_raises_store_error(tmp_path):
    rec = Recorder(Store(tmp_path))
    script(rec, 0)
    journal = tmp_path / JOURNAL
    lines = journal.read_bytes().splitlines(keepends=True)
    lines[2] = b'{"kind": "node_started", "garbage\n'
    journal.write_bytes(b"".join(lines))
    with pytest.raises(StoreError, match=":3: corrupt event"):
        Store(tmp_path)


def test_a_corrupt_line_found_at_replay_raises_store_error(tmp_path):
    store = Store(tmp_path)
    rec = Recorder(store)
    script(rec, 0)
    with open(tmp_path / JOURNAL, "ab") as f:
        f.write(b"not an event\n")
    with pytest.raises(StoreError):
        store.replay()


def test_unicode_text_survives(tmp_path):
    rec = Recorder(Store(tmp_path))
    rec(EventKind.insight, None, text="LoRA → full: ça marche, 学习率")
    assert Store(tmp_path).replay().insights[0]["text"] == "LoRA → full: ça marche, 学习率"


def test_run_dir_is_created(tmp_path):
    run_dir = tmp_path / "a" / "b"
    Store(run_dir)
    assert run_dir.is_dir()


# --- crash safety: SIGKILL a writer at random moments -----------------------------------
CHILD = textwrap.dedent(
    """
    import sys
    from trex_ray.store import Store
    from trex_ray.tree import Event, EventKind

    store = Store(sys.argv[1])
    pad = "x" * 2000
    print("ready", flush=True)
    i = 0
    while True:
        event = store.append(Event(kind=EventKind.insight, payload={"text": pad, "i": i}))
        print(event.seq, flush=True)
        i += 1
    """
)


def test_sigkill_loses_no_acknowledged_event(tmp_path):
    child = tmp_path / "writer.py"
    child.write_text(CHILD)
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    acked: set[int] = set()
    rng = random.Random(1234)
    for delay in (0.0, 0.005, 0.02, 0.05, 0.1):
        proc = subprocess.Popen([sys.executable, str(child), str(run_dir)], stdout=subprocess.PIPE, env=env)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(delay * (0.5 + rng.random()))
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        acked |= {int(line) for line in out.split(b"\n") if line.strip().isdigit()}
    assert acked, "the writer never acknowledged an event"
    events = list(Store(run_dir).events())
    seqs = [e.seq for e in events]
    assert seqs == list(range(len(seqs)))  # no gaps, no duplicates across the restarts
    assert acked <= set(seqs)
    assert len(Store(run_dir).replay().insights) == len(seqs)
