"""The LLM planner's ledger: the call log (``llm_calls.jsonl``) and the spend it adds up to.

Every record is scrubbed of secrets before it is written. The log lives with the run
(``store/records.py``: ``<run>/llm_calls.jsonl`` in a folder, ``<run>/llm_calls/<seq>.json`` in a
bucket), and the tokens and dollars spent are read back from it, so a run resumed on any machine
keeps counting against the same budget. Example::

    log = CallLog("s3://bucket/trex/r1", Scrubber())     # or a run folder; None: kept in memory
    log.write({"kind": "fallback", "stage": "strategy", "reason": "..."})
    Spend(spec, log.records).exhausted()      # None, or why the budget is spent
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trex_ray.research.llm.scrub import Scrubber
from trex_ray.spec.task import LLMSpec
from trex_ray.store.records import RecordLog

CALL_LOG = "llm_calls.jsonl"


def approx_tokens(text: str) -> int:
    return len(text) // 4 + 1


@dataclass
class Answer:
    text: str
    prompt_tokens: int
    completion_tokens: int
    cost: float | None
    latency_s: float
    via_tool: bool

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class CallLog:
    """Append-only records of calls and decisions, scrubbed before they are written; ``location``: the
    run's folder or bucket URI (None: memory only)."""

    def __init__(self, location: str | Path | None, scrubber: Scrubber) -> None:
        self.scrub = scrubber
        self.store = RecordLog(location, CALL_LOG) if location is not None else None
        self.records: list[dict[str, Any]] = self.store.read() if self.store is not None else []
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            record = self.scrub.data({"seq": len(self.records), "time": round(time.time(), 3), **record})
            self.records.append(record)
            if self.store is not None:
                self.store.append(record)
            return record


class Spend:
    """Tokens and dollars used so far (restored from the call log, so a resume keeps counting)."""

    def __init__(self, spec: LLMSpec, records: list[dict[str, Any]]) -> None:
        self.spec = spec
        calls = [r for r in records if r.get("kind") == "call"]
        self.tokens = sum(
            int(r.get("prompt_tokens") or 0) + int(r.get("completion_tokens") or 0) for r in calls
        )
        self.dollars = sum(float(r.get("cost") or 0.0) for r in calls)

    def add(self, answer: Answer) -> None:
        self.tokens += answer.tokens
        self.dollars += answer.cost or 0.0

    def exhausted(self, next_prompt_tokens: int = 0) -> str | None:
        s = self.spec
        if s.max_tokens is not None and self.tokens + next_prompt_tokens > s.max_tokens:
            return (
                f"token budget spent ({self.tokens} used, next prompt ~{next_prompt_tokens}, "
                f"max {s.max_tokens})"
            )
        if s.max_dollars is not None and self.dollars >= s.max_dollars:
            return f"dollar budget spent (${self.dollars:.4f} of ${s.max_dollars:g})"
        return None
