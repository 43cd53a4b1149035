"""Base models: built-in tiny models, local directories, hub ids, and loading for training."""

from __future__ import annotations

import threading
from pathlib import Path

import huggingface_hub.constants
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from trex_ray.execute.models import (
    ModelError,
    build_builtin_model,
    build_tokenizer,
    checkpoint_base,
    load_for_training,
    materialize_base_model,
    write_checkpoint_meta,
)
from trex_ray.ftbench.lexicon import builtin_vocabulary
from trex_ray.spec import ModelSpec, TrainMode, TrainRecipe

TINY = ModelSpec(id="builtin:tiny-llama")


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return materialize_base_model(TINY, tmp_path_factory.mktemp("cache"))


def test_builtin_materializes_once_as_a_plain_hf_directory(tmp_path: Path) -> None:
    first = materialize_base_model(TINY, tmp_path)
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    again = materialize_base_model(TINY, tmp_path)
    assert again == first and (first / "model.safetensors").stat().st_mtime_ns == stamp
    assert [p.name for p in (tmp_path / "models").iterdir()] == [first.name]
    model = AutoModelForCausalLM.from_pretrained(first)
    tokenizer = AutoTokenizer.from_pretrained(first)
    assert model.config.model_type == "llama" and model.config.vocab_size == len(tokenizer)
    assert tokenizer.pad_token == "<pad>" and tokenizer.eos_token == "</s>" and tokenizer.bos_token == "<s>"


def test_builtin_weights_are_seeded(tmp_path: Path, base_dir: Path) -> None:
    other = materialize_base_model(TINY, tmp_path)
    a = AutoModelForCausalLM.from_pretrained(base_dir).state_dict()
    b = AutoModelForCausalLM.from_pretrained(other).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_two_racing_processes_agree(tmp_path: Path) -> None:
    found: list[Path] = []
    def build() -> None:
        found.append(materialize_base_model(TINY, tmp_path))

    threads = [threading.Thread(target=build) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(found) == 2 and found[0] == found[1]
    assert [p.name for p in (tmp_path / "models").iterdir()] == [found[0].name]  # no temp dirs left


def test_tokenizer_round_trips_the_vocabulary_without_unk(base_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    words = builtin_vocabulary()
    text = " ".join(words)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.unk_token_id not in ids and len(ids) == len(words)
    assert tokenizer.decode(ids) == text
    assert tokenizer("the food was good")["input_ids"][0] == tokenizer.bos_token_id


def test_unknown_builtin_names_the_presets(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="builtin:tiny-llama"):
        materialize_base_model(ModelSpec(id="builtin:huge"), tmp_path)


def test_local_model_directory_is_used_as_is(tmp_path: Path) -> None:
    tokenizer = build_tokenizer(["hello", "world"])
    build_builtin_model("tiny-llama", len(tokenizer), tokenizer).save_pretrained(tmp_path / "mine")
    tokenizer.save_pretrained(tmp_path / "mine")
    found = materialize_base_model(ModelSpec(id=str(tmp_path / "mine")), tmp_path / "cache")
    assert found == (tmp_path / "mine").resolve()
    model, tok = load_for_training(found, TrainMode.full, None, False, TrainRecipe())
    assert model.config.vocab_size == len(tok) == 6


def test_missing_local_directory_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as err:
        materialize_base_model(ModelSpec(id=str(tmp_path / "nowhere")), tmp_path)
    assert "\n" not in str(err.value) and "save_pretrained" in str(err.value)


def test_hub_id_offline_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelError) as err:
        materialize_base_model(ModelSpec(id="trex-ray-tests/no-such-model"), tmp_path)
    message = str(err.value)
    assert "\n" not in message and "trex-ray-tests/no-such-model" in message
    assert "local model directory" in message and "builtin:" in message


def _trainable(model: torch.nn.Module) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_load_for_training_modes(tmp_path: Path, base_dir: Path) -> None:
    full, _ = load_for_training(base_dir, TrainMode.full, None, False, TrainRecipe())
    assert all(p.requires_grad for p in full.parameters())
    lora, tok = load_for_training(base_dir, TrainMode.lora, None, False, TrainRecipe(mode="lora", lora_r=4))
    names = _trainable(lora)
    assert names and all("lora_" in n for n in names) and any("q_proj" in n for n in names)
    adapter_dir = tmp_path / "adapter"
    lora.save_pretrained(adapter_dir)
    tok.save_pretrained(adapter_dir)
    write_checkpoint_meta(adapter_dir, adapter=True, base_model=base_dir)
    assert checkpoint_base(adapter_dir, "unused") == str(base_dir)
    more, _ = load_for_training(base_dir, TrainMode.lora, str(adapter_dir), True, TrainRecipe(mode="lora"))
    assert _trainable(more) == names  # the parent's adapter, trainable again
    merged, _ = load_for_training(base_dir, TrainMode.full, str(adapter_dir), True, TrainRecipe())
    assert not any("lora_" in n for n, _ in merged.named_parameters())
