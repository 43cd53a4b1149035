"""A run stored in S3 (moto on 127.0.0.1): it completes after a SIGKILL and a resume from a fresh machine.

The journal (one object per event), the snapshot, the node checkpoints and the prepared-data cache
all go to the bucket; the resume starts with an empty local cache and scratch folder, so whatever
it needs comes from the bucket, as it would on another machine of the cluster.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from factories import counted
from s3_local import LocalS3, local_s3

from trex_ray.store import Store, read_tree
from trex_ray.tree import EventKind, NodeStatus

pytestmark = [pytest.mark.ray, pytest.mark.slow]

TREX = [sys.executable, "-m", "trex_ray.cli"]
# Seconds a trial; evaluation by HF (vLLM runs in test_eval_backends / test_evaluator_ray).
FAST = ["data.train.0.limit=400", "data.eval.limit=100", "eval.backend=hf"]


def _env(s3: LocalS3, machine: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "TREX_TEST_FAULTS")}
    return env | s3.env | {"TREX_CACHE_DIR": str(machine / "cache"), "TREX_SCRATCH": str(machine / "scratch")}


def _finished_events(uri: str) -> int:
    store = Store(uri, readonly=True)
    return sum(e.kind is EventKind.node_finished for e in store.events()) if store.backend.exists() else 0


def _done(uri: str) -> dict[str, float | None]:
    return {n.id: n.metric for n in read_tree(uri) if n.status in (NodeStatus.finished, NodeStatus.pruned)}


def test_a_run_stored_in_s3_completes_after_a_kill_and_a_resume_elsewhere(tmp_path: Path) -> None:
    with local_s3() as s3:
        bucket = s3.new_bucket()
        uri = f"s3://{bucket}/trex/r1"
        first, second = tmp_path / "machine-a", tmp_path / "machine-b"
        # no early stopping: every trained node must finish and store its checkpoint in the bucket
        cmd = [*TREX, "run", "sentiment", "--run-dir", uri, "--max-nodes", "2", "--quiet", *FAST,
               f"storage_path=s3://{bucket}/trex", "search.early_stopping=false"]
        proc = subprocess.Popen(cmd, env=_env(s3, first), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
        deadline = time.time() + 900
        while _finished_events(uri) < 2 and proc.poll() is None and time.time() < deadline:
            time.sleep(1)
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()[-3000:]}"
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its local cluster
        proc.wait()
        before = _done(uri)
        assert len(before) >= 1

        out = subprocess.run([*TREX, "resume", uri, "--quiet"], env=_env(s3, second), capture_output=True,
                             text=True, timeout=1200)
        assert out.returncode == 0, out.stderr[-3000:]
        assert f"run lives in {uri}" in out.stdout
        tree = read_tree(uri)
        for node_id, metric in before.items():
            assert _done(uri).get(node_id, "lost") == metric, f"{node_id} changed or vanished on resume"
        assert all(n.status.done for n in tree) and tree.finished_reason is not None and counted(tree) == 3

        keys = s3.keys(bucket, "trex/")
        events = [k for k in keys if k.startswith("trex/r1/events/")]
        assert len(events) == tree.last_seq + 1 and "trex/r1/snapshot.json" in keys
        trained = [n for n in tree if n.result is not None and n.result.checkpoint]
        assert trained, [(n.id, n.status.value, n.result and n.result.error, n.attempts,
                          [(round(p.fraction, 2), p.val_loss) for p in n.progress]) for n in tree]
        for node in trained:
            assert node.result.checkpoint == f"{uri}/nodes/{node.id}/checkpoint"  # type: ignore[union-attr]
            assert f"trex/r1/nodes/{node.id}/checkpoint/.trex-complete" in keys
            assert any(k.startswith(f"trex/r1/nodes/{node.id}/checkpoint/") and k.endswith(".safetensors")
                       for k in keys)
        assert any(k.startswith("trex/cache/data/") and k.endswith("/.trex-complete") for k in keys)
        assert not list(tmp_path.rglob("journal.jsonl"))  # the journal lives in the bucket only

        report = subprocess.run([*TREX, "report", uri, "--format", "json"], env=_env(s3, second),
                                capture_output=True, text=True, timeout=120)
        assert report.returncode == 0, report.stderr
        assert len(json.loads(report.stdout.strip().splitlines()[-1])["nodes"]) == len(tree)
        status = subprocess.run([*TREX, "status", uri], env=_env(s3, second), capture_output=True, text=True,
                                timeout=120)
        assert status.returncode == 0 and "finished (" in status.stdout
