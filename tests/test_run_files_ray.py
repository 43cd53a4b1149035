"""What a real run leaves behind (embedded Ray, tiny model): `runs/` holds the run's folder and nothing
else (Ray Train's trial folders live inside it and go once a trial succeeded); the run's TensorBoard
files and MLflow runs read back with the libraries' readers; retention kept only what it must."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tb_events import read_events

from trex_ray.store import Store

pytestmark = [pytest.mark.ray, pytest.mark.slow]

TREX = [sys.executable, "-m", "trex_ray.cli"]
FAST = ["data.train.0.limit=400", "data.eval.limit=100", "eval.backend=hf"]


def test_a_run_keeps_its_files_in_its_folder_and_tracks_every_node(tmp_path: Path,
                                                                    shared_cache: Path) -> None:
    runs, db = tmp_path / "runs", tmp_path / "mlflow.db"
    run_dir = runs / "r1"
    env = dict(os.environ, TREX_CACHE_DIR=str(shared_cache))
    env.pop("RAY_ADDRESS", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    cmd = [*TREX, "run", "sentiment", "--run-dir", str(run_dir), "--max-nodes", "2", "--quiet", *FAST,
           f"tracking.mlflow=sqlite:///{db}", "search.keep_checkpoints=1"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stderr[-3000:]

    assert sorted(p.name for p in runs.iterdir()) == ["r1"]  # nothing beside the run (cache: elsewhere)
    assert not list((run_dir / "ray_train").glob("*"))  # trial folders inside the run, gone after success
    tree = Store(run_dir).replay()
    trained = [n for n in tree if n.parent is not None and n.result is not None and n.result.ok]
    assert trained
    kept = {p.parent.name for p in (run_dir / "nodes").glob("*/checkpoint")}
    best = tree.best()
    assert best is not None and (best.id in kept or best.parent is None)
    assert len(kept) <= 1 + sum(1 for n in tree if n.status.value in ("pending", "running"))

    for node in trained:
        scalars, hparams = read_events(run_dir / "tensorboard" / node.id)
        assert len(scalars["train/loss"]) == node.result.cost.train_steps  # type: ignore[union-attr]
        assert scalars["val/accuracy"][0][1] == pytest.approx(node.metric, rel=1e-6)
        assert hparams["train.learning_rate"] == pytest.approx(node.plan.train.learning_rate)

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    experiment = client.get_experiment_by_name("sentiment")
    runs_logged = client.search_runs([experiment.experiment_id])
    parent = next(r for r in runs_logged if r.data.tags.get("trex.kind") == "search")
    nodes = {r.data.tags["trex.node_id"]: r for r in runs_logged if r.data.tags.get("trex.kind") == "node"}
    assert set(nodes) == {n.id for n in tree if n.result is not None}
    assert parent.info.status == "FINISHED" and parent.data.tags["trex.best_node"] == best.id
    logged = nodes[trained[0].id]
    assert logged.data.params["train.learning_rate"] == str(trained[0].plan.train.learning_rate)
    assert logged.data.metrics["val_accuracy"] == pytest.approx(trained[0].metric)
    history = client.get_metric_history(logged.info.run_id, "train_loss")
    assert len(history) == len(trained[0].result.curve)  # type: ignore[union-attr]
    if best.test_metric is not None and best.parent is not None:
        assert nodes[best.id].data.metrics["test_accuracy"] == pytest.approx(best.test_metric)
