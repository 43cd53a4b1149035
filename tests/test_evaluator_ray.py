"""The run's Evaluator actor on a real embedded Ray cluster (a whole run evaluated by vLLM: test_jobs.py)."""

from __future__ import annotations

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


# A whole run evaluated by vLLM, base and trained node: tests/test_jobs.py (under `ray job submit`).
