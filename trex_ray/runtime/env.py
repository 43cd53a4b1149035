"""Process environment shared by the driver and every Ray worker, defined in one place."""

from __future__ import annotations

import os
from pathlib import Path

# Repository-local caches, so a compiled DeepSpeed op is built once per checkout.
_CACHE_ROOT = Path(os.environ.get("TREX_HOME", Path.cwd() / ".cache"))


def worker_env() -> dict[str, str]:
    """Variables every trial process needs; passed to Ray as the runtime environment."""
    env = {
        "TORCH_EXTENSIONS_DIR": os.environ.get("TORCH_EXTENSIONS_DIR", str(_CACHE_ROOT / "torch_extensions")),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
        "PYTHONWARNINGS": os.environ.get("PYTHONWARNINGS", "ignore::DeprecationWarning,ignore::FutureWarning"),
        # NCCL's NVLink multicast off: it has hung shared GPU hosts.
        "NCCL_NVLS_ENABLE": "0",
        "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1",
        "NVSHMEM_DISABLE_NVLS": "1",
    }
    for key in ("HF_HOME", "HF_HUB_OFFLINE", "TREX_HOME", "TREX_CACHE_DIR"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def apply_to_this_process() -> None:
    for key, value in worker_env().items():
        os.environ.setdefault(key, value)
