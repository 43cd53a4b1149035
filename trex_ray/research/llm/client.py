"""One LLM conversation step through litellm: retries, repair, budgets, and a call log.

``LLMClient.ask`` sends a prompt with one function ("tool") the model must call, checks the
answer with a caller-supplied ``check`` and, if the check rejects it, re-asks with the reason
(at most ``max_repairs`` times). Timeouts, 429s, 5xx and connection errors are retried with
exponential backoff (``max_retries``); authentication / not-found errors and spent budgets
disable the client for the rest of the run. Every call is appended, scrubbed of secrets, to the
run's ``llm_calls.jsonl`` (``store/records.py``: its folder or bucket). Nothing the model writes is
executed. Example::

    client = LLMClient(task.search.llm, run_dir)
    plans = client.ask("strategy", messages, tool, check=lambda text: (parse(text), []), node="n3")
    # raises LLMUnavailable (transport, budget) or Rejected (no valid answer after repairs)
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from trex_ray.research.llm.ledger import Answer, CallLog, Spend, approx_tokens
from trex_ray.research.llm.scrub import Scrubber, ScrubFilter
from trex_ray.spec.task import LLMSpec

log = logging.getLogger(__name__)

ANSWER_TOKENS = 2048  # cap on one answer's length (sent as max_tokens)
MAX_ANSWER_CHARS = 16_000  # a longer answer is rejected unread
MAX_FAILED_STEPS = 3  # steps in a row with no usable answer (unreachable or invalid): then it is off
MAX_REASON_CHARS = 600
_FATAL_STATUS = {401, 403, 404}  # wrong key or model: retrying cannot help
_THIRD_PARTY_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm", "openai", "httpx")
T = TypeVar("T")
_LOG_FILTER = ScrubFilter(Scrubber())  # on litellm's, openai's and httpx's loggers


def load_litellm() -> Any:
    """Import litellm (slow, so only when a call is made) with the local cost map and no chatter."""
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # never fetch prices from the network
    import litellm

    litellm.suppress_debug_info = True
    litellm.drop_params = True  # a provider without e.g. temperature still answers
    return litellm


class LLMUnavailable(RuntimeError):
    """The LLM could not be asked (transport failure, budget spent, disabled)."""


class Rejected(ValueError):
    """Every answer of a step failed its check; the message is the last reason."""


class Rejection(ValueError):
    """Raised by a ``check``: this answer is unusable; the message tells the model how to fix it."""


class LLMClient:
    def __init__(
        self,
        spec: LLMSpec,
        run_dir: str | Path | None = None,
        backoff_s: float = 1.0,
        scrubber: Scrubber | None = None,
    ) -> None:
        if spec.model is None:
            raise ValueError("search.llm.model: the llm planner needs a model (provider/name)")
        self.spec = spec
        self.scrub = scrubber or Scrubber()
        self.log = CallLog(run_dir, self.scrub)  # CALL_LOG in the run's folder or bucket
        self.spend = Spend(spec, self.log.records)
        self.backoff_s = backoff_s
        self.disabled: str | None = None
        self._failed_steps = 0
        self._tools_ok = True
        self._api_key: str | None = None
        self._ready = False
        self._lock = threading.RLock()

    @property
    def available(self) -> bool:
        return self.disabled is None

    def disable(self, reason: str) -> None:
        if self.disabled is None:
            self.disabled = self.scrub.text(reason)
            log.warning(
                "LLM planner off for the rest of the run: %s; the heuristic planner takes over", self.disabled
            )
            self.note("disabled", stage=None, reason=self.disabled)

    def note(self, kind: str, stage: str | None, **fields: Any) -> None:
        """Record a step that is not a call: a fallback, a search, the budget stop."""
        self.log.write({"kind": kind, "stage": stage, **fields})

    # --- one step: ask, check, repair ------------------------------------------------------
    def ask(
        self,
        stage: str,
        messages: list[dict[str, Any]],
        tool: dict[str, Any],
        check: Callable[[str], tuple[T, list[str]]],
        node: str | None = None,
    ) -> T:
        with self._lock:
            if self.disabled is not None:
                raise LLMUnavailable(self.disabled)
            try:
                value = self._ask(stage, self.scrub.data(messages), tool, check, node)
            except (LLMUnavailable, Rejected):
                self._failed_steps += 1
                if self._failed_steps >= MAX_FAILED_STEPS:
                    self.disable(f"{self._failed_steps} steps in a row got no usable answer")
                raise
            self._failed_steps = 0
            return value

    def _ask(
        self,
        stage: str,
        messages: list[dict[str, Any]],
        tool: dict[str, Any],
        check: Callable[[str], tuple[T, list[str]]],
        node: str | None,
    ) -> T:
        reason = "no answer"
        for repair in range(self.spec.max_repairs + 1):
            answer = self._call(stage, messages, tool, node, repair)
            try:
                value, problems = check(answer.text)
            except Rejection as exc:
                reason = self.scrub.text(str(exc))[:MAX_REASON_CHARS]
                self._record_answer(stage, node, repair, messages, answer, "rejected", reason)
                messages = [
                    *messages,
                    {"role": "assistant", "content": answer.text[:2000]},
                    {"role": "user", "content": _repair_prompt(reason, tool)},
                ]
                continue
            outcome = "partial" if problems else "ok"
            self._record_answer(stage, node, repair, messages, answer, outcome, "; ".join(problems) or None)
            return value
        raise Rejected(f"no valid answer after {self.spec.max_repairs + 1} tries: {reason}")

    # --- transport: retries with backoff ------------------------------------------------------
    def _call(
        self, stage: str, messages: list[dict[str, Any]], tool: dict[str, Any], node: str | None, repair: int
    ) -> Answer:
        for attempt in range(self.spec.max_retries + 1):
            self._check_budget(stage, messages)
            self._prepare(load_litellm())  # the first import is slow: not part of the latency
            start = time.monotonic()
            try:
                response = self._complete(messages, tool)
            except Exception as exc:  # noqa: BLE001 - every provider error is classified below
                status, reason = _status(exc), self.scrub.text(_describe(exc))
                self.log.write(
                    {
                        "kind": "call",
                        "stage": stage,
                        "node": node,
                        "model": self.spec.model,
                        "repair": repair,
                        "attempt": attempt,
                        "messages": messages,
                        "answer": None,
                        "latency_s": round(time.monotonic() - start, 3),
                        "outcome": "error",
                        "reason": reason,
                    }
                )
                log.warning("LLM %s call failed (attempt %d): %s", stage, attempt + 1, reason)
                if status in _FATAL_STATUS:
                    self.disable(reason)
                    raise LLMUnavailable(reason) from None
                if (
                    status == 400
                    and self._tools_ok
                    and any(w in reason.lower() for w in ("tool", "function"))
                ):
                    self._tools_ok = False  # answer as JSON text instead
                    continue
                if not _retryable(status) or attempt == self.spec.max_retries:
                    raise LLMUnavailable(reason) from None
                time.sleep(self._delay(attempt, exc))
                continue
            answer = self._answer(response, time.monotonic() - start)
            self.spend.add(answer)
            return answer
        raise LLMUnavailable("the provider refused function calls and JSON answers")

    def _check_budget(self, stage: str, messages: list[dict[str, Any]]) -> None:
        reason = self.spend.exhausted(approx_tokens(json.dumps(messages)))
        if reason is not None:
            self.note(
                "budget",
                stage=stage,
                reason=reason,
                tokens=self.spend.tokens,
                dollars=round(self.spend.dollars, 6),
            )
            self.disable(reason)
            raise LLMUnavailable(reason)

    def _delay(self, attempt: int, exc: Exception) -> float:
        delay = min(30.0, self.backoff_s * 2**attempt) * (0.5 + random.random())
        response = getattr(exc, "response", None)
        retry_after = getattr(getattr(response, "headers", None), "get", lambda _k: None)("retry-after")
        try:
            return max(delay, min(60.0, float(retry_after))) if retry_after is not None else delay
        except ValueError:
            return delay

    def _complete(self, messages: list[dict[str, Any]], tool: dict[str, Any]) -> Any:
        litellm = load_litellm()
        self._prepare(litellm)
        kwargs: dict[str, Any] = {
            "model": self.spec.model,
            "messages": messages,
            "timeout": self.spec.timeout_s,
            "max_retries": 0,
            "temperature": self.spec.temperature,
            "max_tokens": ANSWER_TOKENS,
        }
        if self.spec.api_base:
            kwargs["api_base"] = self.spec.api_base
        if self._api_key is not None:
            kwargs["api_key"] = self._api_key
        if self._tools_ok:
            kwargs["tools"] = [tool]
            kwargs["tool_choice"] = {"type": "function", "function": {"name": tool["function"]["name"]}}
        return litellm.completion(**kwargs)

    def _prepare(self, litellm: Any) -> None:
        if self._ready:
            return
        _LOG_FILTER.scrubber = self.scrub  # the latest client's view of the secrets
        for name in _THIRD_PARTY_LOGGERS:
            logger = logging.getLogger(name)
            if _LOG_FILTER not in logger.filters:
                logger.addFilter(_LOG_FILTER)
        if self.spec.api_base:  # a self-hosted server often needs no key, but the SDK wants one
            try:
                env = litellm.validate_environment(model=self.spec.model, api_base=self.spec.api_base)
                self._api_key = None if env.get("keys_in_environment", True) else "none"
            except Exception:  # noqa: BLE001 - unknown provider: let litellm decide
                self._api_key = None
        self._ready = True

    def _answer(self, response: Any, latency: float) -> Answer:
        choices = getattr(response, "choices", None) or [None]
        message = getattr(choices[0], "message", None)
        calls = getattr(message, "tool_calls", None) or []
        function = getattr(calls[0], "function", None) if calls else None
        text = (
            getattr(function, "arguments", None)
            if function is not None
            else getattr(message, "content", None)
        )
        text = text if isinstance(text, str) else ("" if text is None else json.dumps(text, default=str))
        usage = getattr(response, "usage", None)
        prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion = int(getattr(usage, "completion_tokens", 0) or 0) or approx_tokens(text)
        return Answer(
            text=text,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost=self._cost(response),
            latency_s=round(latency, 3),
            via_tool=function is not None,
        )

    def _cost(self, response: Any) -> float | None:
        try:
            return float(load_litellm().completion_cost(completion_response=response))
        except Exception:  # noqa: BLE001 - a model without a known price
            if self.spec.max_dollars is not None and not getattr(self, "_warned_price", False):
                self._warned_price = True
                log.warning(
                    "no price known for %s: the dollar budget is not tracked; the token budget is",
                    self.spec.model,
                )
            return None

    def _record_answer(
        self,
        stage: str,
        node: str | None,
        repair: int,
        messages: list[dict[str, Any]],
        answer: Answer,
        outcome: str,
        reason: str | None,
    ) -> None:
        self.log.write(
            {
                "kind": "call",
                "stage": stage,
                "node": node,
                "model": self.spec.model,
                "repair": repair,
                "messages": messages,
                "answer": answer.text[:MAX_ANSWER_CHARS],
                "via_tool": answer.via_tool,
                "prompt_tokens": answer.prompt_tokens,
                "completion_tokens": answer.completion_tokens,
                "cost": answer.cost,
                "latency_s": answer.latency_s,
                "outcome": outcome,
                "reason": reason,
                "spent": {"tokens": self.spend.tokens, "dollars": round(self.spend.dollars, 6)},
            }
        )


def _repair_prompt(reason: str, tool: dict[str, Any]) -> str:
    name = tool["function"]["name"]
    return (
        f"Your answer was rejected: {reason}\n"
        f"Answer again by calling {name} with arguments that fix this (or, if you cannot call "
        "functions, with only the JSON object of its arguments). Nothing you write is executed: "
        "only the schema's fields are read, and anything else is rejected."
    )


def _status(exc: Exception) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def _retryable(status: int | None) -> bool:
    return status is None or status in (408, 409, 425, 429) or status >= 500


def _describe(exc: Exception) -> str:
    status = _status(exc)
    text = " ".join(str(exc).split())[:MAX_REASON_CHARS]
    return f"{type(exc).__name__}{f' {status}' if status else ''}: {text}"
