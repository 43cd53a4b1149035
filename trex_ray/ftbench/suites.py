"""FT-Bench suites: the ten real FT-Bench tasks (``ftbench``, ``real.py``) and their offline analogs
(``ftbench-mini``).

A task is named ``<suite>/<task>``: ``ftbench/hoc`` is HoC on the Hugging Face hub with
Qwen3-1.7B; ``ftbench-mini/hoc`` is its generated analog with the tiny built-in model, which
runs anywhere. The real tasks' sources and conversions are in ``real.py``; ``docs/ftbench.md``
lists what is known and what is guessed.

Example::

    >>> from trex_ray.ftbench.suites import suite_task, suite_tasks
    >>> suite_tasks("ftbench-mini")[:3]
    ['aci', 'tomg', 'omebench']
    >>> suite_task("ftbench-mini/hoc").metric.name.value
    'macro_f1'
    >>> suite_task("ftbench/sst2").model.id
    'Qwen/Qwen3-1.7B'
"""

from __future__ import annotations

import os

from trex_ray.ftbench.generators import TASKS
from trex_ray.ftbench.real import BASE_MODEL, BENCH, BenchTask, bench_task, real_task
from trex_ray.spec import Budget, DataSource, DataSpec, MetricSpec, ModelSpec, TaskSpec

__all__ = ["BASE_MODEL", "BENCH", "BenchTask", "BenchUnavailable", "bench_task", "real_task", "suite_task",
           "suite_tasks"]

MINI_MODEL = "builtin:tiny-llama"
SUITES = ("ftbench", "ftbench-mini")


class BenchUnavailable(RuntimeError):
    """A real FT-Bench task cannot run here; the message (one line) names the offline analog."""


def suite_tasks(suite: str) -> list[str]:
    """Task names of a suite, in FT-Bench order."""
    _check_suite(suite)
    return [t.name for t in BENCH]


def _check_suite(suite: str) -> None:
    if suite not in SUITES:
        raise ValueError(f"suite {suite!r} is unknown; use one of {list(SUITES)}")


def is_suite_ref(text: str) -> bool:
    """Whether ``text`` reads like ``<suite>/<task>`` of a known suite."""
    return text.split("/", 1)[0] in SUITES and "/" in text


def split_ref(ref: str) -> tuple[str, str]:
    if not is_suite_ref(ref):
        raise ValueError(f"task {ref!r}: expected <suite>/<task> with suite one of {list(SUITES)}")
    suite, name = ref.split("/", 1)
    bench_task(name)
    return suite, name


MINI_EVAL = 200  # of the 300 generated: a ten-task sweep fits a 2-core CPU


def mini_task(name: str) -> TaskSpec:
    """The offline analog: generated data, the tiny built-in model, one CPU per trial."""
    t = bench_task(name)
    source = f"builtin:{t.analog}"
    return TaskSpec(
        name=f"{t.name}-mini",
        description=TASKS[t.analog].description,
        model=ModelSpec(id=MINI_MODEL),
        data=DataSpec(
            train=[DataSource(id=source, split="train", limit=t.mini_train)],
            eval=DataSource(id=source, split="eval", limit=MINI_EVAL),
        ),
        metric=MetricSpec(name=t.metric),
        budget=Budget(max_nodes=12, trial_timeout_seconds=900),
        max_new_tokens=t.mini_new_tokens,
    )


def suite_task(ref: str) -> TaskSpec:
    """The TaskSpec of ``ftbench/<task>`` or ``ftbench-mini/<task>``."""
    suite, name = split_ref(ref)
    return real_task(name) if suite == "ftbench" else mini_task(name)


def list_suite_tasks(suite: str) -> list[tuple[str, str]]:
    """(``suite/task``, one-line description) of every task of a suite."""
    _check_suite(suite)
    if suite == "ftbench":
        return [(f"{suite}/{t.name}", f"{t.title} [{t.train.id}, {t.metric.value}]") for t in BENCH]
    return [(t.analog, f"{TASKS[t.analog].description} [{t.metric.value}]") for t in BENCH]


# --- can a real task run here? -------------------------------------------------------------------
def _offline_env() -> bool:
    return any(
        os.environ.get(k, "").strip().lower() in ("1", "true", "yes", "on")
        for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def _unreachable(repo_id: str, repo_type: str, timeout: float) -> str | None:
    """Why ``repo_id`` cannot be reached on the hub now, or None when it can."""
    if _offline_env():
        return "offline"
    from huggingface_hub import HfApi

    try:
        HfApi().repo_info(repo_id, repo_type=repo_type, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - no network, unknown repo, gated: all say the same to the user
        name = type(exc).__name__
        if "Connect" in name or "Timeout" in name or "Offline" in name or "NameResolution" in str(exc):
            return "offline"
        return f"{name}: {str(exc).strip().splitlines()[0][:80]}" if str(exc).strip() else name
    return None


def preflight(task: TaskSpec, analog: str | None = None, timeout: float = 10.0) -> None:
    """Raise ``BenchUnavailable`` (one line, naming the analog) when a hub source or model is unreachable."""
    hint = f"; run the offline analog `{analog}`" if analog else ""
    sources = [s for s in [*task.data.train, task.data.eval] if s is not None]
    if _offline_env() and any(s.kind == "url" for s in sources):
        url = next(s.id for s in sources if s.kind == "url")
        raise BenchUnavailable(f"data file {url} unreachable (offline){hint}")
    for src in {s.id: s for s in [*task.data.train, task.data.eval] if s and s.kind == "hub"}.values():
        reason = _unreachable(src.id, "dataset", timeout)
        if reason:
            raise BenchUnavailable(f"hub dataset {src.id} unreachable ({reason}){hint}")
    if task.model.kind == "hub":
        reason = _unreachable(task.model.id, "model", timeout)
        if reason:
            raise BenchUnavailable(f"hub model {task.model.id} unreachable ({reason}){hint}")


def resolve(ref: str, check: bool = True) -> TaskSpec:
    """``suite_task`` plus, for a real task, the reachability check (``BenchUnavailable`` offline)."""
    suite, name = split_ref(ref)
    task = suite_task(ref)
    if suite == "ftbench" and check:
        preflight(task, bench_task(name).analog)
    return task
