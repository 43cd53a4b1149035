"""A real run end to end (embedded Ray, tiny model), planned by an LLM behind a local OpenAI-compatible
server (the server runs in this process; the run, a subprocess, reaches it through litellm's HTTP path).

One run, several points (each run costs a cluster start and its trials, so they share one):

* `runs/` holds the run's folder and nothing else (Ray Train's trial folders live inside it and go once
  a trial succeeded); retention kept only what it must;
* the run's TensorBoard files and MLflow runs read back with the libraries' own readers;
* the nodes are the LLM's plans with its insights, every stage of the LLM was called, with the key
  from the environment, and the key is written nowhere in the run's files.

A search against a garbage LLM (every kind of bad answer: the heuristic takes each step, nothing
hostile is journaled, the key is written nowhere) is
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
from tb_events import read_events

from trex_ray.store import Store

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.system]  # `make test-system`

TREX = [sys.executable, "-m", "trex_ray.cli"]
FAST = ["data.train.0.limit=400", "data.eval.limit=100", "eval.backend=hf",
        "search.early_stopping=false"]  # about the LLM's plans: a stopped trial would only add a node
SECRET = "sk-e2e-SECRETvalue-4f9a8b7c6d5e"


def _files(run_dir: Path) -> list[str]:
    return [p.read_text(errors="replace") for p in run_dir.rglob("*")
            if p.is_file() and p.stat().st_size < 5e7]


def test_an_llm_planned_run_keeps_its_files_in_its_folder_tracks_every_node_and_no_secret(
        tmp_path: Path, shared_cache: Path) -> None:
    runs, db = tmp_path / "runs", tmp_path / "mlflow.db"
    run_dir = runs / "r1"
    env = dict(os.environ, TREX_CACHE_DIR=str(shared_cache), OPENAI_API_KEY=SECRET)
    env.pop("RAY_ADDRESS", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    with LLMServer(default=PlanScript()) as server:
        cmd = [*TREX, "run", "sentiment", "--planner", "llm", "--model", "openai/test",
               "--api-base", server.url, "--run-dir", str(run_dir), "--max-nodes", "2", "--quiet", *FAST,
               f"tracking.mlflow=sqlite:///{db}", "search.keep_checkpoints=1"]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)
        auth = {r["headers"].get("authorization") for r in server.requests}
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Traceback" not in out.stderr and "Traceback" not in out.stdout

    # the LLM planned: its plans, its insights, every stage, the key from the environment and nowhere else
    assert auth == {f"Bearer {SECRET}"}
    report = subprocess.run([*TREX, "report", str(run_dir), "--format", "json"], env=env, capture_output=True,
                            text=True, timeout=120)
    nodes = json.loads(report.stdout.strip().splitlines()[-1])["nodes"]
    nodes = [n for n in nodes if n["parent"] is not None]
    assert len(nodes) == 2 and all(n["rationale"].startswith("LLM plan") for n in nodes)
    assert all((n["insight"] or "").startswith("LLM insight") for n in nodes if n["status"] != "pending")
    stages = [json.loads(line)["stage"] for line in (run_dir / "llm_calls.jsonl").read_text().splitlines()]
    assert {"research", "strategy", "reflection"} <= set(stages)
    assert all(SECRET not in text and SECRET[:10] not in text for text in _files(run_dir))

    # the run's files: its folder only; retention
    assert sorted(p.name for p in runs.iterdir()) == ["r1"]  # nothing beside the run (cache: elsewhere)
    assert not list((run_dir / "ray_train").glob("*"))  # trial folders inside the run, gone after success
    tree = Store(run_dir).replay()
    trained = [n for n in tree if n.parent is not None and n.result is not None and n.result.ok]
    assert trained
    kept = {p.parent.name for p in (run_dir / "nodes").glob("*/checkpoint")}
    best = tree.best()
    assert best is not None and (best.id in kept or best.parent is None)
    assert len(kept) <= 1 + sum(1 for n in tree if n.status.value in ("pending", "running"))

    # TensorBoard, read back with its own reader
    for node in trained:
        scalars, hparams = read_events(run_dir / "tensorboard" / node.id)
        assert len(scalars["train/loss"]) == node.result.cost.train_steps  # type: ignore[union-attr]
        assert scalars["val/accuracy"][0][1] == pytest.approx(node.metric, rel=1e-6)
        assert hparams["train.learning_rate"] == pytest.approx(node.plan.train.learning_rate)

    # MLflow, read back with its own client
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    experiment = client.get_experiment_by_name("sentiment")
    runs_logged = client.search_runs([experiment.experiment_id])
    parent = next(r for r in runs_logged if r.data.tags.get("trex.kind") == "search")
    logged_nodes = {r.data.tags["trex.node_id"]: r for r in runs_logged
                    if r.data.tags.get("trex.kind") == "node"}
    assert set(logged_nodes) == {n.id for n in tree if n.result is not None}
    assert parent.info.status == "FINISHED" and parent.data.tags["trex.best_node"] == best.id
    logged = logged_nodes[trained[0].id]
    assert logged.data.params["train.learning_rate"] == str(trained[0].plan.train.learning_rate)
    assert logged.data.metrics["val_accuracy"] == pytest.approx(trained[0].metric)
    history = client.get_metric_history(logged.info.run_id, "train_loss")
    assert len(history) == len(trained[0].result.curve)  # type: ignore[union-attr]
    if best.test_metric is not None and best.parent is not None:
        assert logged_nodes[best.id].data.metrics["test_accuracy"] == pytest.approx(best.test_metric)
    params = json.dumps([r.data.params for r in runs_logged]) + json.dumps([r.data.tags for r in runs_logged])
    assert SECRET not in params and SECRET[:10] not in params  # nor in the tracking records
