"""Requirement analysis: a free-text request + a data profile → a TaskSpec draft to review.

``trex draft "REQUEST" --data PATH --model PROVIDER/NAME [--api-base URL] [--out task.yaml]`` (see
``llm/cli.py``) peeks at the data (columns, first rows), profiles it, asks the LLM to fill in the task
(name, description, input/target columns, metric, generation length) through a function
call, validates the answer as a ``TaskSpec`` (repairing it with the error fed back), and
writes YAML with the profile and the reasoning as comments. Without ``--model``, or when the
LLM gives nothing valid, a heuristic draft is written instead. Example::

    spec = LLMSpec(model="openai/gpt-4o-mini")
    draft = draft_task("label reviews as positive or negative", "reviews.jsonl", spec=spec)
    print(draft.yaml)
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from trex_ray.research.llm.client import LLMClient, LLMUnavailable, Rejected, Rejection
from trex_ray.research.llm.prompts import draft_messages
from trex_ray.research.llm.schemas import TaskDraft, task_tool
from trex_ray.research.llm.validate import clean_text, parse_json, schema_error
from trex_ray.spec import SpecError, TaskSpec, builtin, validate
from trex_ray.spec.task import LLMSpec

DEFAULT_BASE_MODEL = "builtin:smollm2-135m"  # the embedded real model (spec DEFAULT_MODEL)
PEEK_ROWS = 200
_INPUT_NAMES = (
    "input",
    "text",
    "prompt",
    "question",
    "source",
    "sentence",
    "review",
    "document",
    "instruction",
)
_TARGET_NAMES = ("target", "label", "output", "answer", "completion", "response", "summary", "category")


@dataclass
class Draft:
    task: TaskSpec
    by: str  # "llm" or "heuristic"
    notes: list[str] = field(default_factory=list)
    profile: dict[str, Any] = field(default_factory=dict)
    rationale: str = ""

    @property
    def yaml(self) -> str:
        header = [
            f"# trex task draft ({self.by}) — review it, then: trex run THIS_FILE",
            f"# rationale: {self.rationale or '-'}",
        ]
        header += [f"# note: {n}" for n in self.notes]
        header.append(f"# data profile: {json.dumps(self.profile, default=str)[:600]}")
        body = yaml.safe_dump(self.task.model_dump(mode="json", exclude_defaults=True), sort_keys=False)
        return "\n".join(header) + "\n" + body


# --- the data -------------------------------------------------------------------------------------
def peek(data: str) -> list[dict[str, Any]]:
    """The first rows of a local .jsonl/.json/.parquet file or a ``builtin:<task>``."""
    if data.startswith("builtin:"):
        name = data.removeprefix("builtin:")
        names = builtin.data_names(generated=True)
        found = builtin.builtin_data(name)
        if name not in names or found is None:
            raise SpecError(
                f"--data {data}: no such built-in task; use one of {[f'builtin:{n}' for n in names]}"
            )
        return list(found.records("train"))[:PEEK_ROWS]
    path = Path(data).expanduser()
    if not path.is_file():
        raise SpecError(f"--data {data}: file not found; give a local .jsonl, .json or .parquet file")
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path).slice(0, PEEK_ROWS).to_pylist()
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".json" and text.lstrip().startswith("["):
            rows = json.loads(text)[:PEEK_ROWS]
        else:
            rows = [json.loads(line) for line in text.splitlines()[: PEEK_ROWS * 2] if line.strip()][
                :PEEK_ROWS
            ]
    except (ValueError, OSError) as exc:
        raise SpecError(
            f"--data {data}: cannot read it ({type(exc).__name__}: {str(exc)[:100]}); "
            "use one JSON object per line"
        ) from None
    if not rows or not all(isinstance(r, dict) for r in rows):
        raise SpecError(f"--data {data}: no rows of named fields found; use one JSON object per line")
    return rows


def guess_fields(columns: list[str]) -> tuple[str, str]:
    lower = {c.lower(): c for c in columns}
    src = next((lower[n] for n in _INPUT_NAMES if n in lower), columns[0])
    tgt = next((lower[n] for n in _TARGET_NAMES if n in lower and lower[n] != src), columns[-1])
    return src, tgt


def _task_dict(
    name: str,
    description: str,
    data: str,
    eval_data: str | None,
    fields: tuple[str, str],
    metric: str,
    max_new_tokens: int,
    base_model: str,
) -> dict[str, Any]:
    source = {"id": data, "split": "train", "input_field": fields[0], "target_field": fields[1]}
    held_out = {**source, "id": eval_data, "split": "eval"} if eval_data else {**source, "split": "eval"}
    return {
        "name": name,
        "description": description,
        "model": {"id": base_model},
        "data": {"train": [source], "eval": held_out},
        "metric": {"name": metric},
        "max_new_tokens": max_new_tokens,
    }


Profiler = Callable[[TaskSpec], dict[str, Any]]


def data_profile(rows: list[dict[str, Any]], task: TaskSpec,
                 profiler: Profiler | None = None) -> dict[str, Any]:
    """The executor's data profile (``profiler``, given by the caller: ``execute.profile.draft_profile``)
    when the data loads with these fields, else a column summary."""
    try:
        if profiler is None:
            raise ValueError("no executor profile was given")
        return profiler(task)
    except Exception as exc:  # noqa: BLE001 - a rough profile still helps the draft
        cols: dict[str, Any] = {}
        for c in rows[0]:
            values = [str(r.get(c, "")) for r in rows]
            cols[c] = {
                "distinct_fraction": round(len(set(values)) / len(values), 3),
                "mean_words": round(sum(len(v.split()) for v in values) / len(values), 1),
            }
        return {"columns": cols, "rows_seen": len(rows), "profile_error": str(exc)[:160]}


# --- drafts ---------------------------------------------------------------------------------------
def heuristic_draft(
    request: str, data: str, eval_data: str | None, rows: list[dict[str, Any]], base_model: str
) -> TaskSpec:
    fields = guess_fields(list(rows[0]))
    targets = [str(r.get(fields[1], "")) for r in rows]
    labels = len(set(targets)) <= max(2, len(targets) // 10) and max(len(t.split()) for t in targets) <= 3
    longest = max(len(t.split()) for t in targets)
    stem = data.removeprefix("builtin:").rsplit("/", 1)[-1].split(".")[0]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-") or "task"
    description = " ".join(request.split())[:300]
    raw = _task_dict(
        name,
        description,
        data,
        eval_data,
        fields,
        "accuracy" if labels else "rougeL",
        min(4096, 2 * longest + 2),
        base_model,
    )
    return validate(TaskSpec, raw, where="draft")


class TaskCheck:
    """A ``draft_task`` answer → a valid TaskSpec, or a Rejection the model can act on."""

    def __init__(self, data: str, eval_data: str | None, columns: list[str], base_model: str) -> None:
        self.data, self.eval_data, self.columns, self.base_model = data, eval_data, columns, base_model
        self.suggested_model: str | None = None
        self.rationale = ""

    def __call__(self, text: str) -> tuple[TaskSpec, list[str]]:
        try:
            answer = TaskDraft.model_validate(parse_json(text))
        except ValidationError as exc:
            raise Rejection(schema_error(exc)) from None
        for name in (answer.input_field, answer.target_field):
            if name not in self.columns:
                raise Rejection(f"the data has no column {name!r}; use one of {self.columns}")
        if answer.input_field == answer.target_field:
            raise Rejection("input_field and target_field must be different columns")
        description = clean_text(answer.description, "description")
        self.rationale = clean_text(answer.rationale, "rationale")
        self.suggested_model = clean_text(answer.base_model, "base_model") if answer.base_model else None
        raw = _task_dict(
            answer.name,
            description,
            self.data,
            self.eval_data,
            (answer.input_field, answer.target_field),
            answer.metric.value,
            answer.max_new_tokens,
            self.base_model,
        )
        try:
            return validate(TaskSpec, raw, where="task"), []
        except SpecError as exc:
            raise Rejection(str(exc)) from None


def draft_task(
    request: str,
    data: str,
    eval_data: str | None = None,
    spec: LLMSpec | None = None,
    log_dir: Path | None = None,
    base_model: str = DEFAULT_BASE_MODEL,
    profiler: Profiler | None = None,
) -> Draft:
    """A task drafted from a request and the data; ``profiler`` gives the executor's data profile
    (``execute.profile.draft_profile``; without it, a column summary goes into the prompt)."""
    rows = peek(data)
    columns = list(rows[0])
    provisional = heuristic_draft(request, data, eval_data, rows, base_model)
    profile = data_profile(rows, provisional, profiler)
    notes = [] if eval_data else ["no --eval file: evaluation uses the training file; give a held-out one"]
    if spec is None:
        return Draft(
            provisional, "heuristic", notes + ["no --model: fields and metric were guessed"], profile
        )
    client = LLMClient(spec, log_dir)
    check = TaskCheck(data, eval_data, columns, base_model)
    try:
        task = client.ask(
            "requirement", draft_messages(request, data, columns, rows, profile), task_tool(columns), check
        )
    except (LLMUnavailable, Rejected) as exc:
        reason = client.scrub.text(str(exc))
        client.note("fallback", stage="requirement", reason=reason)
        return Draft(
            provisional, "heuristic", [*notes, f"the LLM gave no valid draft ({reason[:200]})"], profile
        )
    if check.suggested_model:
        notes.append(f"the LLM suggests base model {check.suggested_model!r}; set model.id to use it")
    return Draft(task, "llm", notes, profile, check.rationale)
