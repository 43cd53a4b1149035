"""Base models: the embedded pretrained ones, the tiny test ones, local and hub ones; load for training.

``builtin:smollm2-135m`` (the default) is a real pretrained model shipped inside a package
(``execute/embedded.py``). ``builtin:tiny-llama`` is a small Llama with random (seeded) weights
and a word-level tokenizer over the built-in tasks' words (``spec/builtin.py``, from ftbench), for
fast tests only. It is written once into the shared cache as
an ordinary Hugging Face model directory, so that every backend (HF, vLLM) loads it like any
other local model.

Example::

    base = materialize_base_model(ModelSpec(id="builtin:tiny-llama"), Path(".cache"))
    model, tok = load_for_training(base, TrainMode.lora, None, False, TrainRecipe(mode="lora"))

A trained checkpoint directory holds ``trex_checkpoint.json`` naming whether it is a LoRA
adapter and which model directory it applies to (``checkpoint_base``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import torch

from trex_ray.spec import ModelSpec, TrainMode, TrainRecipe, builtin

logger = logging.getLogger(__name__)

SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")
CHECKPOINT_META = "trex_checkpoint.json"
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
BUILTIN_SEED = 1234

PRESETS: dict[str, dict[str, Any]] = {
    "tiny-llama": dict(
        hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=4, max_position_embeddings=256,
    ),
    "tiny-llama-wide": dict(
        hidden_size=256, intermediate_size=512, num_hidden_layers=4, num_attention_heads=8,
        num_key_value_heads=4, max_position_embeddings=256,
    ),
}
# Word-class prior: each word of a lexicon class gets the class's shared random direction added
# to its embedding, this many times the init std. It stands in for what pretraining gives a real
# base model (words of one kind lie close together) without training: fine-tuning then learns a
# class at once instead of word by word. 0 disables it.
CLASS_PRIOR_SCALE = 6.0
# The final norm's weight, times this: logits as sharp as a trained model's. At 1 the tied
# embeddings cap every logit near 2.5, so an adapter (which leaves embeddings and norms frozen)
# could not move the output distribution at all (sentiment: LoRA 0.35 at 1, 0.56 at 4).
FINAL_NORM_SCALE = 4.0


class ModelError(ValueError):
    """A base model cannot be found or built; the message says what to use instead."""


# --- built-in models ----------------------------------------------------------------------


def build_tokenizer(vocabulary: list[str], max_len: int = 256) -> Any:
    """A word-level tokenizer (whitespace split) over ``vocabulary`` with the four specials."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = list(SPECIALS) + [w for w in dict.fromkeys(vocabulary) if w not in SPECIALS]
    core = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", words.index("<s>"))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>",
        model_max_length=max_len, padding_side="right", clean_up_tokenization_spaces=False,
    )


def build_builtin_model(preset: str, vocab_size: int, tokenizer: Any, seed: int = BUILTIN_SEED) -> Any:
    """A randomly initialised Llama of the named preset; the same seed gives the same weights."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size, tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        dtype="float32", **PRESETS[preset],
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    if CLASS_PRIOR_SCALE:
        apply_class_prior(model, tokenizer, word_classes(), CLASS_PRIOR_SCALE, seed + 1)
    with torch.no_grad():
        model.model.norm.weight.mul_(FINAL_NORM_SCALE)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def word_classes() -> dict[str, list[str]]:
    """Groups of words that play the same part in every built-in task (registered by ftbench:
    ``spec/builtin.py``)."""
    return builtin.words().classes()


def apply_class_prior(
    model: Any, tokenizer: Any, classes: dict[str, list[str]], scale: float, seed: int
) -> None:
    """Add one shared random direction per word class to the (tied) embedding rows of its words."""
    weight = model.get_input_embeddings().weight
    generator = torch.Generator().manual_seed(seed)
    std = model.config.initializer_range * scale
    with torch.no_grad():
        for name in sorted(classes):
            direction = torch.randn(weight.shape[1], generator=generator) * std
            ids = [i for i in tokenizer.convert_tokens_to_ids(classes[name]) if i != tokenizer.unk_token_id]
            weight[ids] += direction


def _builtin_vocabulary() -> list[str]:
    try:
        return builtin.words().vocabulary()
    except LookupError as exc:
        raise ModelError(str(exc)) from None


def _builtin_dir(preset: str, vocabulary: list[str], cache_dir: Path) -> Path:
    recipe = {"preset": PRESETS[preset], "vocab": vocabulary, "seed": BUILTIN_SEED,
              "prior": [CLASS_PRIOR_SCALE, word_classes()], "norm": FINAL_NORM_SCALE}
    blob = json.dumps(recipe, sort_keys=True)
    return cache_dir / "models" / f"{preset}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def builtin_model_names() -> list[str]:
    """Every ``builtin:`` model: the embedded pretrained ones first, then the tiny random test models."""
    from trex_ray.execute.embedded import embedded_names

    return ["builtin:" + n for n in embedded_names()] + ["builtin:" + p for p in PRESETS]


def _materialize_builtin(name: str, cache_dir: Path) -> Path:
    from trex_ray.execute.embedded import EMBEDDED, EmbeddedModelError, materialize_embedded

    preset = name.split(":", 1)[1]
    if preset in EMBEDDED:
        try:
            return materialize_embedded(preset, cache_dir)
        except EmbeddedModelError as exc:
            raise ModelError(str(exc)) from None
    if preset not in PRESETS:
        raise ModelError(f"model {name!r} is not a built-in model; use one of {builtin_model_names()}")
    vocabulary = _builtin_vocabulary()
    final = _builtin_dir(preset, vocabulary, cache_dir)
    if (final / "config.json").is_file():
        return final
    tmp = final.parent / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        tokenizer = build_tokenizer(vocabulary)
        build_builtin_model(preset, len(tokenizer), tokenizer).save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.rename(tmp, final)  # atomic; fails if another process got there first
        logger.info("built %s into %s", name, final)
    except OSError:
        if not (final / "config.json").is_file():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


# --- local and hub models -----------------------------------------------------------------


def _local(spec: ModelSpec) -> Path:
    path = Path(spec.id).expanduser().resolve()
    if not (path / "config.json").is_file():
        raise ModelError(
            f"model {spec.id!r}: no Hugging Face model directory there (config.json missing); "
            "give a directory written by save_pretrained, or builtin:smollm2-135m"
        )
    return path


def _from_hub(spec: ModelSpec, cache_dir: Path) -> Path:
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(repo_id=spec.id, revision=spec.revision, cache_dir=str(cache_dir / "hub"))
        return Path(folder)
    except Exception as exc:  # offline, unknown repo, gated: all end the same way for the user
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"model {spec.id!r} could not be fetched from the Hugging Face hub ({type(exc).__name__}: "
            f"{reason[:160]}); give a local model directory or builtin:smollm2-135m instead"
        ) from None


def materialize_base_model(spec: ModelSpec, cache_dir: Path) -> Path:
    """A local directory holding the base model and its tokenizer, building or fetching it once."""
    cache_dir = Path(cache_dir)
    if spec.kind == "builtin":
        return _materialize_builtin(spec.id, cache_dir)
    if spec.kind == "local":
        return _local(spec)
    return _from_hub(spec, cache_dir)


def estimate_params(config: dict[str, Any]) -> int | None:
    """Parameters of a decoder-only transformer from its ``config.json`` (embeddings, attention, MLP)."""
    try:
        h, layers = int(config["hidden_size"]), int(config["num_hidden_layers"])
        vocab, inter = int(config["vocab_size"]), int(config.get("intermediate_size") or 4 * h)
    except (KeyError, TypeError, ValueError):
        return None
    heads = int(config.get("num_attention_heads") or 1)
    kv = int(config.get("num_key_value_heads") or heads)
    attention = 2 * h * h + 2 * h * (h * kv // heads)
    embeddings = vocab * h * (1 if config.get("tie_word_embeddings", True) else 2)
    return embeddings + layers * (attention + 3 * h * inter)


def model_facts(spec: ModelSpec) -> dict[str, Any]:
    """What the planner sizes its recipes by, without loading the model: parameters (None when unknown),
    whether it is pretrained (the tiny test models are random) and has a chat template (None: unknown)."""
    from trex_ray.execute.embedded import EMBEDDED

    name = spec.id.removeprefix("builtin:")
    if spec.kind == "builtin":
        if name in EMBEDDED:
            return {"id": spec.id, "params": EMBEDDED[name].params, "pretrained": True, "chat": True}
        return {"id": spec.id, "params": None, "pretrained": False, "chat": False}
    folder = Path(spec.id).expanduser()
    if spec.kind == "local" and (folder / "config.json").is_file():
        params = estimate_params(json.loads((folder / "config.json").read_text()))
        return {"id": spec.id, "params": params, "pretrained": True, "chat": _has_chat_template(folder)}
    return {"id": spec.id, "params": None, "pretrained": True, "chat": None}


def _has_chat_template(folder: Path) -> bool:
    config = folder / "tokenizer_config.json"
    in_config = config.is_file() and "chat_template" in json.loads(config.read_text())
    return in_config or (folder / "chat_template.jinja").is_file()


# --- checkpoints and loading ----------------------------------------------------------------


def write_checkpoint_meta(checkpoint: str | Path, adapter: bool, base_model: str | Path) -> None:
    meta = {"adapter": adapter, "base_model": str(base_model)}
    (Path(checkpoint) / CHECKPOINT_META).write_text(json.dumps(meta, indent=1))


def checkpoint_base(checkpoint: str | Path, default: str | Path) -> str:
    """The model directory a checkpoint applies to: itself for full weights; for a LoRA adapter the
    base its ``trex_checkpoint.json`` names, else ``default``."""
    meta_path = Path(checkpoint) / CHECKPOINT_META
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    if not meta.get("adapter", is_adapter(checkpoint)):
        return str(checkpoint)
    base = meta.get("base_model")
    return str(base) if base and Path(base).is_dir() else str(default)


def is_adapter(checkpoint: str | Path) -> bool:
    return (Path(checkpoint) / "adapter_config.json").is_file()


def load_tokenizer(model_dir: str | Path, padding_side: str = "right") -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = padding_side
    return tokenizer


def training_dtype() -> torch.dtype:
    """bf16 on a GPU that has it (DeepSpeed then trains in bf16: loading in it halves the host memory
    the load takes), else fp32 (CPU training, and GPUs without bf16)."""
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def _causal_lm(model_dir: str | Path, dtype: torch.dtype = torch.float32) -> Any:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=dtype)


def _with_merged_adapter(base_dir: str | Path, adapter_dir: str | Path) -> Any:
    from peft import PeftModel

    return PeftModel.from_pretrained(_causal_lm(base_dir), str(adapter_dir)).merge_and_unload()


def _new_lora(model: Any, recipe: TrainRecipe) -> Any:
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=recipe.lora_r, lora_alpha=recipe.lora_alpha, lora_dropout=recipe.lora_dropout, bias="none",
        target_modules=list(recipe.lora_targets or [m for m in LORA_TARGETS if _has_module(model, m)])
        or "all-linear",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def _has_module(model: Any, suffix: str) -> bool:
    return any(name.endswith("." + suffix) for name, _ in model.named_modules())


def training_base(base_dir: str | Path, parent_checkpoint: str | None, parent_adapter: bool) -> str:
    """The model directory a new LoRA adapter (or a continued one) applies to."""
    if parent_checkpoint is None:
        return str(base_dir)
    return checkpoint_base(parent_checkpoint, base_dir)


def load_for_training(
    base_dir: str | Path,
    mode: TrainMode | str,
    parent_checkpoint: str | None,
    parent_adapter: bool,
    recipe: TrainRecipe,
) -> tuple[Any, Any]:
    """The model to train and its tokenizer; with a parent checkpoint, start from its weights.

    full: the base, the parent's full weights, or the base with the parent's adapter merged in.
    lora: a new adapter on the base or the parent's full weights, or the parent's adapter, trainable.
    """
    mode = TrainMode(mode)
    if mode is TrainMode.none:
        raise ValueError("load_for_training: mode none trains nothing; evaluate the model instead")
    base = training_base(base_dir, parent_checkpoint, parent_adapter)
    dtype = training_dtype()
    has_tokenizer = parent_checkpoint and (Path(parent_checkpoint) / "tokenizer_config.json").is_file()
    tokenizer = load_tokenizer(parent_checkpoint if has_tokenizer else base)
    if parent_checkpoint and parent_adapter:
        if mode is TrainMode.full:
            return _with_merged_adapter(base, parent_checkpoint), tokenizer
        from peft import PeftModel

        model = PeftModel.from_pretrained(_causal_lm(base, dtype), parent_checkpoint, is_trainable=True)
        return model, tokenizer
    model = _causal_lm(base, dtype)
    return (_new_lora(model, recipe) if mode is TrainMode.lora else model), tokenizer
