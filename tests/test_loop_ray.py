"""The whole loop on a real embedded Ray cluster: Researcher actor, NodeRunners, DeepSpeed trials, a run
stored in S3 (moto on 127.0.0.1), killed mid-run and resumed from a fresh machine.

One run, several points (each run costs a cluster start and its trials, so they share one):

* trials ask for a logical GPU each: two fit on a 2-GPU cluster at once, gloo carries them;
* SIGKILL of the driver and its local cluster mid-run, then ``trex resume`` on another "machine" (an
  empty local cache and scratch folder, so whatever it needs comes from the bucket): no completed
  node is lost or changed, and the run completes;
* the journal (one object per event), the snapshot, the node checkpoints and the prepared-data cache
  all live in the bucket, nothing local;
* ``trex report --format json`` and ``trex status`` of the resumed run read it from the bucket, with
  every field the explorer reads.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from itertools import accumulate
from pathlib import Path

import pytest
from factories import counted
from s3_local import LocalS3, local_s3

from trex_ray.store import Store, read_tree
from trex_ray.tree import EventKind, NodeStatus, SearchTree

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.system]  # `make test-system`

TREX = [sys.executable, "-m", "trex_ray.cli"]
# Seconds a trial; evaluation by HF (vLLM runs in test_eval_backends / test_jobs); no early stopping:
# every trained node must finish and store its checkpoint in the bucket.
FAST = ["data.train.0.limit=400", "data.eval.limit=100", "eval.backend=hf", "search.early_stopping=false"]


def _env(s3: LocalS3, machine: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "TREX_TEST_FAULTS")}
    return env | s3.env | {"TREX_CACHE_DIR": str(machine / "cache"), "TREX_SCRATCH": str(machine / "scratch"),
                           "TREX_LOCAL_NUM_GPUS": "2"}


def _finished_events(uri: str) -> int:
    store = Store(uri, readonly=True)
    return sum(e.kind is EventKind.node_finished for e in store.events()) if store.backend.exists() else 0


def _completed(uri: str) -> dict[str, float | None]:
    """Every completed node (finished, pruned, stopped early or failed) and its metric."""
    return {n.id: n.metric for n in read_tree(uri) if n.result is not None}


def _peak_trials(tree: SearchTree) -> int:
    """The most trained nodes (not the base model) that ran at the same moment."""
    edges = sorted((t, step) for n in tree if n.parent is not None and n.started_at and n.finished_at
                   for t, step in ((n.started_at, 1), (n.finished_at, -1)))
    return max(accumulate(step for _, step in edges), default=0)


def _cli(args: list[str], env: dict[str, str]) -> str:
    out = subprocess.run([*TREX, *args], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_an_s3_run_on_logical_gpus_killed_mid_run_resumes_elsewhere_losing_nothing(tmp_path: Path) -> None:
    with local_s3() as s3:
        bucket = s3.new_bucket()
        uri = f"s3://{bucket}/trex/r1"
        first, second = _env(s3, tmp_path / "machine-a"), _env(s3, tmp_path / "machine-b")
        cmd = [*TREX, "run", "sentiment", "--run-dir", uri, "--max-nodes", "3", "--quiet", *FAST,
               f"storage_path=s3://{bucket}/trex", "resources.gpus_per_worker=1",
               "resources.dist_backend=gloo"]
        proc = subprocess.Popen(cmd, env=first, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        deadline = time.time() + 900
        while _finished_events(uri) < 3 and proc.poll() is None and time.time() < deadline:
            time.sleep(1)
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()[-3000:]}"
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and the local cluster it started
        proc.wait()
        before = _completed(uri)
        assert len(before) >= 3

        out = subprocess.run([*TREX, "resume", uri, "--quiet"], env=second, capture_output=True, text=True,
                             timeout=1200)
        assert out.returncode == 0, out.stderr[-3000:]
        assert f"run lives in {uri}" in out.stdout
        tree = read_tree(uri)
        after = _completed(uri)
        for node_id, metric in before.items():
            assert after.get(node_id, "lost") == metric, f"{node_id} changed or vanished on resume"
        assert all(n.status.done for n in tree) and tree.finished_reason is not None and counted(tree) == 4

        keys = s3.keys(bucket, "trex/")
        events = [k for k in keys if k.startswith("trex/r1/events/")]
        assert len(events) == tree.last_seq + 1 and "trex/r1/snapshot.json" in keys
        trained = [n for n in tree if n.result is not None and n.result.checkpoint]
        assert trained, [(n.id, n.status.value, n.result and n.result.error, n.attempts) for n in tree]
        for node in trained:
            assert node.result.checkpoint == f"{uri}/nodes/{node.id}/checkpoint"  # type: ignore[union-attr]
            assert f"trex/r1/nodes/{node.id}/checkpoint/.trex-complete" in keys
            assert any(k.startswith(f"trex/r1/nodes/{node.id}/checkpoint/") and k.endswith(".safetensors")
                       for k in keys)
        assert any(k.startswith("trex/cache/data/") and k.endswith("/.trex-complete") for k in keys)
        assert not list(tmp_path.rglob("journal.jsonl"))  # the journal lives in the bucket only

        data = json.loads(_cli(["report", uri, "--format", "json"], second).strip().splitlines()[-1])
        assert "finished (" in _cli(["status", uri], second)
    assert data["metric_name"] == "accuracy" and data["higher_is_better"] is True
    assert len(data["nodes"]) == len(tree)
    for node in data["nodes"]:
        assert {"id", "parent", "status", "metric", "plan_hash", "eval_backend"} <= set(node)
    # two trained trials at once, each holding one of the two logical GPUs (the base model's evaluation
    # takes no trial slot, so it does not count here)
    assert _peak_trials(tree) >= 2 and data["peak_concurrency"] >= 2
    assert all(n.status is not NodeStatus.failed for n in tree), [(n.id, n.result) for n in tree]
    # the search selects on validation (rows of the generated train split, ~20 % of their labels flipped):
    # the random tiny model's nodes need not beat the base there
    assert data["best"]["val_metric"] >= data["base_metric"]
    assert data["model"] == "builtin:tiny-llama" and data["base_test_metric"] is not None
    # the best on validation, scored on the test split: its checkpoint comes back from the bucket
    tested = {n.id: n.test for n in tree if n.test}
    assert data["best"]["test_metric"] is not None, tested
