"""`ray job submit` of a built-in task to a real `ray start --head` cluster (127.0.0.1, own temp dir).

Ray 2.60's token authentication: the head runs with RAY_AUTH_MODE=token; a submit without the same
mode is refused, one with it (scripts/submit.sh sets it) goes through. The run's results land in
its run folder, where `trex report` reads them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from ray_head import RAY, ray_head

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.system]  # `make test-system`

REPO = Path(__file__).resolve().parents[1]
TREX = [sys.executable, "-m", "trex_ray.cli"]


def test_ray_job_submit_runs_a_builtin_task_and_trex_report_reads_it(
        tmp_path: Path, shared_cache: Path) -> None:
    run_dir = tmp_path / "run"
    env = {**os.environ, "RAY_AUTH_MODE": "token", "TREX_CACHE_DIR": str(shared_cache)}
    if not Path.home().joinpath(".ray", "auth_token").is_file() and not env.get("RAY_AUTH_TOKEN"):
        subprocess.run([RAY, "get-auth-token", "--generate"], env=env, check=True, capture_output=True)
    with ray_head(num_cpus=2, env=env) as head:
        refused = subprocess.run([RAY, "job", "list", "--address", head.dashboard_url],
                                 env={**head.env, "RAY_AUTH_MODE": "disabled"}, capture_output=True,
                                 text=True, timeout=120)
        assert refused.returncode != 0, "a client without the token must be refused"
        submission = f"trex-{uuid.uuid4().hex[:8]}"
        out = subprocess.run(
            ["bash", str(REPO / "scripts" / "submit.sh"), "--address", head.dashboard_url,
             "--submission-id", submission, "sentiment", "--max-nodes", "1", "data.train.0.limit=400",
             "data.eval.limit=100", "eval.backend=vllm", "search.test_top_k=0", "--quiet", "--run-dir",
             str(run_dir)],
            env={**head.env, "RAY": RAY},
            cwd=tmp_path, capture_output=True, text=True, timeout=1200)
        assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
        assert f"Job '{submission}' succeeded" in out.stdout + out.stderr
        status = subprocess.run([RAY, "job", "status", "--address", head.dashboard_url, submission],
                                env=head.env, capture_output=True, text=True, timeout=120)
        assert f"Job '{submission}' succeeded" in status.stdout + status.stderr
    assert "run lives in" in out.stdout
    report = subprocess.run([*TREX, "report", str(run_dir), "--format", "json"], capture_output=True,
                            text=True, timeout=120,
                            env={k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"})
    assert report.returncode == 0, report.stderr
    data = json.loads(report.stdout.strip().splitlines()[-1])
    assert data["stop_reason"] and len(data["nodes"]) == 2
    assert all(n["status"] in ("finished", "pruned", "failed", "stopped") for n in data["nodes"])
    assert data["base_metric"] is not None and data["best"] is not None
    # every node scored by the job's vLLM evaluator (by name: on CPUs `auto` evaluates full fine-tunes
    # with HF), the base and the trained node alike: the evaluator runs under `ray job submit` too
    scored = [n for n in data["nodes"] if n["metric"] is not None]
    assert any(n["parent"] is None for n in scored) and any(n["parent"] is not None for n in scored)
    assert {n["eval_backend"] for n in scored} == {"vllm"} and data["eval_backends"] == {"vllm": len(scored)}
