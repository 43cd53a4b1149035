"""End to end: `trex run --planner llm` on an embedded Ray cluster against a local LLM server.

The server runs in this process; the run (a subprocess) reaches it through litellm's HTTP
path. It trains tiny models, so it takes minutes. A search against a garbage LLM (every kind of bad
answer: the heuristic takes each step, nothing hostile is journaled, the key is written nowhere) is
tests/test_llm_planner.py::test_a_search_against_a_garbage_server_completes_with_the_heuristic: the
same Researcher, in this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from llm_server import LLMServer, PlanScript

pytestmark = [pytest.mark.ray, pytest.mark.slow]

TREX = [sys.executable, "-m", "trex_ray.cli"]
# Seconds a trial; evaluation by HF (vLLM runs in test_eval_backends / test_evaluator_ray).
FAST = ["data.train.0.limit=600", "data.eval.limit=150", "eval.backend=hf",
        "search.early_stopping=false"]  # about the LLM: a stopped trial would only add a node
SECRET = "sk-e2e-SECRETvalue-4f9a8b7c6d5e"


def _run(run_dir: Path, server: LLMServer, cache: Path, max_nodes: int) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TREX_CACHE_DIR=str(cache), OPENAI_API_KEY=SECRET)
    env.pop("RAY_ADDRESS", None)
    cmd = [
        *TREX,
        "run",
        "sentiment",
        "--planner",
        "llm",
        "--model",
        "openai/test",
        "--api-base",
        server.url,
        "--max-nodes",
        str(max_nodes),
        "--run-dir",
        str(run_dir),
        "--quiet",
        *FAST,
    ]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)


def _report(run_dir: Path) -> dict:
    out = subprocess.run(
        [*TREX, "report", str(run_dir), "--format", "json"], capture_output=True, text=True, timeout=120
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _files(run_dir: Path) -> list[str]:
    return [
        p.read_text(errors="replace") for p in run_dir.rglob("*") if p.is_file() and p.stat().st_size < 5e7
    ]


def test_an_llm_run_shows_the_llm_plans_and_insights_and_no_secret(tmp_path, shared_cache):
    run_dir = tmp_path / "run"
    with LLMServer(default=PlanScript()) as server:
        out = _run(run_dir, server, shared_cache, max_nodes=2)
        assert out.returncode == 0, out.stderr[-3000:]
        assert "Traceback" not in out.stderr and "Traceback" not in out.stdout
        auth = {r["headers"].get("authorization") for r in server.requests}
    assert auth == {f"Bearer {SECRET}"}  # the Researcher actor used the key from the environment
    nodes = [n for n in _report(run_dir)["nodes"] if n["parent"] is not None]
    assert len(nodes) == 2
    assert all(n["rationale"].startswith("LLM plan") for n in nodes)
    assert all((n["insight"] or "").startswith("LLM insight") for n in nodes if n["status"] != "pending")
    stages = [json.loads(line)["stage"] for line in (run_dir / "llm_calls.jsonl").read_text().splitlines()]
    assert {"research", "strategy", "reflection"} <= set(stages)
    assert all(SECRET not in text and SECRET[:10] not in text for text in _files(run_dir))
