"""FT-Bench suites: the ten real FT-Bench tasks (``ftbench``) and their offline analogs (``ftbench-mini``).

A task is named ``<suite>/<task>``: ``ftbench/hoc`` is HoC on the Hugging Face hub with
Qwen3-1.7B; ``ftbench-mini/hoc`` is its generated analog with the tiny built-in model, which
runs anywhere. Dataset ids, fields and prompt formats of the real tasks are best public
knowledge; ``docs/ftbench.md`` lists every guess.

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
from dataclasses import dataclass

from trex_ray.ftbench.generators import TASKS
from trex_ray.spec import (
    Budget,
    DataSource,
    DataSpec,
    MetricName,
    MetricSpec,
    ModelSpec,
    Resources,
    TaskSpec,
)

BASE_MODEL = "Qwen/Qwen3-1.7B"
MINI_MODEL = "builtin:tiny-llama"
SUITES = ("ftbench", "ftbench-mini")


class BenchUnavailable(RuntimeError):
    """A real FT-Bench task cannot run here; the message (one line) names the offline analog."""


@dataclass(frozen=True)
class BenchTask:
    """One FT-Bench task: where its real data lives and how it is scored and prompted."""

    name: str
    title: str
    metric: MetricName
    dataset: str  # hub id (best known; see docs/ftbench.md)
    input_field: str
    target_field: str
    train_split: str
    eval_split: str
    prompt: str  # how an example is rendered for Qwen3 (documentation of the real setup)
    max_new_tokens: int
    mini_new_tokens: int
    max_seq_len: int = 2048
    mini_train: int = 1200  # train examples of the analog (of 2000 generated)

    @property
    def analog(self) -> str:
        return f"ftbench-mini/{self.name}"


BENCH: tuple[BenchTask, ...] = (
    BenchTask(
        "aci",
        "ACI-Bench: clinical note from a doctor-patient dialogue",
        MetricName.rouge1,
        "mkieffer/ACI-Bench",
        "dialogue",
        "note",
        "train",
        "test",
        "Write the clinical visit note for this doctor-patient conversation.\n{dialogue}",
        1024,
        12,
        8192,
    ),
    BenchTask(
        "tomg",
        "TOMG-Bench: text-based open molecule generation",
        MetricName.tomg_score,
        "Duke-de-Artois/TOMG-Bench",
        "Instruction",
        "molecule",
        "train",
        "test",
        "{Instruction}\nAnswer with the SMILES string of the molecule only.",
        256,
        12,
    ),
    BenchTask(
        "omebench",
        "oMeBench: organic reaction mechanism elucidation",
        MetricName.ome_score,
        "skylarkie/oMeBench",
        "prompt",
        "mechanism",
        "train",
        "test",
        "Reactants: {reactants_smiles}\nProducts: {products_smiles}\nConditions: {conditions}\n"
        "Give the mechanism as a JSON list of steps with subtype and intermediate_smiles.",
        2048,
        12,
        4096,
        mini_train=300,
    ),  # expert-curated mechanisms are few (oMe-Gold: 196 reactions)
    BenchTask(
        "hoc",
        "HoC: hallmarks of cancer (multi-label)",
        MetricName.macro_f1,
        "bigbio/hallmarks_of_cancer",
        "text",
        "labels",
        "train",
        "test",
        "Which hallmarks of cancer does this abstract discuss? Answer with comma-separated labels "
        "or none.\n{text}",
        64,
        8,
    ),
    BenchTask(
        "sst2",
        "SST-2: binary sentiment",
        MetricName.accuracy,
        "stanfordnlp/sst2",
        "sentence",
        "label",
        "train",
        "validation",
        "Is the sentiment of this sentence positive or negative?\n{sentence}",
        4,
        2,
        512,
    ),
    BenchTask(
        "csbench",
        "CS-Bench: computer-science knowledge",
        MetricName.mc_accuracy,
        "CS-Bench/CS-Bench",
        "Question",
        "Answer",
        "train",
        "test",
        "{Question}\nAnswer with the option letter (or true / false) only.",
        16,
        2,
    ),
    BenchTask(
        "openfindata",
        "OpenFinData: Chinese financial evaluation",
        MetricName.mc_accuracy,
        "opencompass/OpenFinData",
        "question",
        "answer",
        "train",
        "test",
        "{question}\n请只回答选项字母。",
        16,
        2,
    ),
    BenchTask(
        "econlogicqa",
        "EconLogicQA: order economic events",
        MetricName.mc_accuracy,
        "yinzhu-quan/econ_logic_qa",
        "Question",
        "Answer",
        "train",
        "test",
        "{Question}\nAnswer with the order of the events as letters, e.g. B, A, D, C.",
        16,
        5,
    ),
    BenchTask(
        "gta",
        "GTA: general tool agents (tool-call accuracy)",
        MetricName.tool_call_accuracy,
        "Jize1/GTA",
        "dialogs",
        "tool_call",
        "train",
        "test",
        'Tools: {tools}\nUser: {query}\nReply with one tool call as JSON {{"name": ..., "arguments": ...}}.',
        256,
        10,
        4096,
    ),
    BenchTask(
        "lawbench",
        "LawBench: Chinese law (hybrid score)",
        MetricName.lawbench_score,
        "open-compass/LawBench",
        "instruction",
        "answer",
        "train",
        "test",
        "{instruction}\n{question}",
        256,
        6,
        4096,
    ),
)
_BY_NAME = {t.name: t for t in BENCH}


def suite_tasks(suite: str) -> list[str]:
    """Task names of a suite, in FT-Bench order."""
    _check_suite(suite)
    return [t.name for t in BENCH]


def bench_task(name: str) -> BenchTask:
    if name not in _BY_NAME:
        raise ValueError(f"FT-Bench task {name!r} is unknown; use one of {list(_BY_NAME)}")
    return _BY_NAME[name]


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


def real_task(name: str) -> TaskSpec:
    """The real FT-Bench task: hub data, Qwen3-1.7B, one GPU per trial."""
    t = bench_task(name)

    def source(split: str) -> DataSource:
        return DataSource(id=t.dataset, split=split, input_field=t.input_field, target_field=t.target_field)

    return TaskSpec(
        name=t.name,
        description=f"{t.title}. Prompt: {t.prompt}",
        model=ModelSpec(id=BASE_MODEL, max_seq_len=t.max_seq_len),
        data=DataSpec(train=[source(t.train_split)], eval=source(t.eval_split)),
        metric=MetricSpec(name=t.metric),
        budget=Budget(max_nodes=24, trial_timeout_seconds=6 * 3600),
        resources=Resources(cpus_per_worker=8, gpus_per_worker=1),
        max_new_tokens=t.max_new_tokens,
    )


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
        return [(f"{suite}/{t.name}", f"{t.title} [{t.dataset}, {t.metric.value}]") for t in BENCH]
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
