"""`trex bench` end to end on an embedded Ray cluster: two analogs at once, sharing one SlotPool."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from trex_ray.report.text import eval_backends
from trex_ray.store import read_tree

pytestmark = [pytest.mark.ray, pytest.mark.slow]

TREX = [sys.executable, "-m", "trex_ray.cli"]
SMALL = ["data.train.0.limit=500", "data.eval.limit=100"]  # seconds per trial, not minutes
VLLM = ["eval.backend=vllm"]  # by name: on CPUs `auto` evaluates full fine-tunes with HF


def test_bench_two_analogs_json(tmp_path: Path, shared_cache: Path) -> None:
    out_dir = tmp_path / "bench"
    env = dict(os.environ, TREX_CACHE_DIR=str(shared_cache))
    env.pop("RAY_ADDRESS", None)
    cmd = [
        *TREX,
        "bench",
        "--suite",
        "ftbench-mini",
        "--tasks",
        "sst2,gta",
        "--max-nodes",
        "1",  # one trained node a task: the point is two tasks on one pool and one engine
        "--json",
        "--out",
        str(out_dir),
        *SMALL,
        *VLLM,
        "search.test_top_k=0",  # the base alone on the test split: a full node's own engine costs ~30 s
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    last = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    assert last.startswith("{"), (out.stdout[-2000:], out.stderr[-2000:])
    data = json.loads(last)
    assert data["suite"] == "ftbench-mini" and data["wall_seconds"] > 0
    rows = {row["task"]: row for row in data["rows"]}
    assert set(rows) == {"sst2", "gta"}
    for name, row in rows.items():
        assert row["error"] is None
        assert row["nodes"] == 1 and row["base"] is not None
        assert row["metric"] == {"sst2": "accuracy", "gta": "tool_call_accuracy"}[name]
        assert (out_dir / name / "journal.jsonl").is_file()
        assert row["gain"] is not None and row["compute_seconds"] > 0
        assert row["base_test"] is not None
    # one evaluator (one vLLM engine) served both tasks, which share the base model
    assert "1 shared evaluator(s) for 2 tasks" in out.stderr
    for name in rows:
        tree = read_tree(out_dir / name)
        scored = [n for n in tree if n.result is not None and n.result.metric is not None]
        assert scored and eval_backends(tree) == {"vllm": len(scored)}
        assert [n.id for n in tree if n.test_metric is not None] == ["n0"]  # test_top_k=0: the base only
    table = pq.read_table(out_dir / "results.parquet").to_pylist()
    assert [r["task"] for r in table] == ["sst2", "gta"]
    assert "gain over base on" in (out_dir / "results.md").read_text()
    report = subprocess.run(
        [*TREX, "report", str(out_dir / "gta"), "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert json.loads(report.stdout.strip().splitlines()[-1])["task"] == "gta-mini"
