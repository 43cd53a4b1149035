"""The run's Evaluator actor on a real embedded Ray cluster, and a whole `trex run` evaluated with vLLM."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import ray
from eval_models import make_eval_models

from trex_ray.execute.evaluate import HFBackend
from trex_ray.ftbench.registry import builtin_task
from trex_ray.runtime.evaluator import EvaluatorClient, close_evaluator, evaluator_for, evaluator_name

pytestmark = [pytest.mark.ray, pytest.mark.slow]

TREX = [sys.executable, "-m", "trex_ray.cli"]
PROMPTS = ["the plot was ordinary but the battery was rather dirty .\n=>", "the food was lovely .\n=>"]


@pytest.fixture
def cluster() -> object:
    """Down again before the next test, whose `trex run` starts its own cluster beside it."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, namespace="trex")
    yield None
    ray.shutdown()


def test_one_engine_serves_every_lora_node(cluster: object, shared_cache: Path, tmp_path: Path) -> None:
    models = make_eval_models(shared_cache, tmp_path)
    task = builtin_task("sentiment")
    handle = evaluator_for(task, "run-a", str(shared_cache))
    assert ray.get_actor(evaluator_name("run-a", task), namespace="trex") is not None
    ask = EvaluatorClient(handle, timeout_s=900)
    try:
        for _ in range(3):  # three LoRA nodes, then the base model
            reply = ask({"base": True, "model_dir": models.base, "adapter_dir": models.adapter,
                         "prompts": PROMPTS, "max_new_tokens": 4, "batch_size": 2})
            assert reply["backend"] == "vllm"
            assert reply["completions"] == HFBackend().generate(models.base, models.adapter, PROMPTS, 4, 2)
        base = ask({"base": True, "model_dir": models.base, "adapter_dir": None, "prompts": PROMPTS,
                    "max_new_tokens": 4, "batch_size": 2})
        assert base["backend"] == "vllm" and base["engine_starts"] == 0
        starts = ray.get(handle.stats.remote())["engine_starts"]
        assert [s["kept"] for s in starts] == [True]  # one engine start for the base model, no other
    finally:
        close_evaluator(handle)
    gone = ask({"base": True, "model_dir": models.base, "adapter_dir": None, "prompts": PROMPTS,
                "max_new_tokens": 4, "batch_size": 2})  # the evaluator is dead: the node evaluates itself
    assert gone["backend"] == "hf" and gone["completions"] == base["completions"]


def test_a_run_evaluates_every_node_with_vllm(tmp_path: Path, shared_cache: Path) -> None:
    run_dir = tmp_path / "run"
    env = dict(os.environ, TREX_CACHE_DIR=str(shared_cache))
    env.pop("RAY_ADDRESS", None)
    cmd = [*TREX, "run", "sentiment", "--run-dir", str(run_dir), "--max-nodes", "1", "--quiet",
           "data.train.0.limit=400", "data.eval.limit=100",
           "eval.backend=vllm"]  # by name: on CPUs `auto` evaluates full fine-tunes with HF
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1500)
    assert out.returncode == 0, out.stderr[-3000:]
    report = subprocess.run([*TREX, "report", str(run_dir), "--format", "json"], env=env,
                            capture_output=True, text=True, timeout=120)
    data = json.loads(report.stdout.strip().splitlines()[-1])
    scored = [n for n in data["nodes"] if n["metric"] is not None]
    assert any(n["parent"] is None for n in scored) and any(n["parent"] is not None for n in scored)
    assert {n["eval_backend"] for n in scored} == {"vllm"}
    assert data["eval_backends"] == {"vllm": len(scored)}
