"""Process environment shared by the driver and every Ray worker.

The variables every trial process needs are defined once, in ``cluster/runtime_env.yaml``
(``env_vars``): the same file ``ray job submit --runtime-env``, the cluster launcher and the KubeRay
RayJob use. ``worker_env`` adds what is local to this machine (the DeepSpeed op cache, pass-through
settings such as ``HF_HOME`` or ``AWS_ENDPOINT_URL`` — never secrets: those reach workers from the
environment Ray was started in).
"""

from __future__ import annotations

import json
import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Repository-local caches, so a compiled DeepSpeed op is built once per checkout.
_CACHE_ROOT = Path(os.environ.get("TREX_HOME", Path.cwd() / ".cache"))
RUNTIME_ENV_FILE = Path(__file__).resolve().parents[2] / "cluster" / "runtime_env.yaml"
# Settings (not secrets) that follow the driver to its workers when set.
PASS_THROUGH = ("HF_HOME", "HF_HUB_OFFLINE", "TREX_HOME", "TREX_CACHE_DIR", "TREX_SCRATCH",
                "TREX_TEST_FAULTS", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "PYTHONWARNINGS",
                "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER")


@lru_cache(maxsize=1)
def runtime_env_file() -> dict[str, Any]:
    """``cluster/runtime_env.yaml`` as a dict (empty, with a warning, outside a source checkout)."""
    path = Path(os.environ.get("TREX_RUNTIME_ENV", RUNTIME_ENV_FILE))
    if not path.is_file():
        log.warning("%s not found: workers get only machine-local variables", path)
        return {}
    import yaml

    return dict(yaml.safe_load(path.read_text()) or {})


def worker_env() -> dict[str, str]:
    """Variables every trial process needs; passed to Ray as the runtime environment."""
    env = {str(k): str(v) for k, v in (runtime_env_file().get("env_vars") or {}).items()}
    default = str(_CACHE_ROOT / "torch_extensions")
    env["TORCH_EXTENSIONS_DIR"] = os.environ.get("TORCH_EXTENSIONS_DIR", default)
    for key in PASS_THROUGH:
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def driver_runtime_env() -> dict[str, Any]:
    """The driver's ``ray.init(runtime_env=...)``: ``worker_env`` less what a submitted job set already.

    Under ``ray job submit`` Ray merges the job's runtime environment with the driver's and refuses
    a variable set in both, so those are left to the job's.
    """
    env = worker_env()
    job = os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR")
    if job:
        job_vars = (json.loads(job).get("runtime_env") or {}).get("env_vars") or {}
        env = {k: v for k, v in env.items() if k not in job_vars}
    return {"env_vars": env}


def apply_to_this_process() -> None:
    for key, value in worker_env().items():
        os.environ.setdefault(key, value)
