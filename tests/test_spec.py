"""spec: loading tasks from YAML, overrides, one-line errors, plan hashes, result round trips."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from factories import TASK_YAML, diverged, finished, make_plan, stopped, task_dict

from trex_ray.spec import (
    DataOp,
    DataRecipe,
    EvalRecipe,
    MetricName,
    Outcome,
    Plan,
    Result,
    SpecError,
    TaskSpec,
    TrainMode,
    load_task,
)


def write(tmp_path: Path, text: str, name: str = "task.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def spec_error(source, overrides=None) -> str:
    with pytest.raises(SpecError) as info:
        load_task(source, overrides)
    message = str(info.value)
    assert "\n" not in message, f"error message spans lines: {message!r}"
    return message


# --- valid tasks -----------------------------------------------------------------------
def test_builtin_like_task_loads_from_yaml_file(tmp_path):
    task = load_task(write(tmp_path, TASK_YAML))
    assert isinstance(task, TaskSpec)
    assert task.name == "tiny-sentiment"
    assert task.model.id == "builtin:tiny-llama" and task.model.kind == "builtin"
    assert [s.id for s in task.data.train] == ["builtin:sentiment"]
    assert task.data.train[0].kind == "builtin" and task.data.eval.split == "eval"
    assert task.metric.name is MetricName.accuracy and task.metric.higher_is_better
    assert task.budget.max_nodes == 8
    assert task.search.planner == "heuristic"  # defaults filled in


def test_path_given_as_string_loads_too(tmp_path):
    assert load_task(str(write(tmp_path, TASK_YAML))).name == "tiny-sentiment"


def test_dict_and_yaml_sources_agree(tmp_path):
    assert load_task(write(tmp_path, TASK_YAML)) == load_task(task_dict())


def test_source_kinds():
    task = load_task(
        task_dict(
            model={"id": "./models/tiny"},
            data={"train": [{"id": "data/train.jsonl"}, {"id": "org/dataset"}], "eval": {"id": "x.parquet"}},
        )
    )
    assert task.model.kind == "local"
    assert [s.kind for s in task.data.train] == ["local", "hub"]
    assert task.data.eval.kind == "local"
    assert load_task(task_dict(model={"id": "org/model"})).model.kind == "hub"


# --- overrides -------------------------------------------------------------------------
def test_override_top_level_section_field(tmp_path):
    task = load_task(write(tmp_path, TASK_YAML), ["budget.max_nodes=3"])
    assert task.budget.max_nodes == 3


def test_overrides_are_parsed_as_yaml_and_nest():
    task = load_task(
        task_dict(),
        [
            "search.exploration=0.25",
            "metric.name=macro_f1",
            "budget.compute_seconds=60",
            "model.max_seq_len=64",
            "name=renamed",
        ],
    )
    assert task.search.exploration == 0.25
    assert task.metric.name is MetricName.macro_f1
    assert task.budget.compute_seconds == 60.0
    assert task.model.max_seq_len == 64
    assert task.name == "renamed"


def test_override_creates_a_missing_section():
    task = load_task(task_dict(), ["resources.num_workers=2"])
    assert task.resources.num_workers == 2


def test_override_into_a_list_item():
    task = load_task(task_dict(), ["data.train.0.limit=5", "data.eval.split=test"])
    assert task.data.train[0].limit == 5 and task.data.eval.split == "test"
    task = load_task(task_dict(), ["data.train.0={id: 'builtin:topic', split: train}"])
    assert task.data.train[0].id == "builtin:topic"


@pytest.mark.parametrize("bad", ["data.train.1.limit=5", "data.train.x.limit=5", "data.train.-1.limit=5"])
def test_override_with_a_bad_list_index_is_a_spec_error(bad):
    assert "index" in spec_error(task_dict(), [bad])


def test_later_override_wins():
    assert load_task(task_dict(), ["budget.max_nodes=3", "budget.max_nodes=5"]).budget.max_nodes == 5


def test_overrides_do_not_change_the_callers_dict():
    raw = task_dict()
    load_task(raw, ["budget.max_nodes=3", "metric.name=rouge1"])
    assert raw == task_dict()


@pytest.mark.parametrize("bad", ["budget.max_nodes", "=3", ""])
def test_override_without_key_or_equals_is_a_spec_error(bad):
    assert "key.sub=value" in spec_error(task_dict(), [bad])


def test_override_into_a_scalar_is_a_spec_error():
    message = spec_error(task_dict(), ["name.first=x"])
    assert "name" in message and "not a mapping" in message


def test_override_with_invalid_yaml_value_is_a_spec_error():
    message = spec_error(task_dict(), ["budget.max_nodes=["])
    assert "budget.max_nodes" in message


def test_override_with_a_bad_value_names_the_field():
    message = spec_error(task_dict(), ["budget.max_nodes=lots"])
    assert "budget.max_nodes" in message and "integer" in message


def test_override_of_an_unknown_field_names_it():
    assert "budget.max_nodez" in spec_error(task_dict(), ["budget.max_nodez=3"])


# --- one-line errors -------------------------------------------------------------------
def test_missing_field(tmp_path):
    raw = task_dict()
    del raw["metric"]
    message = spec_error(write(tmp_path, yaml.safe_dump(raw)))
    assert "field metric" in message and "add it" in message
    assert "task.yaml" in message


def test_missing_nested_field():
    raw = task_dict()
    del raw["data"]["train"]
    assert "field data.train" in spec_error(raw)


def test_model_and_eval_may_be_left_out():
    raw = task_dict()
    del raw["model"], raw["data"]["eval"]
    task = load_task(raw)
    assert task.model.id == "builtin:smollm2-135m" and task.data.eval is None


def test_unknown_field(tmp_path):
    message = spec_error(write(tmp_path, TASK_YAML + "budjet: {max_nodes: 3}\n"))
    assert "field budjet" in message and "spelling" in message


def test_unknown_nested_field():
    message = spec_error(task_dict(budget={"max_node": 3}))
    assert "field budget.max_node" in message


def test_wrong_type(tmp_path):
    message = spec_error(write(tmp_path, TASK_YAML.replace("max_nodes: 8", "max_nodes: many")))
    assert "field budget.max_nodes" in message and "integer" in message


def test_wrong_type_in_a_list_item():
    message = spec_error(
        task_dict(
            data={
                "train": [{"id": "builtin:sentiment", "weight": "heavy"}],
                "eval": {"id": "builtin:sentiment"},
            }
        )
    )
    assert "field data.train.0.weight" in message


def test_out_of_range_value():
    message = spec_error(task_dict(budget={"max_nodes": 0}))
    assert "field budget.max_nodes" in message and "greater than or equal to 1" in message


def test_bad_enum_value(tmp_path):
    message = spec_error(write(tmp_path, TASK_YAML.replace("name: accuracy", "name: bleu")))
    assert "field metric.name" in message
    assert "accuracy" in message and "macro_f1" in message  # lists the allowed values


def test_section_that_is_not_a_mapping():
    message = spec_error(task_dict(model="builtin:tiny-llama"))
    assert "field model" in message and "dictionary" in message


def test_top_level_not_a_mapping(tmp_path):
    message = spec_error(write(tmp_path, "- name: a\n- name: b\n"))
    assert "top level must be a mapping" in message


def test_empty_file_is_not_a_mapping(tmp_path):
    assert "top level must be a mapping" in spec_error(write(tmp_path, ""))


def test_invalid_yaml_names_the_line(tmp_path):
    message = spec_error(write(tmp_path, "name: tiny\nmodel: {id: [unclosed\n"))
    assert "not valid YAML" in message and "line" in message


def test_not_utf8_is_a_spec_error(tmp_path):
    path = tmp_path / "task.yaml"
    path.write_bytes(b"name: \xff\xfe\n")
    assert "UTF-8" in spec_error(path)


def test_missing_file(tmp_path):
    message = spec_error(tmp_path / "nope.yaml")
    assert "nope.yaml" in message and "no such task file" in message


def test_lower_is_better_is_refused_in_one_line():
    message = spec_error(task_dict(metric={"name": "accuracy", "higher_is_better": False}))
    assert "higher_is_better" in message


def test_several_errors_are_counted_not_listed():
    message = spec_error(task_dict(budget={"max_nodes": "x", "wall_seconds": "y"}))
    assert "(and 1 more)" in message


def test_bad_name_pattern():
    assert "field name" in spec_error(task_dict(name="has spaces"))


def test_spec_error_is_a_value_error():
    assert issubclass(SpecError, ValueError)


# --- plans -----------------------------------------------------------------------------
def test_plan_hash_ignores_rationale():
    a = make_plan(rationale="because")
    b = make_plan(rationale="another reason entirely")
    assert a.hash == b.hash
    assert len(a.hash) == 16


def test_plan_hash_is_stable_across_a_json_round_trip():
    plan = make_plan(ops=["dedup"], epochs=3)
    again = Plan.model_validate_json(plan.model_dump_json())
    assert again == plan and again.hash == plan.hash


@pytest.mark.parametrize(
    "change",
    [
        {"train": {"learning_rate": 3e-3}},
        {"train": {"mode": TrainMode.lora}},
        {"train": {"epochs": 3.0}},
        {"train": {"batch_size": 8}},
        {"train": {"warmup_ratio": 0.1}},
        {"train": {"weight_decay": 0.1}},
        {"train": {"grad_clip": 0.5}},
        {"train": {"lora_r": 4}},
        {"train": {"lora_alpha": 8}},
        {"train": {"zero_stage": 2}},
        {"train": {"warm_start": True}},
        {"train": {"eval_every_fraction": 0.5}},
        {"data": {"ops": [DataOp(op="dedup")]}},
        {"data": {"ops": [DataOp(op="subsample", params={"n": 10})]}},
        {"data": {"template": "qa"}},
        {"eval": {"max_new_tokens": 4}},
        {"eval": {"batch_size": 8}},
        {"eval": {"backend": "vllm"}},
        {"seed": 1},
    ],
)
def test_plan_hash_changes_with_any_recipe_field(change):
    base = Plan()
    section, value = next(iter(change.items()))
    if isinstance(value, dict):
        changed = base.model_copy(update={section: getattr(base, section).model_copy(update=value)})
        changed = Plan.model_validate(changed.model_dump())  # as a planner's validated plan would be
    else:
        changed = Plan.model_validate({**base.model_dump(), section: value})
    assert changed.hash != base.hash


def test_op_params_order_does_not_change_the_hash():
    a = Plan(data=DataRecipe(ops=[DataOp(op="subsample", params={"n": 5, "seed": 1})]))
    b = Plan(data=DataRecipe(ops=[DataOp(op="subsample", params={"seed": 1, "n": 5})]))
    assert a.hash == b.hash


def test_op_order_changes_the_hash():
    assert make_plan(ops=["dedup", "length_filter"]).hash != make_plan(ops=["length_filter", "dedup"]).hash


def test_plans_are_frozen_and_strict():
    plan = Plan()
    with pytest.raises(ValueError):
        plan.seed = 3  # type: ignore[misc]
    with pytest.raises(ValueError):
        Plan.model_validate({"train": {"learnig_rate": 1e-3}})
    with pytest.raises(ValueError):
        Plan(eval=EvalRecipe(batch_size=0))


# --- results ---------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda: finished(0.8), diverged, stopped])
def test_result_round_trip(make):
    result = make()
    again = Result.model_validate_json(result.model_dump_json())
    assert again.outcome is result.outcome
    assert again.model_dump_json() == result.model_dump_json()
    assert Result.model_validate(result.model_dump(mode="json")).model_dump_json() == result.model_dump_json()


def test_result_ok_only_for_a_finite_finished_metric():
    assert finished(0.5).ok
    assert not diverged().ok
    assert not stopped().ok
    assert not Result(outcome=Outcome.finished).ok
    assert not Result(outcome=Outcome.finished, metric=math.nan).ok
    assert not Result(outcome=Outcome.finished, metric=math.inf).ok
