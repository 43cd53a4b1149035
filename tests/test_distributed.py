"""Multi-node placement and fault tolerance on `ray.cluster_utils.Cluster` (logical GPUs, gloo).

The test process is the driver (`runtime.driver.run`), on a head that offers no CPU or GPU, so
every trial runs on worker nodes; the Researcher and NodeRunner actors hold no resources. The two tests
share one cluster (its start costs as much as a trial): the placement run first, then the run that loses
a worker machine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ray_cluster import local_cluster

from trex_ray.ftbench import builtin_task
from trex_ray.spec import TaskSpec, load_task
from trex_ray.store import read_tree
from trex_ray.tree import NodeStatus

ray = pytest.importorskip("ray")

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.system]  # `make test-system`

# Seconds a trial; evaluation by HF (vLLM runs in test_eval_backends / test_evaluator_ray).
FAST = ["data.train.0.limit=400", "data.eval.limit=100", "eval.backend=hf",
        "search.early_stopping=false"]  # about placement: a stopped trial would only add a node


# 4 logical GPUs on 3 worker machines (2+1+1); the head offers nothing
WORKERS = [{"num_cpus": 2, "num_gpus": 2}, {"num_cpus": 2, "num_gpus": 1}, {"num_cpus": 2, "num_gpus": 1}]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with local_cluster(head={}, workers=WORKERS) as started:
        yield started


def sentiment(*overrides: str) -> TaskSpec:
    return load_task(builtin_task("sentiment").model_dump(mode="json"), [*FAST, *overrides])


class PlacementLog:
    """Samples the placement groups of GPU trials while a run goes (Ray's own table)."""

    def __init__(self) -> None:
        self.groups: dict[str, dict[str, Any]] = {}
        self.gpus_in_use: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> PlacementLog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                table = ray.util.placement_group_table()
            except Exception:  # the cluster going down at the end
                return
            in_use = 0.0
            for pg_id, pg in table.items():
                gpus = sum(b.get("GPU", 0) for b in pg["bundles"].values())
                if not gpus:
                    continue
                if pg["state"] == "CREATED":
                    in_use += gpus
                    self.groups[pg_id] = {"nodes": set(pg["bundles_to_node_id"].values()), "gpus": gpus,
                                          "strategy": pg["strategy"]}
            self.gpus_in_use.append(in_use)
            time.sleep(0.5)

    @property
    def peak_gpus(self) -> float:
        return max(self.gpus_in_use, default=0.0)


def run_in_thread(task: TaskSpec, run_dir: Path) -> tuple[threading.Thread, dict[str, Any]]:
    from trex_ray.runtime.driver import run

    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["tree"], _ = run(task, run_dir, live=False)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            out["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, out


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_two_worker_trials_pack_or_span_nodes_and_the_driver_holds_no_gpu(
        cluster: Any, tmp_path: Path, shared_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """4 logical GPUs on 3 nodes (2+1+1); each trial: 2 workers x (1 GPU, 1 CPU), gloo.

    Two trials fit at once only if nothing else holds a GPU; Ray's PACK puts one trial on the
    2-GPU node and spans the other over the two 1-GPU nodes.
    """
    monkeypatch.setenv("TREX_CACHE_DIR", str(shared_cache))
    task = sentiment("budget.max_nodes=2", "resources.num_workers=2", "resources.gpus_per_worker=1",
                     "resources.cpus_per_worker=1", "resources.dist_backend=gloo")
    with PlacementLog() as placements:
        from trex_ray.runtime.researcher_actor import trial_slots

        assert trial_slots(task.resources) == 2
        thread, out = run_in_thread(task, tmp_path / "run")
        thread.join(timeout=1200)
        assert not thread.is_alive() and "error" not in out, out.get("error")
        nodes = {n["NodeID"]: n for n in ray.nodes() if n["Alive"]}
    tree = read_tree(tmp_path / "run")
    trained = [n for n in tree if n.parent is not None]
    assert len(trained) == 2 and all(n.status.done for n in tree), [(n.id, n.status) for n in tree]
    assert any(n.status in (NodeStatus.finished, NodeStatus.pruned) for n in trained)
    assert len(placements.groups) >= 2, placements.groups  # one placement group per trained trial
    for group in placements.groups.values():
        assert group["gpus"] == 2 and group["strategy"] == "PACK"
        assert all(nodes[n]["Resources"].get("GPU", 0) >= 1 for n in group["nodes"])  # never the head
    assert placements.peak_gpus == 4, placements.gpus_in_use  # two trials at once: all GPUs are trials'
    layouts = sorted(len(g["nodes"]) for g in placements.groups.values())
    assert layouts[0] == 1 and layouts[-1] == 2, layouts  # one packed on the 2-GPU node, one spanning two
    assert tree.peak_concurrency() >= 2


def _running_trial_node() -> str | None:
    """The Ray node id holding a CREATED GPU placement group (the trial training now), if any."""
    for pg in ray.util.placement_group_table().values():
        if pg["state"] == "CREATED" and any(b.get("GPU") for b in pg["bundles"].values()):
            return next(iter(pg["bundles_to_node_id"].values()))
    return None


def _training(run_dir: Path) -> bool:
    """A trained node is running and has reported validation loss: mid-training."""
    if not (run_dir / "journal.jsonl").is_file():
        return False
    running = [n for n in read_tree(run_dir) if n.status is NodeStatus.running and n.parent is not None]
    return any(n.progress for n in running)


def test_a_worker_node_removed_mid_trial_reruns_the_trial_elsewhere(
        cluster: Any, tmp_path: Path, shared_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TREX_CACHE_DIR", str(shared_cache))
    task = sentiment("budget.max_nodes=1", "resources.gpus_per_worker=1", "resources.dist_backend=gloo",
                     "resources.max_concurrent_trials=1")
    run_dir = tmp_path / "run"
    # on the module's cluster (2+1+1 GPUs): the trial's machine goes, two are left
    thread, out = run_in_thread(task, run_dir)
    # mid-training: the trial holds its GPU and has reported its first validation loss
    wait_until(lambda: _training(run_dir), 900, "a trial to report progress")
    victim_id = _running_trial_node()
    # the trial that trains (the base model's evaluation takes no trial slot and may run beside it)
    running = [n.id for n in read_tree(run_dir)
               if n.status is NodeStatus.running and n.parent is not None]
    victim = next(n for n in cluster.worker_nodes if n.node_id == victim_id)
    cluster.remove_node(victim, allow_graceful=False)  # a crash, not a drain
    thread.join(timeout=1200)
    assert not thread.is_alive() and "error" not in out, out.get("error")
    survivors = {n.node_id for n in cluster.worker_nodes}
    tree = read_tree(run_dir)
    assert all(n.status.done for n in tree) and tree.finished_reason is not None
    [hit] = running
    node = tree.get(hit)
    assert [a["failure"] for a in node.failed_attempts] == ["lost"], node.failed_attempts
    assert node.attempts == 2 and node.result is not None and node.result.failure is None, node.result
    assert victim_id not in survivors and len(survivors) == 2
    assert tree.get("n0").visits == len([n for n in tree if n.result is not None])  # no double backup
