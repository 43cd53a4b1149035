"""Experiment tracking: TensorBoard event files of a real (tiny, in-process) training, read back from
their bytes; MLflow runs in a file store, read back with MLflow's own client."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from factories import finished, make_plan, make_task
from tb_events import read_events

from trex_ray.execute.context import RunContext
from trex_ray.execute.launch import InProcessLauncher
from trex_ray.execute.run_plan import run_plan, score_test
from trex_ray.execute.tracking import MlflowTracker, flat_plan, tb_writer
from trex_ray.ftbench.registry import builtin_task
from trex_ray.spec import DataOp, DataRecipe, Plan, Result, SpecError, TrainRecipe

TASK = builtin_task("sentiment")
PLAN = Plan(data=DataRecipe(ops=[DataOp(op="subsample", params={"n": 160})]),
            train=TrainRecipe(mode="full", learning_rate=1e-3, epochs=1, batch_size=8))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Result, Path, RunContext]:
    root = tmp_path_factory.mktemp("tb")
    ctx = RunContext(task=TASK, node_id="n1", work_dir=root / "nodes" / "n1", cache_dir=root / "cache",
                     launcher=InProcessLauncher(), tensorboard_dir=root / "tensorboard" / "n1")
    result = run_plan(PLAN, ctx)
    assert result.ok, result.error
    return result, root / "tensorboard" / "n1", ctx


def test_tensorboard_has_every_steps_loss_the_val_curve_the_lr_and_the_score(trained) -> None:  # type: ignore[no-untyped-def]
    result, logdir, _ = trained
    scalars, hparams = read_events(logdir)
    steps = [s for s, _ in scalars["train/loss"]]
    assert steps == list(range(1, result.cost.train_steps + 1))
    assert all(math.isfinite(v) for _, v in scalars["train/loss"])
    val = {p.step: p.val_loss for p in result.curve if p.val_loss is not None}
    assert [s for s, _ in scalars["val/loss"]] == sorted(val)
    assert all(v == pytest.approx(val[s], rel=1e-6) for s, v in scalars["val/loss"])
    lrs = [v for _, v in scalars["train/lr"]]
    assert max(lrs) == pytest.approx(PLAN.train.learning_rate, rel=1e-6)  # warmup to the peak
    assert lrs[-1] < max(lrs)  # then decay
    assert scalars["val/accuracy"] == [(result.cost.train_steps, pytest.approx(result.metric, rel=1e-6))]
    assert hparams["train.learning_rate"] == pytest.approx(1e-3) and hparams["train.mode"] == "full"
    assert hparams["data.ops"] == "subsample" and hparams["data.0.subsample.n"] == 160


def test_the_test_score_lands_beside_the_curves(trained) -> None:  # type: ignore[no-untyped-def]
    result, logdir, ctx = trained
    scored = score_test(PLAN, ctx, result.checkpoint, adapter=False)
    scalars, _ = read_events(logdir)
    assert scalars["test/accuracy"] == [(0, pytest.approx(scored["test_metric"], rel=1e-6))]
    assert scalars["val/accuracy"][0][1] == pytest.approx(result.metric, rel=1e-6)  # not wiped by the test's


def test_writers_in_the_same_second_keep_each_others_records(tmp_path: Path) -> None:
    # tensorboardX names a file by the second and the host and opens it "wb": without a suffix of its
    # own, a second writer in the same second truncated the first one's file (the val score, lost in CI).
    for value in range(5):
        writer = tb_writer(tmp_path)
        writer.add_scalar("x", float(value), value)
        writer.close()
    scalars, _ = read_events(tmp_path)
    assert sorted(scalars["x"]) == [(v, float(v)) for v in range(5)]


def test_no_tensorboard_dir_writes_nothing(tmp_path: Path) -> None:
    ctx = RunContext(task=TASK, node_id="n0", work_dir=tmp_path / "n0", cache_dir=tmp_path / "cache",
                     launcher=InProcessLauncher())
    assert run_plan(Plan(data=PLAN.data, train=TrainRecipe(mode="none")), ctx).ok
    assert not list(tmp_path.rglob("events.out.tfevents.*"))


def _client(uri: str):  # type: ignore[no-untyped-def]
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def test_mlflow_one_parent_run_and_a_nested_run_per_node(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result, _, _ = trained
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"  # MLflow 3 refuses a file store unless told to
    tracker = MlflowTracker(uri, "sentiment", run_id="run-1", task=TASK.model_dump(mode="json"))
    tracker.node_ended("n0", None, make_plan(mode="none"), finished(0.31), "accuracy")
    tracker.node_ended("n1", "n0", PLAN, result, "accuracy")
    tracker.node_tested("n1", "accuracy", {"test_metric": 0.55})
    tracker.finish({"metric_name": "accuracy", "base_metric": 0.31, "best": {"node_id": "n1",
                    "val_metric": result.metric, "test_metric": 0.55}, "compute_seconds": 12.0})
    client = _client(uri)
    exp = client.get_experiment_by_name("sentiment")
    runs = client.search_runs([exp.experiment_id])
    parent = next(r for r in runs if r.data.tags.get("trex.kind") == "search")
    nodes = {r.data.tags["trex.node_id"]: r for r in runs if r.data.tags.get("trex.kind") == "node"}
    assert set(nodes) == {"n0", "n1"} and parent.info.run_name == "run-1"
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in nodes.values())
    n1 = nodes["n1"]
    assert n1.data.params == {k: str(v) for k, v in flat_plan(PLAN).items()}
    assert n1.data.metrics["val_accuracy"] == pytest.approx(result.metric)
    assert n1.data.metrics["test_accuracy"] == 0.55 and n1.info.status == "FINISHED"
    history = client.get_metric_history(n1.info.run_id, "train_loss")
    assert [m.step for m in history] == [p.step for p in result.curve]
    assert parent.data.metrics["best_test_accuracy"] == 0.55 and parent.data.tags["trex.best_node"] == "n1"
    assert parent.data.params["model"] == TASK.model.id and parent.info.status == "FINISHED"
    again = MlflowTracker(uri, "sentiment", run_id="run-1")  # a resumed run: same parent, nothing twice
    again.node_ended("n1", "n0", PLAN, result, "accuracy")
    assert again.parent == parent.info.run_id and len(client.search_runs([exp.experiment_id])) == 3


def test_tracking_settings_are_checked_and_paths_made_absolute(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert make_task(["tracking.mlflow=mlruns"]).tracking.mlflow == f"file:{tmp_path / 'mlruns'}"
    assert make_task(["tracking.mlflow=runs/mlflow.db"]).tracking.mlflow == f"sqlite:///{tmp_path}/runs/mlflow.db"
    assert make_task(["tracking.mlflow=sqlite:///m.db"]).tracking.mlflow == f"sqlite:///{tmp_path / 'm.db'}"
    assert make_task(["tracking.mlflow=http://127.0.0.1:5000"]).tracking.mlflow == "http://127.0.0.1:5000"
    assert make_task().tracking.tensorboard is True and make_task().tracking.mlflow is None
    with pytest.raises(SpecError, match="tracking.mlflow"):
        make_task(["tracking.mlflow=http://user:pw@host:5000"])
    with pytest.raises(SpecError, match="tracking.tensorboard"):
        make_task(["tracking.tensorboard=maybe"])
