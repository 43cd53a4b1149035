"""runtime/trial.py and runtime/faults.py without a cluster: failure kinds, shipping, test faults."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

pytest.importorskip("ray")

from ray.exceptions import ActorDiedError  # noqa: E402
from ray.train.v2._internal.exceptions import WorkerHealthCheckFailedError  # noqa: E402
from ray.train.v2.api.exceptions import WorkerGroupError  # noqa: E402

from trex_ray.runtime import faults  # noqa: E402
from trex_ray.runtime.train_launcher import TrainingError  # noqa: E402
from trex_ray.runtime.trial import Shipping, TrialLauncher, lost_reason, parent_local  # noqa: E402
from trex_ray.spec import Cost, FailureKind, Outcome, Result  # noqa: E402


def wrapped(failures: dict[int, Exception]) -> TrainingError:
    """As RayTrainLauncher raises it: a TrainingError from Ray Train's WorkerGroupError."""
    try:
        raise TrainingError("training failed") from WorkerGroupError("boom", failures)
    except TrainingError as exc:
        return exc


def test_a_dead_worker_is_lost_and_a_raised_error_is_not() -> None:
    dead = WorkerHealthCheckFailedError("worker 1 died", ActorDiedError())
    assert lost_reason(wrapped({0: RuntimeError("gloo: connection reset"), 1: dead})) is not None
    assert "worker 1" in (lost_reason(wrapped({1: dead, 0: RuntimeError("x")})) or "")
    assert lost_reason(wrapped({0: ValueError("bad batch size")})) is None
    assert lost_reason(ActorDiedError()) == "a training worker died"
    assert lost_reason(RuntimeError("plain")) is None


class Failing:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def launch(self, loop, config):  # noqa: ANN001, ANN201
        raise self.exc


def test_the_launcher_says_why_a_launch_was_lost_and_finalize_leaves_the_failure_alone() -> None:
    error = Result(outcome=Outcome.failed, failure=FailureKind.error, error="TrainingError: x", cost=Cost())
    dead = wrapped({0: WorkerHealthCheckFailedError("died", ActorDiedError())})
    launcher = TrialLauncher(Failing(dead), "n1")
    with pytest.raises(TrainingError):
        launcher.launch(lambda c: c, {})
    assert launcher.lost == "training worker 0 was lost (its process or machine died)"
    assert launcher.finalize(error) == error  # the kind is the trial loop's to decide (test_orchestrator)
    code = TrialLauncher(Failing(wrapped({0: ValueError("bad")})), "n2")
    with pytest.raises(TrainingError):
        code.launch(lambda c: c, {})
    assert code.lost is None and code.finalize(error).failure is FailureKind.error


def test_shipping_maps_cache_entries_and_the_parent(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    ship = Shipping(cache_dir=str(cache), remote_cache="s3://b/trex/cache", checkpoint_uri="s3://b/trex/r/nodes/n2/c",
                    extra={str(cache / "checkpoints" / "abc"): "s3://b/trex/r/nodes/n1/checkpoint"})
    assert ship.remote_for(str(cache / "data" / "f00d")) == "s3://b/trex/cache/data/f00d"
    assert ship.remote_for(str(cache / "checkpoints" / "abc")) == "s3://b/trex/r/nodes/n1/checkpoint"
    assert ship.remote_for("/models/local-llama") is None  # outside the cache: on every machine already
    here = parent_local(str(cache), "s3://b/x")
    assert here == parent_local(str(cache), "s3://b/x") != parent_local(str(cache), "s3://b/y")


def test_fault_plans_are_inert_unless_set() -> None:
    assert faults.planned("n1", 1, env={}) is None
    env = {faults.ENV: "n1=raise, n3=hang@1, n4=nan@2-3"}
    assert faults.planned("n1", 5, env) == "raise"
    assert faults.planned("n3", 1, env) == "hang" and faults.planned("n3", 2, env) is None
    assert [faults.planned("n4", a, env) for a in (1, 2, 3, 4)] == [None, "nan", "nan", None]
    assert faults.planned("n2", 1, env) is None
    with pytest.raises(ValueError, match="n2=crash"):
        faults.parse("n2=crash")
    with pytest.raises(RuntimeError, match="injected fault"):
        faults.inject("raise", "n1", {})


def test_the_nan_fault_makes_a_model_whose_loss_is_nan(tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from trex_ray.execute.models import materialize_base_model
    from trex_ray.spec import ModelSpec

    base = materialize_base_model(ModelSpec(id="builtin:tiny-llama"), tmp_path / "cache")
    config = faults.inject("nan", "n2", {"base_dir": str(base)})
    assert config["base_dir"] != str(base)
    model = AutoModelForCausalLM.from_pretrained(config["base_dir"])
    ids = torch.tensor([[1, 2, 3, 4]])
    assert math.isnan(float(model(input_ids=ids, labels=ids).loss.detach()))
