"""A tiny model saved to disk, with a LoRA adapter and a full fine-tune of it, for evaluation tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from trex_ray.execute.models import (
    _causal_lm,
    _new_lora,
    load_tokenizer,
    materialize_base_model,
    write_checkpoint_meta,
)
from trex_ray.spec import ModelSpec, TrainRecipe


@dataclass
class Models:
    base: str
    adapter: str
    full: str


def make_eval_models(cache: Path, out: Path) -> Models:
    base = materialize_base_model(ModelSpec(id="builtin:tiny-llama"), cache)
    tokenizer = load_tokenizer(base)
    torch.manual_seed(7)
    lora = _new_lora(_causal_lm(base), TrainRecipe(mode="lora", lora_r=8))
    with torch.no_grad():
        for name, param in lora.named_parameters():
            if "lora_B" in name:  # a fresh adapter is a no-op; this one changes the answers
                param.normal_(0, 0.5)
    adapter = out / "adapter"
    lora.save_pretrained(adapter)
    tokenizer.save_pretrained(adapter)
    write_checkpoint_meta(adapter, True, base)
    full_model = _causal_lm(base)
    with torch.no_grad():
        for param in full_model.parameters():
            param.add_(torch.randn_like(param) * 0.05)
    full = out / "full"
    full_model.save_pretrained(full)
    tokenizer.save_pretrained(full)
    write_checkpoint_meta(full, False, full)
    return Models(str(base), str(adapter), str(full))
