"""The embedded real model (SmolLM2-135M-Instruct from a wheel) and the chat formats trained through
its chat template: conversion, the loss mask, a few real training steps, and the preflight's errors."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from trex_ray.cli import main
from trex_ray.execute import embedded
from trex_ray.execute.context import RunContext
from trex_ray.execute.data import prepare
from trex_ray.execute.encode import IGNORE, encode
from trex_ray.execute.launch import InProcessLauncher
from trex_ray.execute.models import load_tokenizer
from trex_ray.execute.run_plan import run_plan
from trex_ray.spec import DataRecipe, Plan, TrainRecipe, load_task

REPO = Path(__file__).resolve().parents[1]


def test_embedded_model_is_an_ordinary_hf_folder_with_its_chat_template(real_model_dir: Path) -> None:
    assert (real_model_dir / "config.json").is_file()
    provenance = json.loads((real_model_dir / "trex_embedded.json").read_text())
    assert provenance["sha256"] == embedded.EMBEDDED["smollm2-135m"].sha256
    assert provenance["licence"] == "Apache-2.0"
    tokenizer = load_tokenizer(real_model_dir)
    assert tokenizer.chat_template and tokenizer.eos_token == "<|im_end|>"
    config = json.loads((real_model_dir / "config.json").read_text())
    assert config["num_hidden_layers"] == 30 and config["vocab_size"] == 49152
    assert "quantization_config" not in config


def test_concurrent_first_uses_convert_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def slow_convert(model, gguf, out):  # type: ignore[no-untyped-def]
        calls.append(1)
        out.mkdir(parents=True)
        threading.Event().wait(0.3)
        (out / "config.json").write_text("{}")

    monkeypatch.setattr(embedded, "_convert", slow_convert)
    monkeypatch.setattr(embedded, "_sha256", lambda path: embedded.EMBEDDED["smollm2-135m"].sha256)
    found: list[Path] = []
    def first_use() -> None:
        found.append(embedded.materialize_embedded("smollm2-135m", tmp_path))

    threads = [threading.Thread(target=first_use) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(set(found)) == 1
    assert [p.name for p in (tmp_path / "models").iterdir() if p.is_dir()] == [found[0].name]


def test_a_gguf_that_is_not_the_pinned_one_is_refused(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded, "_sha256", lambda path: "0" * 64)
    with pytest.raises(embedded.EmbeddedModelError, match="not the pinned") as info:
        embedded.materialize_embedded("smollm2-135m", tmp_path)
    assert "\n" not in str(info.value) and "--force-reinstall" in str(info.value)


# --- the formats users bring, through the chat template ------------------------------------
CONVERSATIONS = [
    ("north", "cold"), ("south", "warm"), ("arctic", "cold"), ("desert", "warm"), ("tundra", "cold"),
    ("tropics", "warm"), ("glacier", "cold"), ("beach", "warm"),
]


def _write_formats(folder: Path) -> dict[str, Path]:
    alpaca = [{"instruction": "Is this place warm or cold?", "input": place, "output": label}
              for place, label in CONVERSATIONS]
    sharegpt = [{"conversations": [{"from": "system", "value": "Answer in one word."},
                                   {"from": "human", "value": f"Is the {place} warm or cold?"},
                                   {"from": "gpt", "value": label}]} for place, label in CONVERSATIONS]
    messages = [{"messages": [{"role": "user", "content": f"Where is it {label}?"},
                              {"role": "assistant", "content": "I am not sure."},
                              {"role": "user", "content": f"Is the {place} warm or cold?"},
                              {"role": "assistant", "content": label}]} for place, label in CONVERSATIONS]
    files = {}
    for name, rows in (("alpaca", alpaca), ("sharegpt", sharegpt), ("messages", messages)):
        files[name] = folder / f"{name}.jsonl"
        files[name].write_text("".join(json.dumps(r) + "\n" for r in rows))
    return files


def _task(train: Path, test: Path | None, **extra: object) -> object:
    data: dict = {"train": [{"id": str(train)}], "val_size": 2}
    data.update({"eval": {"id": str(test)}} if test else {"test_size": 2})
    return load_task({"name": "formats", "description": "Say whether the place is warm or cold.",
                      "data": data, "metric": {"name": "accuracy"}, **extra})


@pytest.mark.parametrize("fmt", ["alpaca", "sharegpt", "messages"])
def test_chat_formats_render_through_the_chat_template_and_mask_all_but_the_reply(
        tmp_path: Path, real_model_dir: Path, fmt: str) -> None:
    files = _write_formats(tmp_path)
    task = _task(files[fmt], None)
    prepared = prepare(DataRecipe(), task, tmp_path / "cache", base_dir=real_model_dir)
    assert prepared.stats["template"] == "chat"
    tokenizer = load_tokenizer(real_model_dir)
    row = prepared.eval[0]
    assert row["prompt"].endswith("<|im_start|>assistant\n")
    if fmt == "alpaca":
        assert "Is this place warm or cold?\n\nnorth" in row["prompt"]  # alpaca's input is kept
    if fmt == "sharegpt":
        assert "<|im_start|>system\nAnswer in one word.<|im_end|>" in row["prompt"]
    if fmt == "messages":
        assert "I am not sure.<|im_end|>" in row["prompt"]  # the earlier turns are context
    ids, labels = encode(tokenizer, row["prompt"], row["target"], 256)
    scored = [i for i, lab in zip(ids, labels, strict=True) if lab != IGNORE]
    assert tokenizer.decode(scored) == row["target"] + "<|im_end|>"  # the assistant's reply only
    assert labels[: len(ids) - len(scored)] == [IGNORE] * (len(ids) - len(scored))


def test_a_few_real_training_steps_through_the_chat_template(tmp_path: Path, real_model_dir: Path) -> None:
    files = _write_formats(tmp_path)
    task = _task(files["sharegpt"], files["alpaca"], resources={"cpus_per_worker": 2})
    ctx = RunContext(task=task, node_id="n1", work_dir=tmp_path / "n1", cache_dir=REPO / ".cache",
                     launcher=InProcessLauncher())
    plan = Plan(train=TrainRecipe(mode="lora", learning_rate=1e-3, epochs=1, batch_size=2, lora_r=4))
    result = run_plan(plan, ctx)
    assert result.ok, result.error
    assert result.cost.train_steps == 3  # 8 rows - 2 validation = 6, batch 2
    assert result.metric is not None and result.samples[0]["prediction"] in ("cold", "warm")
    curve = [p.train_loss for p in result.curve]
    assert all(loss == loss and loss < 20 for loss in curve)


# --- preflight: bad data exits 2 with one line, before any trial ----------------------------
def _bad_task(folder: Path, rows: list[dict] | None, model: str = "builtin:smollm2-135m") -> Path:
    train = folder / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows or []))
    task = {"name": "bad", "model": {"id": model},
            "data": {"train": [{"id": str(train), "input_field": "text", "target_field": "label"}]},
            "metric": {"name": "accuracy"}}
    path = folder / "task.yaml"
    path.write_text(json.dumps(task))
    return path


INTENTS = ["cancel_subscription", "shipping_delay", "refund_request"]


@pytest.mark.parametrize("case", ["missing_column", "dict_column", "unencodable", "empty_file"])
def test_bad_data_exits_2_with_one_line_before_any_trial(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, case: str,
        real_model_dir: Path) -> None:
    monkeypatch.setenv("TREX_CACHE_DIR", str(REPO / ".cache"))  # the converted model, not a new one
    rows = [{"text": f"my order number {i} is late", "label": INTENTS[i % 3]} for i in range(30)]
    if case == "missing_column":
        rows = [{"body": r["text"], "label": r["label"]} for r in rows]
        expect = "text"
    elif case == "dict_column":
        rows = [{"text": r["text"], "label": {"name": r["label"]}} for r in rows]
        expect = "label"
    elif case == "empty_file":
        rows, expect = [], "no rows"
    else:
        expect = "cannot be written by the tokenizer"
    model = "builtin:tiny-llama" if case == "unencodable" else "builtin:smollm2-135m"
    run_dir = tmp_path / "run"
    code = main(["run", str(_bad_task(tmp_path, rows, model)), "--run-dir", str(run_dir), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("trex: error:") and expect in err[0], err
    assert "Traceback" not in err[0] and not (run_dir / "events.jsonl").exists()
