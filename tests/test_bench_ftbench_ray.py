"""`trex bench --suite ftbench --model <local dir> --data-dir <fixtures>`: the ten real specs, converted
from local copies in their sources' schemas, searched at once on an embedded Ray cluster with the
embedded SmolLM2-135M as the base; the results table holds test scores and TREX's column."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from ftbench_fixtures import write_all

from trex_ray.ftbench.real import BENCH

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.suite]  # `make test-suites`

TREX = [sys.executable, "-m", "trex_ray.cli"]
# seconds per trial: short sequences, a few tokens, one CPU, HF evaluation (no vLLM engine to start)
SMALL = ["model.max_seq_len=128", "max_new_tokens=6", "resources.cpus_per_worker=1",
         "resources.gpus_per_worker=0", "eval.backend=hf", "search.children_per_expansion=1"]


def test_bench_ftbench_on_local_copies_writes_test_scores_and_trex_column(
        tmp_path: Path, shared_cache: Path, real_model_dir: Path) -> None:
    data_dir = write_all(tmp_path / "data")
    out_dir = tmp_path / "bench"
    env = dict(os.environ, TREX_CACHE_DIR=str(shared_cache), HF_HUB_OFFLINE="1")
    env.pop("RAY_ADDRESS", None)
    cmd = [*TREX, "bench", "--suite", "ftbench", "--model", str(real_model_dir), "--data-dir", str(data_dir),
           "--max-nodes", "1", "--json", "--out", str(out_dir), *SMALL]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1500)
    assert out.returncode == 0, out.stderr[-3000:]
    data = json.loads(out.stdout.strip().splitlines()[-1])
    rows = {row["task"]: row for row in data["rows"]}
    assert list(rows) == [t.name for t in BENCH]
    for t in BENCH:
        row = rows[t.name]
        assert row["error"] is None and row["metric"] == t.metric.value
        assert row["nodes"] == 1 and row["base"] is not None
        assert row["base_test"] is not None and row["best_test"] is not None  # scored on the test split
        assert row["trex"] == t.trex
    table = pq.read_table(out_dir / "results.parquet").to_pylist()
    assert [r["task"] for r in table] == [t.name for t in BENCH] and table[4]["trex"] == 0.972
    md = (out_dir / "results.md").read_text()
    assert "TREX (paper)" in md and "best test" in md and "0.9720" in md
