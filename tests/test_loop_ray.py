"""The whole loop on a real embedded Ray cluster: Researcher actor, NodeRunners, DeepSpeed trials.

It starts Ray and trains tiny models, so it takes minutes; it shares the session's prepared cache.
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

from trex_ray.store import Store
from trex_ray.tree import SearchTree

pytestmark = [pytest.mark.ray, pytest.mark.slow]

TREX = [sys.executable, "-m", "trex_ray.cli"]
# A smaller sentiment run: fewer examples, so each trial takes seconds; evaluation by HF (vLLM runs in
# test_eval_backends / test_evaluator_ray).
FAST = ["data.train.0.limit=600", "data.eval.limit=150", "eval.backend=hf"]


def _env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["TREX_CACHE_DIR"] = str(cache)
    env.pop("RAY_ADDRESS", None)
    return env


def _finished(run_dir: Path) -> dict[str, float | None]:
    """Every completed node (finished, pruned, stopped early or failed) and its metric."""
    tree = Store(run_dir).replay()
    return {n.id: n.metric for n in tree if n.result is not None}


def _count_finished_events(run_dir: Path) -> int:
    journal = run_dir / "journal.jsonl"
    if not journal.exists():
        return 0
    return sum('"kind":"node_finished"' in line for line in journal.read_text().splitlines())


def _peak_trials(tree: SearchTree) -> int:
    """The most trained nodes (not the base model) that ran at the same moment."""
    edges = sorted((t, step) for n in tree if n.parent is not None and n.started_at and n.finished_at
                   for t, step in ((n.started_at, 1), (n.finished_at, -1)))
    return max(accumulate(step for _, step in edges), default=0)


def _report(run_dir: Path, env: dict[str, str]) -> dict:
    report = subprocess.run([*TREX, "report", str(run_dir), "--format", "json"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr[-3000:]
    return json.loads(report.stdout.strip().splitlines()[-1])


def test_logical_gpu_run_sigkilled_mid_run_resumes_losing_nothing_and_reports_json(
        tmp_path: Path, shared_cache: Path) -> None:
    """One run, three points (one run instead of two: each costs a cluster start and its trials).

    * Trials ask for a logical GPU each: two fit on a 2-GPU cluster at once, gloo carries them.
    * SIGKILL of the driver and its local cluster mid-run, then ``trex resume``: no completed node
      (finished, pruned, stopped early or failed) is lost or changed, and the run completes.
    * ``trex report --format json`` of the resumed run has every field the explorer reads.
    """
    run_dir = tmp_path / "run"
    cmd = [*TREX, "run", "sentiment", "--run-dir", str(run_dir), "--max-nodes", "3", "--quiet", *FAST,
           "resources.gpus_per_worker=1", "resources.dist_backend=gloo"]
    env = _env(shared_cache) | {"TREX_LOCAL_NUM_GPUS": "2"}
    proc = subprocess.Popen(cmd, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while _count_finished_events(run_dir) < 3 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.5)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the local cluster it started
    proc.wait()
    before = _finished(run_dir)
    assert len(before) >= 3

    out = subprocess.run([*TREX, "resume", str(run_dir), "--quiet"], env=env,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "run lives in" in out.stdout
    after = _finished(run_dir)
    for node_id, metric in before.items():
        assert node_id in after and after[node_id] == metric, f"{node_id} changed or vanished on resume"
    tree = Store(run_dir).replay()
    assert counted(tree) == 4 and all(n.status.done for n in tree)
    assert tree.finished_reason is not None

    data = _report(run_dir, env)
    assert data["metric_name"] == "accuracy" and data["higher_is_better"] is True
    assert data["base_metric"] is not None
    assert len(data["nodes"]) == len(tree)
    for node in data["nodes"]:
        assert {"id", "parent", "status", "metric", "plan_hash", "eval_backend"} <= set(node)
    # two trained trials at once, each holding one of the two logical GPUs (the base model's
    # evaluation takes no trial slot, so it does not count here)
    assert _peak_trials(tree) >= 2
    assert data["peak_concurrency"] >= 2
    # the search selects on validation (rows of the generated train split, ~20 % of their labels
    # flipped): the random tiny model's nodes need not beat the base there
    assert data["best"]["val_metric"] >= data["base_metric"]
    assert data["model"] == "builtin:tiny-llama" and data["base_test_metric"] is not None
    assert data["best"]["test_metric"] is not None  # the best on validation, scored on the test split
