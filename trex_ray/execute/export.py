"""Take a trained node out of a run as an ordinary Hugging Face folder (``trex export``).

``export_model`` writes one of:

* **full weights** — a full fine-tune's checkpoint, the base model itself (the root node), or a LoRA
  adapter merged into its base (``merge=True``): ``config.json``, ``*.safetensors``,
  ``generation_config.json``; loads with ``AutoModelForCausalLM.from_pretrained(out)`` and serves with
  ``vllm serve out``;
* **an adapter** — a LoRA node without ``merge``: ``adapter_config.json`` whose
  ``base_model_name_or_path`` names the base (``base_ref``: a hub id, or a local folder), and the
  adapter's weights; transformers loads it (with peft installed) as the base with the adapter on top;

plus the tokenizer with its chat template, the model card ``README.md`` (written by the caller:
``report/card.py``) and ``trex_export.json`` (what was exported from where, machine-readable).

Example::

    export_model(ExportSource(checkpoint="runs/r/nodes/n3/checkpoint", adapter=True,
                              base_dir=".cache/models/tiny", base_ref="/abs/.cache/models/tiny"),
                 Path("out/n3"), merge=True, card="# n3 ...", meta={"node_id": "n3"})
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trex_ray.execute.models import (
    CHECKPOINT_META,
    _with_merged_adapter,
    checkpoint_base,
    materialize_base_model,
)
from trex_ray.spec import ModelSpec

EXPORT_META = "trex_export.json"
# Files of a checkpoint that are trex's own, not the model's.
_SKIP = {CHECKPOINT_META, "trex_embedded.json", "README.md"}


class ExportError(ValueError):
    """The export cannot be made; the message names the option and the fix."""


@dataclass(frozen=True)
class ExportSource:
    checkpoint: str | None  # the node's checkpoint folder; None: the base model itself (the root node)
    adapter: bool  # the checkpoint is a LoRA adapter
    base_dir: str  # the folder the adapter applies to (for full weights: unused)
    base_ref: str  # how the exported adapter names its base: a hub id or an absolute folder


def resolve_source(checkpoint: str | None, adapter: bool, model: ModelSpec, cache_dir: Path) -> ExportSource:
    """Where the weights come from: the checkpoint, and for an adapter the folder it applies to (the
    base model, or the full fine-tune it was trained on) and how the export names it (a hub model by
    its id, anything else by its absolute folder)."""
    base_dir = materialize_base_model(model, cache_dir)
    adapter_base = checkpoint_base(checkpoint, base_dir) if adapter and checkpoint else str(base_dir)
    same = Path(adapter_base).resolve() == Path(base_dir).resolve()
    base_ref = model.id if same and model.kind == "hub" else str(Path(adapter_base).resolve())
    return ExportSource(checkpoint=checkpoint, adapter=adapter and checkpoint is not None,
                        base_dir=adapter_base, base_ref=base_ref)


def export_kind(source: ExportSource, merge: bool) -> str:
    """``base``, ``full``, ``merged`` or ``adapter``: what ``export_model`` writes for ``source``."""
    if source.checkpoint is None:
        return "base"
    if not source.adapter:
        return "full"
    return "merged" if merge else "adapter"


def export_model(source: ExportSource, out: Path, merge: bool, card: str,
                 meta: dict[str, Any]) -> dict[str, Any]:
    """Write the folder (see the module docstring); returns what ``trex_export.json`` holds."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ExportError(f"--out {out}: the folder is not empty; give a new or empty folder")
    tmp = out.parent / f".{out.name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        kind = _write_weights(source, tmp, merge)
        _write_tokenizer(source.checkpoint or source.base_dir, tmp)
        info = {**meta, "kind": kind, "base_model": source.base_ref}
        (tmp / "README.md").write_text(card)
        (tmp / EXPORT_META).write_text(json.dumps(info, indent=1, default=str))
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return info


def _write_weights(source: ExportSource, out: Path, merge: bool) -> str:
    """The model's files into ``out``; returns ``full``, ``merged``, ``adapter`` or ``base``."""
    if source.checkpoint is None:
        _copy_model_files(Path(source.base_dir), out)
        return "base"
    if not source.adapter:
        _copy_model_files(Path(source.checkpoint), out)
        return "full"
    if merge:
        model = _with_merged_adapter(source.base_dir, source.checkpoint)
        model.save_pretrained(str(out))
        return "merged"
    _copy_model_files(Path(source.checkpoint), out)
    config_path = out / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = source.base_ref
    config_path.write_text(json.dumps(config, indent=2))
    return "adapter"


def _copy_model_files(src: Path, out: Path) -> None:
    if not src.is_dir():
        raise ExportError(f"checkpoint {src}: the folder is missing; the node's files were deleted or "
                          "never made (see `trex status`)")
    for item in src.iterdir():
        if item.is_file() and item.name not in _SKIP:
            shutil.copy2(item, out / item.name)


def _write_tokenizer(src: str, out: Path) -> None:
    """The tokenizer as transformers saves it: its files, special tokens and chat template."""
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(src).save_pretrained(str(out))
