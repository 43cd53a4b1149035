"""SlotLedger (the SlotPool actor's bookkeeping) and the bench results table; no Ray cluster."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from trex_ray.report.bench import markdown, write_table
from trex_ray.runtime.pool import SlotLedger


def test_first_grants_are_spread_over_waiting_members() -> None:
    ledger = SlotLedger(2, ["hoc", "sst2", "gta"])
    assert ledger.acquire("hoc", want=2) == 1  # the second slot is kept for the next in turn
    assert ledger.acquire("gta", want=2) == 0
    assert ledger.acquire("sst2", want=2) == 1
    assert ledger.free() == 0


def test_released_slots_go_round_robin() -> None:
    ledger = SlotLedger(1, ["a", "b", "c"])
    order = []
    for _ in range(6):  # every member polls each round; the holder's trial ends at the round's end
        winners = [m for m in ("a", "b", "c") if ledger.acquire(m, want=1)]
        assert len(winners) == 1
        order.append(winners[0])
        ledger.release(winners[0])
    assert order == ["a", "b", "c", "a", "b", "c"]


def test_a_lone_member_gets_every_slot_and_leaving_frees_them() -> None:
    ledger = SlotLedger(3)
    assert ledger.acquire("solo", want=5) == 3
    ledger.join("late")
    assert ledger.acquire("late", want=1) == 0
    ledger.leave("solo")
    assert ledger.acquire("late", want=2) == 2


def test_holding_resyncs_after_a_restart() -> None:
    ledger = SlotLedger(2, ["x"])
    assert ledger.acquire("x", want=2) == 2
    # the member restarted and runs nothing: its old slots come back
    assert ledger.acquire("x", want=2, holding=0) == 2
    assert ledger.status()["members"]["x"]["held"] == 2


def test_unwanted_reservations_return_to_the_pool() -> None:
    ledger = SlotLedger(2, ["a", "b"])
    assert ledger.acquire("a", want=1) == 1
    assert ledger.free() == 0  # one slot reserved for b (assumed waiting)
    assert ledger.acquire("b", want=0) == 0
    assert ledger.free() == 1
    with pytest.raises(ValueError):
        SlotLedger(0)


ROWS = [
    {
        "task": "hoc",
        "metric": "macro_f1",
        "base": 0.0,
        "best": 0.71,
        "base_test": 0.05,
        "best_test": 0.66,
        "trex": 0.8,
        "gain": 0.71,
        "nodes": 6,
        "compute_seconds": 210.5,
        "wall_seconds": 300.0,
        "best_plan": "full lr=0.002",
        "error": None,
    },
    {
        "task": "gta",
        "metric": "tool_call_accuracy",
        "base": 0.0,
        "best": None,
        "gain": None,
        "nodes": 0,
        "compute_seconds": 0.0,
        "wall_seconds": 12.0,
        "best_plan": None,
        "error": "RayActorError: died",
    },
]


def test_markdown_table_counts_gains() -> None:
    text = markdown(ROWS, title="t", wall_seconds=600)
    assert "| hoc | macro_f1 | 0.0000 | 0.7100 | 0.0500 | 0.6600 | 0.8000 | 0.7100 | 6 | 210 | 300 |" in text
    assert "| gta (error: RayActorError: died) | tool_call_accuracy | 0.0000 | - | - | - | - |" in text
    assert ("gain over base on 1/2 tasks (validation); on the test split on 1/1 tasks scored there; "
            "wall time 10.0 min") in text


def test_write_table_parquet_and_markdown(tmp_path: object) -> None:
    parquet, md = write_table(ROWS, tmp_path, title="bench")  # type: ignore[arg-type]
    table = pq.read_table(parquet).to_pylist()
    assert [r["task"] for r in table] == ["hoc", "gta"] and table[0]["best"] == 0.71
    assert md.read_text().startswith("## bench")
