"""RayTrainLauncher: the training loop inside Ray Train's TorchTrainer (1 worker, CPU, gloo).

Every trex run on Ray trains through it (tests/test_loop_ray.py, test_faults_ray.py, ...); here, what a
run does not show: an error's message, the runtime environment, a worker killed mid-trial."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")

from trex_ray.execute.context import RunContext  # noqa: E402
from trex_ray.execute.run_plan import run_plan  # noqa: E402
from trex_ray.ftbench.registry import builtin_task  # noqa: E402
from trex_ray.runtime.train_launcher import RayTrainLauncher, TrainingError  # noqa: E402
from trex_ray.spec import DataOp, DataRecipe, Outcome, Plan, TrainRecipe  # noqa: E402

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    from trex_ray.runtime.env import driver_runtime_env

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env=driver_runtime_env())
    yield
    ray.shutdown()


def test_an_error_in_the_loop_comes_back_clearly_from_trex_runtime_env(ray_cluster: None,
                                                                      tmp_path: Path) -> None:
    """One launch (each costs a Ray Train start): the loop's error comes back as one line, and the loop ran
    in cluster/runtime_env.yaml's environment (0.25 s controller polls: ~4 s less a trial; no NVLS)."""
    def failing_loop(config: dict[str, Any]) -> dict[str, Any]:  # nested: pickled by value for the worker
        import os

        keys = ("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "NCCL_NVLS_ENABLE")
        env = " ".join(f"{k}={os.environ.get(k)}" for k in keys)
        raise ValueError(f"bad batch size {config['batch_size']} ({env})")

    launcher = RayTrainLauncher(num_workers=1, cpus_per_worker=1, storage_path=tmp_path / "ray", name="bad")
    with pytest.raises(TrainingError, match=r"worker 0: ValueError: bad batch size 7 ") as err:
        launcher.launch(failing_loop, {"batch_size": 7})
    assert "\n" not in str(err.value)
    assert "(RAY_TRAIN_HEALTH_CHECK_INTERVAL_S=0.25 NCCL_NVLS_ENABLE=0)" in str(err.value)


def test_a_killed_worker_goes_on_from_its_last_checkpoint(ray_cluster: None, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Checkpoints every 5 steps, one restart allowed; the worker dies at its report of step 19 (3/4 of
    25): Ray Train restarts it, it resumes from its last registered checkpoint (step 15, or 10 when the
    controller had not yet registered 15), and the steps up to that checkpoint are trained once only."""
    from collections import Counter

    from tb_events import read_events

    from trex_ray.runtime.trial import TrialLauncher

    monkeypatch.setenv("TREX_TEST_FAULTS", "n1=kill@1")
    inner = RayTrainLauncher(num_workers=1, cpus_per_worker=1, storage_path=tmp_path / "ray", name="n1",
                             checkpoint_every=5, max_failures=1, keep_files=False)
    launcher = TrialLauncher(inner, node_id="n1", attempt=1)
    plan = Plan(data=DataRecipe(ops=[DataOp(op="subsample", params={"n": 200})]),
                train=TrainRecipe(mode="full", epochs=1, batch_size=8, learning_rate=1e-3))
    ctx = RunContext(task=builtin_task("sentiment"), node_id="n1", work_dir=tmp_path / "n1",
                     cache_dir=tmp_path / "cache", launcher=launcher, tensorboard_dir=tmp_path / "tb")
    result = launcher.finalize(run_plan(plan, ctx))
    assert result.outcome is Outcome.finished, result.error
    assert result.cost.train_steps == 25 and result.metric is not None
    # From the last checkpoint Ray Train's controller had registered when the worker died: step 15,
    # or step 10 when the controller had not yet polled the worker's report of step 15 (a busy machine).
    resumed = result.provenance["resumed_from_step"]
    assert resumed in (10, 15) and result.provenance["steps_redone"] == 19 - resumed
    assert [p.step for p in result.curve] == [6, 12, 19, 25]  # the reports before the kill came back
    trained = Counter(step for step, _ in read_events(tmp_path / "tb")[0]["train/loss"])
    assert sorted(trained) == list(range(1, 26))
    before, after = range(1, resumed + 1), range(resumed + 1, 20)
    assert {s: trained[s] for s in before} == dict.fromkeys(before, 1)  # up to the checkpoint: not redone
    assert {s: trained[s] for s in after} == dict.fromkeys(after, 2)  # after it, up to the kill: redone
    assert not list((tmp_path / "ray").iterdir())  # its Ray Train folder went once it succeeded
