"""Data sources: every format and file type becomes input / target / system / history;
bad input is one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import datasets
import pytest
from datasets import ClassLabel, Dataset, Features, List, Value

from trex_ray.execute.sources import COLUMNS, DataError, load_source, load_train
from trex_ray.spec import DataSource, DataSpec, ModelSpec
from trex_ray.spec.task import TaskSpec


def jsonl(tmp_path: Path, rows: list[dict[str, Any]], name: str = "d.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def load(path: Path, **kw: Any) -> list[dict[str, str]]:
    ds = load_source(DataSource(id=str(path), **kw))
    assert ds.column_names == list(COLUMNS)
    return ds.to_list()


def row(input: str, target: str, system: str = "", history: list[dict[str, str]] | None = None) -> dict:
    return {"input": input, "target": target, "system": system, "history": json.dumps(history or [])}


def fails(path: Path, match: str, **kw: Any) -> str:
    with pytest.raises(DataError, match=match) as info:
        load_source(DataSource(id=str(path), **kw))
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"data source {str(path)!r}: ")
    return message


# --- formats ---------------------------------------------------------------------------------
def test_builtin_fills_system_and_history() -> None:
    rows = load_source(DataSource(id="builtin:reverse", split="eval", limit=3)).to_list()
    assert len(rows) == 3 and all(r["system"] == "" and r["history"] == "[]" for r in rows)


def test_text_fields(tmp_path: Path) -> None:
    path = jsonl(tmp_path, [{"q": "2+2?", "a": "4", "other": 1}])
    assert load(path, input_field="q", target_field="a") == [row("2+2?", "4")]


def test_alpaca_with_and_without_input(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path,
        [
            {"instruction": "Translate to French.", "input": "cat", "output": "chat"},
            {"instruction": "Say hi.", "input": "", "output": "hi", "system": "Be brief."},
        ],
    )
    assert load(path) == [row("Translate to French.\n\ncat", "chat"), row("Say hi.", "hi", "Be brief.")]
    no_input = jsonl(tmp_path, [{"instruction": "Say hi.", "output": "hi"}], "b.jsonl")
    assert load(no_input, format="alpaca") == [row("Say hi.", "hi")]


def test_sharegpt_multi_turn_with_system(tmp_path: Path) -> None:
    conv = [
        {"from": "system", "value": "You are terse."},
        {"from": "human", "value": "hi"},
        {"from": "gpt", "value": "hello"},
        {"from": "human", "value": "2+2?"},
        {"from": "gpt", "value": "4"},
    ]
    path = jsonl(tmp_path, [{"conversations": conv}])
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert load(path) == [row("2+2?", "4", "You are terse.", history)]


def test_sharegpt_system_column(tmp_path: Path) -> None:
    conv = [{"from": "user", "value": "hi"}, {"from": "assistant", "value": "yo"}]
    path = jsonl(tmp_path, [{"conversations": conv, "system": "Be kind."}])
    assert load(path, format="sharegpt") == [row("hi", "yo", "Be kind.")]


def test_messages_last_assistant_is_target(tmp_path: Path) -> None:
    msgs = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
        {"role": "assistant", "content": "d"},
        {"role": "user", "content": "trailing, ignored"},
    ]
    path = jsonl(tmp_path, [{"messages": msgs}])
    history = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    assert load(path) == [row("c", "d", "S", history)]


def test_explicit_fields_win_over_detection(tmp_path: Path) -> None:
    path = jsonl(tmp_path, [{"messages": [], "text": "x", "label": "y"}])
    assert load(path, input_field="text", target_field="label") == [row("x", "y")]


# --- file types ------------------------------------------------------------------------------
def test_csv(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text('text,label\nhello,1\n"a, b",0\n')
    assert load(path, input_field="text", target_field="label") == [row("hello", "1"), row("a, b", "0")]


def test_json_list(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"input": "a", "target": "b"}, {"input": "c", "target": "d"}]))
    assert load(path, limit=1) == [row("a", "b")]


def test_parquet_class_labels(tmp_path: Path) -> None:
    features = Features(
        {
            "text": Value("string"),
            "label": ClassLabel(names=["neg", "pos"]),
            "tags": List(ClassLabel(names=["red", "green", "blue"])),
        }
    )
    ds = Dataset.from_dict({"text": ["x", "y"], "label": [1, 0], "tags": [[0, 2], []]}, features=features)
    path = tmp_path / "d.parquet"
    ds.to_parquet(str(path))
    assert [r["target"] for r in load(path, input_field="text", target_field="label")] == ["pos", "neg"]
    assert [r["target"] for r in load(path, input_field="text", target_field="tags")] == ["red, blue", ""]


def test_int_bool_float_and_list_columns(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path,
        [
            {"x": "a", "n": 2, "b": True, "f": 0.5, "ints": [0, 1], "strs": ["p", "q"]},
            {"x": "b", "n": 0, "b": False, "f": 1.0, "ints": [1], "strs": ["r"]},
        ],
    )

    def targets(field: str, **kw: Any) -> list[str]:
        return [r["target"] for r in load(path, input_field="x", target_field=field, **kw)]

    assert targets("n") == ["2", "0"]
    assert targets("n", label_names=["zero", "one", "two"]) == ["two", "zero"]
    assert targets("b") == ["true", "false"]
    assert targets("f") == ["0.5", "1.0"]
    assert targets("ints", label_names=["cat", "dog"]) == ["cat, dog", "dog"]
    assert targets("strs") == ["p, q", "r"]


def test_local_folder_with_config_and_split(tmp_path: Path) -> None:
    folder = tmp_path / "ds"
    folder.mkdir()
    jsonl(folder, [{"input": "a", "target": "b"}], "train.jsonl")
    jsonl(folder, [{"input": "c", "target": "d"}], "test.jsonl")
    assert DataSource(id=str(folder)).kind == "local"
    assert load(folder, split="test") == [row("c", "d")]
    with pytest.raises(DataError, match="split 'eval'.*Unknown split"):
        load_source(DataSource(id=str(folder), split="eval"))


def test_hub_passes_config_split_revision(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake(*args: Any, **kw: Any) -> Dataset:
        calls.append((args, kw))
        return Dataset.from_dict({"input": ["a"], "target": ["b"]})

    monkeypatch.setattr(datasets, "load_dataset", fake)
    src = DataSource(id="org/name", config="sub", split="validation", revision="v1")
    assert src.kind == "hub" and load_source(src).to_list() == [row("a", "b")]
    assert calls == [(("org/name", "sub"), {"split": "validation", "revision": "v1"})]


def test_hub_failure_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake(*args: Any, **kw: Any) -> Dataset:
        raise ValueError("BuilderConfig 'sub' not found.\nAvailable: ['default']")

    monkeypatch.setattr(datasets, "load_dataset", fake)
    with pytest.raises(
        DataError, match=r"config 'sub'.*Available: \['default'\].*data\.eval\.config"
    ) as info:
        load_source(DataSource(id="org/name", config="sub"), where="data.eval")
    assert "\n" not in str(info.value)


def test_load_train_adds_source_and_names_fields(tmp_path: Path) -> None:
    good = jsonl(tmp_path, [{"instruction": "i", "output": "o"}])
    bad = jsonl(tmp_path, [{"text": "x"}], "bad.jsonl")
    data = DataSpec(
        train=[DataSource(id="builtin:reverse", limit=2), DataSource(id=str(good))],
        eval=DataSource(id=str(good)),
    )
    task = TaskSpec(
        name="t", model=ModelSpec(id="builtin:tiny-llama"), data=data, metric={"name": "accuracy"}
    )
    ds = load_train(task)
    assert ds.column_names == [*COLUMNS, "source"] and ds["source"][:] == ["builtin:reverse"] * 2 + [
        str(good)
    ]
    task = task.model_copy(update={"data": data.model_copy(update={"train": [DataSource(id=str(bad))]})})
    with pytest.raises(DataError, match=r"set data\.train\[0\]\.input_field to one of \['text'\]"):
        load_train(task)


def test_kinds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models" / "qwen").mkdir(parents=True)
    assert ModelSpec(id="models/qwen").kind == "local" and ModelSpec(id="org/qwen").kind == "hub"
    assert ModelSpec(id="builtin:tiny-llama").kind == "builtin"
    assert [DataSource(id=i).kind for i in ("x.csv", "models", "org/data", "builtin:reverse")] == [
        "local",
        "local",
        "hub",
        "builtin",
    ]


# --- bad input -------------------------------------------------------------------------------
def test_missing_column(tmp_path: Path) -> None:
    msg = fails(
        jsonl(tmp_path, [{"text": "a", "label": "b"}]),
        "no column 'answer'",
        input_field="text",
        target_field="answer",
    )
    assert "set target_field to one of ['text', 'label']" in msg


def test_dict_column(tmp_path: Path) -> None:
    path = jsonl(tmp_path, [{"text": "a", "meta": {"k": 1}}])
    fails(
        path,
        "column 'meta' \\(target_field\\) holds dicts.*pick another target_field",
        input_field="text",
        target_field="meta",
    )


def test_nested_list_column(tmp_path: Path) -> None:
    path = jsonl(tmp_path, [{"text": "a", "spans": [[1, 2]]}])
    fails(
        path, "column 'spans' \\(target_field\\) holds nested lists", input_field="text", target_field="spans"
    )


@pytest.mark.parametrize(
    ("name", "text"), [("e.jsonl", ""), ("e.csv", ""), ("h.csv", "input,target\n"), ("l.json", "[]")]
)
def test_empty_file(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    fails(path, "no rows; ")


def test_conversation_without_assistant(tmp_path: Path) -> None:
    ok = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    path = jsonl(tmp_path, [{"messages": ok}, {"messages": [{"role": "user", "content": "hi"}]}])
    fails(path, "row 1: the conversation in column 'messages' has no assistant turn")


def test_assistant_not_after_user(tmp_path: Path) -> None:
    conv = [{"from": "system", "value": "s"}, {"from": "gpt", "value": "hi"}]
    fails(
        jsonl(tmp_path, [{"conversations": conv}]), "row 0: the last assistant turn .* does not follow a user"
    )


def test_unknown_role(tmp_path: Path) -> None:
    msgs = [{"role": "user", "content": "a"}, {"role": "tool", "content": "x"}]
    fails(jsonl(tmp_path, [{"messages": msgs}]), "row 0: column 'messages' has a turn with role 'tool'")


def test_label_index_out_of_range(tmp_path: Path) -> None:
    path = jsonl(tmp_path, [{"text": "a", "label": 0}, {"text": "b", "label": 3}])
    fails(
        path,
        "row 1: column 'label' has label 3, outside its 2 names; give label_names a name",
        input_field="text",
        target_field="label",
        label_names=["neg", "pos"],
    )


def test_class_label_unlabelled(tmp_path: Path) -> None:
    features = Features({"text": Value("string"), "label": ClassLabel(names=["neg", "pos"])})
    path = tmp_path / "d.parquet"
    Dataset.from_dict({"text": ["a"], "label": [-1]}, features=features).to_parquet(str(path))
    fails(path, "row 0: .*label -1.*use a labelled split", input_field="text", target_field="label")


def test_alpaca_forced_without_output(tmp_path: Path) -> None:
    fails(jsonl(tmp_path, [{"instruction": "a"}]), "format alpaca needs a column 'output'", format="alpaca")


def test_csv_messages_as_json_strings(tmp_path: Path) -> None:
    msgs = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "text", "text": "yo"}]},
    ]
    path = tmp_path / "chat.csv"
    Dataset.from_dict({"messages": [json.dumps(msgs)]}).to_csv(str(path), index=False)
    assert load(path) == [row("hi", "yo")]


def test_builtin_data_comes_from_the_registry_ftbench_fills() -> None:
    """execute never imports ftbench: in a process that has not imported it, a builtin source fails
    with one line saying how to register the built-in data; once imported, it loads."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from trex_ray.execute.sources import DataError, load_source\n"
        "from trex_ray.spec import DataSource\n"
        "try:\n"
        "    load_source(DataSource(id='builtin:sentiment'))\n"
        "except DataError as exc:\n"
        "    print('ERR', exc)\n"
        "assert 'trex_ray.ftbench' not in sys.modules\n"
        "import trex_ray.ftbench\n"
        "print('ROWS', len(load_source(DataSource(id='builtin:sentiment', limit=5))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    err, rows = out.stdout.strip().splitlines()
    assert err.startswith("ERR") and "import trex_ray.ftbench" in err
    assert rows == "ROWS 5"
