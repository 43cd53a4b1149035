"""Shared by the benchmark scripts: where they write, what machine they ran on, the last JSON line."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
for path in (str(ROOT), str(BENCH)):
    if path not in sys.path:
        sys.path.insert(0, path)


def machine() -> dict[str, Any]:
    """Where and when a figure was taken: host, CPUs, load averages (the box is shared), date, commit."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "load_1_5_15": [round(x, 2) for x in load],
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "python": platform.python_version(),
        "commit": commit,
    }


def emit(
    summary: dict[str, Any], as_json: bool, out_name: str | None = None, results: Path = RESULTS
) -> None:
    """Write the summary under ``results`` (benchmarks/results/) and print it as the last line (JSON)."""
    if out_name:
        results.mkdir(parents=True, exist_ok=True)
        (results / out_name).write_text(json.dumps(summary, indent=1, default=_plain) + "\n")
    line = json.dumps(summary, default=_plain, separators=(",", ":") if as_json else (", ", ": "))
    print(line, flush=True)


def _plain(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, Path):
        return str(value)
    return str(value)


def finite(x: float | None) -> float | None:
    """JSON has no inf/NaN: None stands for 'never reached'."""
    if x is None or x != x or x in (float("inf"), float("-inf")):
        return None
    return x
