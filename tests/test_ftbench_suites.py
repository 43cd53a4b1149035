"""FT-Bench registry: the ten real specs validate, the analogs mirror them, offline is one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from trex_ray.ftbench import suites
from trex_ray.ftbench.cli import resolve, task_lines
from trex_ray.ftbench.suites import (
    BENCH,
    BenchUnavailable,
    list_suite_tasks,
    mini_task,
    preflight,
    real_task,
    suite_task,
    suite_tasks,
)
from trex_ray.spec import MetricName, SpecError, TaskSpec, load_task

TEN = ["aci", "tomg", "omebench", "hoc", "sst2", "csbench", "openfindata", "econlogicqa", "gta", "lawbench"]
METRICS = {
    "aci": MetricName.rouge1,
    "tomg": MetricName.tomg_score,
    "omebench": MetricName.ome_score,
    "hoc": MetricName.macro_f1,
    "sst2": MetricName.accuracy,
    "csbench": MetricName.mc_accuracy,
    "openfindata": MetricName.mc_accuracy,
    "econlogicqa": MetricName.mc_accuracy,
    "gta": MetricName.tool_call_accuracy,
    "lawbench": MetricName.lawbench_score,
}


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_both_suites_hold_the_ten_tasks_in_order() -> None:
    assert suite_tasks("ftbench") == TEN == suite_tasks("ftbench-mini")
    assert [ref for ref, _ in list_suite_tasks("ftbench-mini")] == [f"ftbench-mini/{t}" for t in TEN]
    with pytest.raises(ValueError, match="suite"):
        suite_tasks("glue")


@pytest.mark.parametrize("name", TEN)
def test_real_spec_validates_and_round_trips(name: str, tmp_path: Path) -> None:
    task = real_task(name)
    assert task.model.id == "Qwen/Qwen3-1.7B" and task.model.kind == "hub"
    assert task.metric.name is METRICS[name]
    sources = [s for s in [*task.data.train, task.data.eval] if s is not None]
    assert sources and all(src.kind in ("hub", "url") for src in sources)
    assert task.description == suites.bench_task(name).instruction  # the chat system message
    assert task.resources.gpus_per_worker == 1
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(task.model_dump(mode="json"), allow_unicode=True))
    again = load_task(path)
    assert isinstance(again, TaskSpec) and again == task


@pytest.mark.parametrize("name", TEN)
def test_analog_mirrors_its_real_task(name: str) -> None:
    real, mini = real_task(name), mini_task(name)
    assert mini.metric == real.metric
    assert mini.model.id == "builtin:tiny-llama"
    assert mini.data.train[0].id == f"builtin:ftbench-mini/{name}" and mini.data.eval.split == "eval"
    assert mini.name == f"{name}-mini" and 1 <= mini.max_new_tokens <= 12
    assert suite_task(f"ftbench-mini/{name}") == mini and suite_task(f"ftbench/{name}") == real


def test_every_bench_task_has_an_instruction_sources_and_trex_score() -> None:
    for t in BENCH:
        assert t.instruction and t.analog == f"ftbench-mini/{t.name}"
        assert all(s.id.startswith("https://") or s.id.count("/") == 1 for s in t.sources)
        assert t.trex is not None and 0 < t.trex < 1  # TREX's published score, as a fraction


def test_real_task_takes_any_model() -> None:
    assert real_task("gta", model="./my-model").model.id == "./my-model"


def test_offline_real_task_fails_in_one_line_naming_the_analog(offline: None) -> None:
    with pytest.raises(BenchUnavailable) as err:
        preflight(real_task("hoc"), "ftbench-mini/hoc")
    message = str(err.value)
    assert "\n" not in message
    assert (
        "bigbio/hallmarks_of_cancer" in message and "offline" in message and "`ftbench-mini/hoc`" in message
    )
    with pytest.raises(SpecError, match="ftbench-mini/gta"):
        resolve("ftbench/gta", [])


def test_unreachable_reason_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_a: object, **_k: object) -> None:
        raise ConnectionError("Name or service not known")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr("huggingface_hub.HfApi.repo_info", boom)
    assert suites._unreachable("a/b", "dataset", 1.0) == "offline"


def test_analog_resolves_with_overrides_and_unknown_refs_fail() -> None:
    task = resolve("ftbench-mini/sst2", ["budget.max_nodes=3"])
    assert task.budget.max_nodes == 3 and task.metric.name is MetricName.accuracy
    with pytest.raises(SpecError, match="unknown"):
        resolve("ftbench-mini/poetry", [])


def test_task_lines_list_both_suites() -> None:
    text = "\n".join(task_lines())
    assert "suite ftbench:" in text and "suite ftbench-mini:" in text
    assert "ftbench/lawbench" in text and "ftbench-mini/gta" in text


def test_cli_run_of_a_real_task_offline_is_one_line(tmp_path: object) -> None:
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-m", "trex_ray.cli", "run", "ftbench/hoc"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert (
        len(lines) == 1 and "ftbench-mini/hoc" in lines[0] and lines[0].startswith("trex: error: hub dataset")
    )


def test_cli_tasks_lists_builtins_and_suites() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "trex_ray.cli", "tasks"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0
    for word in ("tweet_sentiment", "sotu_party", "builtin:smollm2-135m", "sentiment", "reverse", "headline",
                 "ftbench/aci", "ftbench-mini/aci"):
        assert word in out.stdout
