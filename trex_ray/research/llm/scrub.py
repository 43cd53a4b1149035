"""Keep secrets out of everything the LLM planner writes: call logs, logs, plans, reports.

Secrets are the values of environment variables whose names look secret (``*_API_KEY``,
``*_TOKEN``, ``*SECRET*``, ``*PASSWORD*`` ...) plus anything shaped like a key (``sk-...``,
``hf_...``, ``Bearer ...``). Example::

    scrub = Scrubber()
    scrub.text("key sk-abc123def456 leaked")   # 'key [REDACTED] leaked'
    scrub.data({"messages": [...]})            # the same, through dicts and lists
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[REDACTED]"
_SECRET_NAME = re.compile(r"(API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|_KEY$|^KEY$)", re.IGNORECASE)
_NOT_SECRET = re.compile(r"^(TOKENIZERS_PARALLELISM|.*_TOKENS?_(LIMIT|MAX)|KEY_?PATH)$", re.IGNORECASE)
_PATTERNS = [
    re.compile(r"sk-[A-Za-z0-9_\-]{6,}"),  # OpenAI, Anthropic and their look-alikes
    re.compile(r"(?i)bearer\s+[A-Za-z0-9._\-~+/=]{6,}"),
    re.compile(r"\bhf_[A-Za-z0-9]{10,}"),  # Hugging Face
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),  # AWS access key id
    re.compile(r"\bAIza[0-9A-Za-z_\-]{20,}"),  # Google
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"),  # GitHub
    re.compile(r"\bxox[abprs]-[A-Za-z0-9\-]{10,}"),  # Slack
    re.compile(r"(?i)(api[_-]?key|token|secret|password)(\s*[=:]\s*)[^\s,;\"']{6,}"),
]
MIN_SECRET_LEN = 6
PREFIX_LEN = 10  # a secret's first characters alone (as masked in provider error messages) are scrubbed too


def env_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of secret-looking environment variables, longest first."""
    environ = os.environ if environ is None else environ
    values = {
        v
        for k, v in environ.items()
        if _SECRET_NAME.search(k) and not _NOT_SECRET.match(k) and len(v) >= MIN_SECRET_LEN
    }
    return sorted(values, key=len, reverse=True)


class Scrubber:
    def __init__(self, extra: list[str] | None = None, environ: Mapping[str, str] | None = None) -> None:
        values = [*env_secrets(environ), *(extra or [])]
        fragments = set(values) | {v[:PREFIX_LEN] for v in values if len(v) >= 16}
        self.fragments = sorted(fragments, key=len, reverse=True)

    def text(self, value: str) -> str:
        for fragment in self.fragments:
            if fragment in value:
                value = value.replace(fragment, REDACTED)
        for pattern in _PATTERNS:
            value = pattern.sub(_redact, value)
        return value

    def data(self, value: Any) -> Any:
        """A copy of a JSON-like value with every string scrubbed (keys included)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self.text(str(k)): self.data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(v) for v in value]
        return value


def _redact(match: re.Match[str]) -> str:
    if match.lastindex and match.lastindex >= 2:  # "api_key: value" keeps its label
        return f"{match.group(1)}{match.group(2)}{REDACTED}"
    return REDACTED


class ScrubFilter(logging.Filter):
    """A logging filter that scrubs each record's message (attach it to chatty third-party loggers)."""

    def __init__(self, scrubber: Scrubber) -> None:
        super().__init__()
        self.scrubber = scrubber

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is still scrubbed as text
            message = str(record.msg)
        record.msg, record.args = self.scrubber.text(message), None
        return True
