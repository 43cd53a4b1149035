"""FT-Bench conversions: a source's own records, in its real schema, to ``(input, target)`` text pairs.

A data source names one with ``convert: <name>`` (``spec.DataSource``); ``execute/sources.py`` reads
the source's records (a hub split, a hub repo's ``data_file``, a URL or a local file), calls the
conversion, and treats its pairs as a text source. Tasks whose source is already input / target
columns (ACI-Bench, TOMG-Bench, HoC, SST-2) need none. Schemas are documented in docs/ftbench.md
with what is known and what is guessed.

Example::

    >>> convert("econlogicqa", [{"Question": "Order:", "A": "x", "B": "y", "C": "z", "D": "w",
    ...                          "Answer": "B, A, D, C"}])
    [('Order:\\nA. x\\nB. y\\nC. z\\nD. w', 'B, A, D, C')]
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from trex_ray.spec.builtin import ConvertError

__all__ = ["CONVERTERS", "VERSION", "ConvertError", "convert"]

VERSION = 1  # part of the prepared-data cache key of converted sources: bump when a conversion changes
Record = dict[str, Any]
Pair = tuple[str, str]
LETTERS = "ABCDEFGH"


def _need(rec: Record, row: int, *columns: str) -> list[Any]:
    missing = [c for c in columns if c not in rec or rec[c] is None]
    if missing:
        raise ConvertError(f"row {row}: no column {missing[0]!r} (has {sorted(rec)})")
    return [rec[c] for c in columns]


def _options(rec: Record) -> str:
    """``A. ...`` lines for the option columns a record has (A, B, C, ... in order)."""
    lines = []
    for letter in LETTERS:
        value = rec.get(letter)
        if value is None or str(value).strip() == "":
            break
        lines.append(f"{letter}. {str(value).strip()}")
    return "\n".join(lines)


def _truth(value: Any) -> str:
    text = str(value).strip().lower()
    return {"1": "true", "0": "false", "yes": "true", "no": "false"}.get(text, text)


def choice_question(question_col: str, answer_col: str) -> Callable[[list[Record]], list[Pair]]:
    """A question column, option columns A, B, C, ... and an answer column (letters, or true/false)."""

    def run(records: list[Record]) -> list[Pair]:
        pairs = []
        for i, rec in enumerate(records):
            question, answer = _need(rec, i, question_col, answer_col)
            options = _options(rec)
            text = f"{str(question).strip()}\n{options}" if options else str(question).strip()
            target = str(answer).strip() if options else _truth(answer)
            pairs.append((text, target))
        return pairs

    return run


CSBENCH_SCORED = {"multiple-choice", "assertion"}


def csbench(records: list[Record]) -> list[Pair]:
    """CS-Bench (``ID, Domain, SubDomain, Format, Tag, Language, Question, A-D, Answer``): multiple
    choice and assertion items; fill-in-the-blank and open-ended ones (scored by an LLM judge in
    CS-Bench) are left out."""
    kept = [r for r in records if str(r.get("Format", "Multiple-choice")).strip().lower() in CSBENCH_SCORED]
    return choice_question("Question", "Answer")(kept)


def lawbench(records: list[Record]) -> list[Pair]:
    """LawBench (``instruction, question, answer``): the instruction, then the question."""
    pairs = []
    for i, rec in enumerate(records):
        instruction, question, answer = _need(rec, i, "instruction", "question", "answer")
        pairs.append((f"{str(instruction).strip()}\n{str(question).strip()}", str(answer).strip()))
    return pairs


def omebench(records: list[Record]) -> list[Pair]:
    """oMeBench (``reactants_smiles, products_smiles, conditions, mechanism[{type, subtype,
    intermediate_smiles, step_weight}]``): the reaction in, the mechanism as a JSON list out."""
    pairs = []
    for i, rec in enumerate(records):
        reactants, products, steps = _need(rec, i, "reactants_smiles", "products_smiles", "mechanism")
        text = (f"Reactants: {'.'.join(_listed(reactants))}\nProducts: {'.'.join(_listed(products))}\n"
                f"Conditions: {rec.get('conditions') or 'none given'}")
        keep = ("subtype", "intermediate_smiles", "step_weight")
        if isinstance(steps, str):
            steps = json.loads(steps)
        mechanism = [{k: s[k] for k in keep if s.get(k) is not None} for s in steps]
        pairs.append((text, json.dumps(mechanism, ensure_ascii=False)))
    return pairs


def _listed(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def gta(records: list[Record]) -> list[Pair]:
    """GTA (``dataset.json``: ``{id: {tools, files, dialogs, gt_answer}}``): one example per query,
    its first tool call (the tools available, the user's query and its files in; the call out as
    ``{"name", "arguments"}`` JSON), as GTA's step-by-step mode asks for the next call."""
    pairs = []
    for i, rec in enumerate(records):
        tools, dialogs = _need(rec, i, "tools", "dialogs")
        if isinstance(dialogs, str):
            dialogs = json.loads(dialogs)
        call = next((t for t in dialogs if t.get("role") == "assistant" and t.get("tool_calls")), None)
        query = next((t.get("content") for t in dialogs if t.get("role") == "user"), None)
        if call is None or query is None:
            continue  # a query answered without a tool has no call to learn
        function = call["tool_calls"][0]["function"]
        names = ", ".join(str(t.get("name", t)) if isinstance(t, dict) else str(t) for t in tools)
        files = ", ".join(str(f.get("path", f)) if isinstance(f, dict) else str(f)
                          for f in rec.get("files") or [])
        text = f"Tools: {names}\n" + (f"Files: {files}\n" if files else "") + f"User: {query}"
        target = {"name": function["name"], "arguments": function.get("arguments", {})}
        pairs.append((text, json.dumps(target, ensure_ascii=False, sort_keys=True)))
    return pairs


CONVERTERS: dict[str, Callable[[list[Record]], list[Pair]]] = {
    "csbench": csbench,
    "openfindata": choice_question("question", "answer"),
    "econlogicqa": choice_question("Question", "Answer"),
    "gta": gta,
    "lawbench": lawbench,
    "omebench": omebench,
}


def convert(name: str, records: list[Record]) -> list[Pair]:
    """The named conversion of ``records``; ``ValueError`` naming the known ones for an unknown name."""
    if name not in CONVERTERS:
        raise ValueError(f"conversion {name!r} is unknown; use one of {sorted(CONVERTERS)}")
    return CONVERTERS[name](records)
