"""The ten real FT-Bench specs, offline: each one's source, in its real schema (tests/ftbench_fixtures.py),
is converted, trained on for a step by the embedded SmolLM2-135M standing in for Qwen3-1.7B, and
scored with the task's own metric (on validation; two of them on the test split too). In process
(``run_plan``), cheap: four train rows, one LoRA step, short sequences, one thread."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from ftbench_fixtures import write_all

from trex_ray.execute.context import RunContext
from trex_ray.execute.launch import InProcessLauncher
from trex_ray.execute.metrics import score
from trex_ray.execute.run_plan import run_plan, score_test
from trex_ray.execute.sources import DataError
from trex_ray.execute.splits import task_splits
from trex_ray.ftbench.real import BENCH, real_task
from trex_ray.spec import DataSource, Plan, TaskSpec, TrainRecipe, load_task
from trex_ray.spec.task import MetricName

TEN = [t.name for t in BENCH]
# one thread: on a shared 2-core machine a second one mostly spins
SMALL = ["model.max_seq_len=128", "max_new_tokens=6", "resources.cpus_per_worker=1",
         "resources.gpus_per_worker=0"]
TESTED = {"sst2", "gta"}  # also scored on test here; all ten are in test_bench_ftbench_ray
PLAN = Plan(train=TrainRecipe(mode="lora", learning_rate=1e-3, epochs=1, batch_size=4, lora_r=4))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_all(tmp_path_factory.mktemp("ftbench-data"))


@pytest.fixture(scope="module")
def launcher() -> Iterator[InProcessLauncher]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # evaluation too: on a shared 2-core machine a second thread mostly spins
    yield InProcessLauncher()
    torch.set_num_threads(threads)


def _task(name: str, model: Path | str, data_dir: Path) -> TaskSpec:
    return load_task(real_task(name, model=str(model), data_dir=data_dir).model_dump(mode="json"), SMALL)


# --- conversions: no model -------------------------------------------------------------------
EXPECTED = {  # task: (a train input holds, its target)
    "aci": ("a cough for 2 days", "CHIEF COMPLAINT\n\nCough for 2 days."),
    "omebench": ("Reactants: CC=O.CC=O\nProducts: CC(O)CC=O\nConditions: Base", None),
    "hoc": ("Sentence 1 of an abstract", "resisting cell death, activating invasion and metastasis"),
    "sst2": ("dull and tired", "negative"),
    "csbench": ("A stack is first in, first out. (2)", "false"),
    "openfindata": ("(1)\nA. 上升\nB. 下降\nC. 不变", "B"),
    "econlogicqa": ("(1):\nA. Rates rise\nB. Borrowing falls\nC. Investment slows\nD. Growth cools",
                    "A, B, C, D"),
    "gta": ("Tools: Calculator, OCR\nFiles: image/image_1.jpg\nUser: What is 1 plus 2?",
            '{"arguments": {"expression": "1+2"}, "name": "Calculator"}'),
    "lawbench": ("请根据下面的事实给出刑期。\n事实:被告人盗窃财物价值5000元。", "刑期:6个月"),
    "tomg": ("3 carbon atoms", "CCC"),
}


@pytest.mark.parametrize("name", TEN)
def test_source_in_its_real_schema_converts_to_input_and_target(name: str, data_dir: Path) -> None:
    splits = task_splits(_task(name, "builtin:smollm2-135m", data_dir))
    rows = [*splits.pool, *splits.val]
    part, target = EXPECTED[name]
    hits = [r for r in rows if part in r["input"]]
    assert hits, [r["input"] for r in rows]
    if target is not None:
        assert hits[0]["target"] == target
    assert len(splits.test) >= 1 and all(r["target"].strip() for r in [*rows, *splits.test])


def test_conversions_keep_what_the_benchmark_scores(data_dir: Path) -> None:
    csbench = task_splits(_task("csbench", "x", data_dir))
    inputs = [r["input"] for r in [*csbench.pool, *csbench.val, *csbench.test]]
    assert not any("___" in x for x in inputs)  # fill-in-the-blank items (judge-scored) are left out
    assert len(csbench.test) == 2  # JSON lines under a .json name, as CS-Bench ships its test file
    ome = task_splits(_task("omebench", "x", data_dir)).test[0]["target"]
    assert score(MetricName.ome_score, [ome], [ome]) == 1.0 and '"step_weight": 0.6' in ome


def test_a_source_not_in_the_schema_fails_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "gta.json"
    bad.write_text('{"0": {"tools": [], "turns": []}}')
    with pytest.raises(DataError) as err:
        from trex_ray.execute.sources import load_source

        load_source(DataSource(id=str(bad), convert="gta"), where="data.train[0]")
    assert "no column 'dialogs'" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(DataError, match="data.train\\[0\\].convert: conversion 'nope' is unknown"):
        from trex_ray.execute.sources import load_source

        load_source(DataSource(id=str(bad), convert="nope"), where="data.train[0]")


def test_data_dir_without_a_task_folder_names_the_file_to_put_there(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no .*gta/train"):
        real_task("gta", data_dir=tmp_path)


# --- end to end: the embedded real model stands in for the base -------------------------------
@pytest.mark.parametrize("name", TEN)
def test_real_spec_runs_end_to_end_on_its_fixture(name: str, data_dir: Path, real_model_dir: Path,
                                                  launcher: InProcessLauncher, tmp_path: Path) -> None:
    task = _task(name, real_model_dir, data_dir)
    ctx = RunContext(task=task, node_id="n1", work_dir=tmp_path / "n1", cache_dir=tmp_path / "cache",
                     launcher=launcher)
    result = run_plan(PLAN, ctx)
    assert result.ok, result.error
    assert result.cost.train_steps == 1 and result.metric is not None
    preds = [s["prediction"] for s in result.samples]
    refs = [s["target"] for s in result.samples]
    assert result.metric == pytest.approx(score(task.metric.name, preds, refs))  # the task's own metric
    if name in TESTED:  # a label task and a generation task: the test split converts and scores too
        tested = score_test(PLAN, ctx, result.checkpoint, adapter=True)
        assert tested["rows"] >= 1 and 0.0 <= tested["test_metric"] <= 1.0
