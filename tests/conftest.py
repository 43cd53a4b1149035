"""Shared fixtures. Tests that need Ray or training are marked `ray` / `slow`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import trex_ray.ftbench  # noqa: F401  (registers the built-in data that execute and research read)

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(REPO / ".cache" / "torch_extensions"))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache (built tiny models, prepared datasets) for every test of the session."""
    return tmp_path_factory.mktemp("trex-cache")


@pytest.fixture(scope="session")
def real_model_dir() -> Path:
    """The embedded SmolLM2-135M-Instruct as an HF folder, converted once into the repo's cache
    (about 20 s the first time on 2 cores; kept between sessions)."""
    from trex_ray.execute.embedded import materialize_embedded

    return materialize_embedded("smollm2-135m", REPO / ".cache")
