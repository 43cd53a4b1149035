"""`trex bench` end to end on a Ray cluster (`ray start --head`): two analogs at once, sharing one SlotPool;
one task's Researcher actor is killed mid-run, restarted by Ray, and its task goes on from the store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from ray_head import ray_head

from trex_ray.report.text import eval_backends
from trex_ray.store import read_tree

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.system]  # `make test-system`

TREX = [sys.executable, "-m", "trex_ray.cli"]
SMALL = ["data.train.0.limit=500", "data.eval.limit=100"]  # seconds per trial, not minutes
VLLM = ["eval.backend=vllm"]  # by name: on CPUs `auto` evaluates full fine-tunes with HF


KILL = textwrap.dedent(
    """
    import sys, ray
    from trex_ray.runtime.auth import align_auth_mode
    from trex_ray.runtime.researcher_actor import NAMESPACE, actor_name
    align_auth_mode()
    ray.init(address=sys.argv[1], namespace=NAMESPACE, log_to_driver=False)
    ray.kill(ray.get_actor(actor_name(sys.argv[2]), namespace=NAMESPACE), no_restart=False)
    print("killed")
    """
)


def _wait_for_training(proc: subprocess.Popen, journal: Path, timeout: float = 600) -> None:
    """Until the task's trained node has started (its Researcher is in the middle of its run)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if journal.is_file() and '"node_started","node_id":"n1"' in journal.read_text():
            return
        assert proc.poll() is None, "the bench ended before sst2's n1 started"
        time.sleep(0.5)
    raise AssertionError("sst2's n1 did not start")


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
    with ray_head(num_cpus=2, env=env) as head:
        proc = subprocess.Popen([*cmd, "--address", head.gcs_address], env=head.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            _wait_for_training(proc, out_dir / "sst2" / "journal.jsonl")
            killer = subprocess.run([sys.executable, "-c", KILL, head.gcs_address, f"{out_dir.name}-sst2"],
                                    env=head.env, capture_output=True, text=True, timeout=180)
            assert killer.returncode == 0 and "killed" in killer.stdout, killer.stderr[-2000:]
            stdout, stderr = proc.communicate(timeout=900)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
    out = subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "sst2: the Researcher actor died" in out.stderr  # restarted by Ray, the task went on
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
