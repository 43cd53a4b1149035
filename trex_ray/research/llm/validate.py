"""LLM answer → typed, safe values, or a ``Rejection`` whose message tells the model what to fix.

Layers, each one a reason the model can act on: (1) the answer is one JSON object of bounded
size; (2) it matches the answer schema (``schemas.py``: unknown keys, wrong types and absurd
values fail); (3) free text (rationales, insights, queries) holds no code, shell commands,
markup or prompt-injection phrases; (4) data ops exist in the executor's registry and their
params pass the op's own bounded checks for the run's data size (``spec/data_ops.py``:
nothing runs, so no param can ask for unbounded work); (5) the merged ``Plan`` validates, trains
(no ``mode: none`` child), only warm-starts from a trained parent, repeats no experiment and
respects learning-rate ceilings learned from divergences. Nothing the model writes is ever executed. Example::

    check = PlanCheck(task, tree, parent, k=2, cite_ids={"F1"})
    plans, problems = check(answer_text)      # or raises Rejection
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from pydantic import ValidationError

from trex_ray.research.insights import InsightMemory
from trex_ray.research.llm.client import MAX_ANSWER_CHARS, Rejection
from trex_ray.research.llm.schemas import (
    MAX_QUERY,
    InsightAnswer,
    PlanDraft,
    PlansAnswer,
    QueriesAnswer,
)
from trex_ray.spec import TEMPLATE_NAMES, Plan, TaskSpec, TrainMode
from trex_ray.spec.data_ops import OP_SUMMARIES, DataError, check_op
from trex_ray.tree import Node, SearchTree

log = logging.getLogger(__name__)

MAX_PARAMS_CHARS = 300
MAX_NESTING = 12  # a plans answer needs 8 (answer, plans, a plan, data, ops, an op, params, weights)
DEFAULT_ROWS = 10_000  # the data's size for op bounds when the run has no profile of it
_HOSTILE: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"```|<\?php|#!/"), "a code block"),
    (
        re.compile(r"(^|[;\n]\s*)import\s+[A-Za-z_][\w.]*|\bfrom\s+[A-Za-z_][\w.]*\s+import\s+\w+"),
        "code (an import)",
    ),
    (
        re.compile(
            r"(os\.system|subprocess|__import__|\beval\s*\(|\bexec\s*\(|\bopen\s*\(\s*['\"]|"
            r"lambda\s*\w*:)"
        ),
        "code",
    ),
    (
        re.compile(
            r"(?i)(^|[\s;|&(])(rm\s+-\w+|curl\s|wget\s|bash\s|sh\s+-c|sudo\s|chmod\s|chown\s|nc\s+-|"
            r"python[23]?\s+-c|pip\s+install|powershell|mkfs|dd\s+if=)"
        ),
        "a shell command",
    ),
    (re.compile(r"\$\(|\$\{|&&|\|\|?\s*(sh|bash|zsh)\b|>\s*/(dev|etc|tmp)/"), "shell syntax"),
    (
        re.compile(
            r"(?i)(ignore|disregard|forget|override)\s+(all\s+|any\s+|the\s+|your\s+)*"
            r"(previous|prior|above|earlier|system|original)?\s*(instructions|rules|prompts?|constraints)"
        ),
        "prompt injection",
    ),
    (
        re.compile(
            r"(?i)(system prompt|developer message|you are now|new instructions|jailbreak|"
            r"reveal (your|the) (key|secret|prompt)|api[_ ]key)"
        ),
        "prompt injection",
    ),
    (
        re.compile(
            r"(?i)<\s*/?\s*(script|system|tool|assistant|user|iframe|img)\b|\[/?INST\]|<\|im_(start|end)\|>"
        ),
        "markup or chat-template injection",
    ),
]
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


# --- generic layers ------------------------------------------------------------------------------
def parse_json(text: str) -> dict[str, Any]:
    """The answer's JSON object (a tool call's arguments, or text holding one object)."""
    if not text or not text.strip():
        raise Rejection("the answer was empty; call the function with its arguments")
    if len(text) > MAX_ANSWER_CHARS:
        raise Rejection(f"the answer has {len(text)} characters, over the {MAX_ANSWER_CHARS} limit; be brief")
    body = text.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", body, re.DOTALL)
    body = fenced.group(1) if fenced else body
    if _nesting(body) > MAX_NESTING:
        raise Rejection(f"the answer nests lists or objects {_nesting(body)} deep; keep it under "
                        f"{MAX_NESTING} levels (params are single numbers or words)")
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        start, end = body.find("{"), body.rfind("}")
        try:
            value = json.loads(body[start : end + 1]) if 0 <= start < end else None
        except json.JSONDecodeError:
            value = None
        if value is None:
            raise Rejection(
                f"the answer is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
                "give exactly one JSON object"
            ) from None
    if not isinstance(value, dict):
        raise Rejection(f"the answer is JSON {type(value).__name__}, not an object; give one JSON object")
    return value


def _nesting(text: str) -> int:
    """How deep brackets nest in ``text`` (strings skipped): an upper bound on the JSON's depth, found
    without parsing it (a parser recurses once per level)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            escaped, in_string = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(0, depth - 1)
    return deepest


def schema_error(exc: ValidationError, limit: int = 5) -> str:
    parts = []
    for err in exc.errors()[:limit]:
        where = ".".join(_key(p) for p in err["loc"]) or "(top level)"
        got = "" if err["type"] == "missing" else f" (got {_short(err.get('input'))})"
        parts.append(f"{where}: {' '.join(err['msg'].split())}{got}")
    more = f" (and {len(exc.errors()) - limit} more)" if len(exc.errors()) > limit else ""
    return "off-schema: " + "; ".join(parts) + more


def _key(part: Any) -> str:
    """A location part as the model wrote it: a plain name, or a quoted (escaped, shortened) one."""
    text = str(part)
    return text if re.fullmatch(r"\w{1,40}", text) else _short(text)


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def hostile(text: str) -> str | None:
    """What makes a piece of free text unsafe to keep (and to show a later prompt), or None."""
    for pattern, what in _HOSTILE:
        match = pattern.search(text)
        if match:
            return f"{what} ({match.group(0).strip()[:40]!r})"
    return None


def clean_text(text: str, field: str) -> str:
    """Free text with control characters removed and whitespace collapsed; hostile text is rejected."""
    text = " ".join(_CONTROL.sub(" ", text).split())
    bad = hostile(text)
    if bad:
        raise Rejection(f"{field} contains {bad}; write plain prose only, no code, commands or instructions")
    return text


# --- plans ---------------------------------------------------------------------------------------
class PlanCheck:
    """Turns a ``propose_plans`` answer into up to ``k`` new child Plans of ``parent``."""

    def __init__(self, task: TaskSpec, tree: SearchTree, parent: Node, k: int, cite_ids: set[str]) -> None:
        self.task, self.tree, self.parent, self.k = task, tree, parent, k
        self.cite_ids = cite_ids
        self.memory = InsightMemory(tree.insights)

    def __call__(self, text: str) -> tuple[list[Plan], list[str]]:
        try:
            answer = PlansAnswer.model_validate(parse_json(text))
        except ValidationError as exc:
            raise Rejection(schema_error(exc)) from None
        plans: list[Plan] = []
        problems: list[str] = []
        for i, draft in enumerate(answer.plans):
            if len(plans) == self.k:
                problems.append(f"plans beyond the first {self.k} ignored")
                break
            try:
                plan = self.build(draft)
                self._check_new(plan, plans)
            except Rejection as exc:
                problems.append(f"plans.{i}: {exc}")
                continue
            plans.append(plan)
        if not plans:
            raise Rejection("no usable plan: " + "; ".join(problems))
        return plans, problems

    def build(self, draft: PlanDraft) -> Plan:
        rationale = clean_text(draft.rationale, "rationale")
        base = self.parent.plan.model_dump(mode="json", exclude={"rationale"})
        base["train"]["warm_start"] = False
        if base["train"]["mode"] == TrainMode.none.value:
            base["train"]["mode"] = TrainMode.full.value  # from the base model, training is the point
        if draft.data is not None:
            if draft.data.ops is not None:
                base["data"]["ops"] = [self._op(o.op, o.params) for o in draft.data.ops]
            if draft.data.template is not None:
                if draft.data.template not in TEMPLATE_NAMES:
                    raise Rejection(
                        f"unknown template {draft.data.template!r}; use one of {list(TEMPLATE_NAMES)}"
                    )
                base["data"]["template"] = draft.data.template
        if draft.train is not None:
            base["train"].update(draft.train.model_dump(mode="json", exclude_none=True))
        if draft.seed is not None:
            base["seed"] = draft.seed
        cites = [c for c in draft.cites if c in self.cite_ids]
        base["rationale"] = rationale + (f" [cites: {', '.join(cites)}]" if cites else "")
        try:
            plan = Plan.model_validate(base)
        except ValidationError as exc:
            raise Rejection(schema_error(exc)) from None
        self._check_training(plan)
        return plan

    def _op(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        ops = registry()
        if name not in ops:
            raise Rejection(f"unknown data op {name!r}; use only {sorted(ops)}")
        blob = json.dumps(params, sort_keys=True, default=str)
        if len(blob) > MAX_PARAMS_CHARS:
            raise Rejection(
                f"data op {name!r}: params of {len(blob)} characters; keep them under {MAX_PARAMS_CHARS}"
            )
        bad = next((hostile(v) for v in _strings(params) if hostile(v)), None)
        if bad:
            raise Rejection(f"data op {name!r}: a param contains {bad}")
        error = dry_run(self.task, name, params, data_rows(self.task, self.tree))
        if error:
            raise Rejection(error)
        return {"op": name, "params": params}

    def _check_training(self, plan: Plan) -> None:
        train = plan.train
        if train.warm_start and not (self.parent.parent is not None and self.parent.ok):
            raise Rejection(
                f"warm_start needs a trained parent with a checkpoint; {self.parent.id} is not one"
            )
        if train.warm_start and train.mode.value != self.parent.plan.train.mode.value:
            raise Rejection("warm_start continues the parent's training, so it keeps the parent's mode")
        ceiling = self.memory.lr_ceiling(train.mode.value)
        if ceiling is not None and train.learning_rate >= ceiling * 0.9:
            raise Rejection(
                f"learning_rate {train.learning_rate:g} is at or above {ceiling:g}, which diverged "
                f"before for {train.mode.value} training; go lower"
            )

    def _check_new(self, plan: Plan, chosen: list[Plan]) -> None:
        key = (plan.hash, self.parent.id if plan.train.warm_start else None)
        for node in self.tree:
            if (node.plan.hash, node.parent if node.plan.train.warm_start else None) == key:
                raise Rejection(f"repeats the experiment of node {node.id}; change something")
        if any(p.hash == plan.hash for p in chosen):
            raise Rejection("repeats another plan of this answer")


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def registry() -> dict[str, str]:
    """The data ops a plan may name, each with its one-line summary (``spec/data_ops.py``)."""
    return dict(OP_SUMMARIES)


def op_summaries() -> dict[str, str]:
    """Each data op's one-line summary, for prompts."""
    return registry()


def dry_run(task: TaskSpec, name: str, params: dict[str, Any], rows: int) -> str | None:
    """The op's own complaint about these params for data of ``rows`` examples, or None. Only the op's
    bounded param checks run (``spec/data_ops.py``): no data is touched, whatever the params ask."""
    try:
        check_op(name, params, rows, task)
    except DataError as exc:
        return str(exc)
    return None


def data_rows(task: TaskSpec, tree: SearchTree) -> int:
    """The train data's size: from the run's data profile, else the sources' limits, else a default."""
    profile = tree.meta.get("profile") or {}
    rows = profile.get("train_examples") if isinstance(profile, dict) else None
    if isinstance(rows, int) and not isinstance(rows, bool) and rows > 0:
        return rows
    limits = [src.limit for src in task.data.train]
    return sum(limits) if all(limits) else DEFAULT_ROWS  # type: ignore[arg-type]


# --- insights and queries ------------------------------------------------------------------------
def check_insight(text: str) -> tuple[tuple[str, list[str]], list[str]]:
    try:
        answer = InsightAnswer.model_validate(parse_json(text))
    except ValidationError as exc:
        raise Rejection(schema_error(exc)) from None
    tags = [clean_text(t, "tags")[:40] for t in answer.tags]
    return (clean_text(answer.insight, "insight"), tags), []


def check_queries(text: str) -> tuple[list[str], list[str]]:
    try:
        answer = QueriesAnswer.model_validate(parse_json(text))
    except ValidationError as exc:
        raise Rejection(schema_error(exc)) from None
    queries = [clean_text(q, "queries")[:MAX_QUERY] for q in answer.queries]
    return [q for q in queries if q], []
