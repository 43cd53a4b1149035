"""The ``openai`` evaluation backend: greedy completions from any OpenAI-compatible server.

Plain HTTP to ``{api_base}/completions`` (``api_base`` ends in ``/v1``), e.g. ``vllm serve``.
The base model is the served model whose ``root`` is ``model_dir`` (or ``model`` when given);
a LoRA adapter is loaded once through vLLM's ``/v1/load_lora_adapter`` (the server needs
``--enable-lora`` and ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``, and must see the adapter's path)
and then asked for by name. The key, if any, comes from ``TREX_EVAL_API_KEY`` / ``OPENAI_API_KEY``.

Example::

    backend = OpenAIBackend("http://127.0.0.1:8000/v1")
    texts = backend.generate(base_dir, None, ["great movie =>"], max_new_tokens=2, batch_size=32)
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import Any

import requests

logger = logging.getLogger(__name__)

API_BASE_ENV = "TREX_EVAL_API_BASE"


class OpenAIBackend:
    name = "openai"

    def __init__(self, api_base: str, model: str | None = None, timeout_s: float = 600.0,
                 api_key: str | None = None) -> None:
        self.api_base = api_base.rstrip("/")
        self.model = model
        self.timeout_s = timeout_s
        key = api_key or os.environ.get("TREX_EVAL_API_KEY") or os.environ.get("OPENAI_API_KEY")
        self.session = requests.Session()
        if key:
            self.session.headers["Authorization"] = f"Bearer {key}"
        self._loaded: set[str] = set()
        self._lock = threading.Lock()

    @classmethod
    def from_spec(cls, spec: Any) -> OpenAIBackend:
        """From an ``EvalSpec``; ``api_base`` falls back to ``$TREX_EVAL_API_BASE``."""
        api_base = spec.api_base or os.environ.get(API_BASE_ENV)
        if not api_base:
            raise ValueError(f"eval.api_base: the openai backend needs a server URL (e.g. "
                             f"http://127.0.0.1:8000/v1); set it or ${API_BASE_ENV}")
        return cls(api_base, model=spec.api_model)

    def _get(self, path: str) -> Any:
        reply = self.session.get(f"{self.api_base}{path}", timeout=self.timeout_s)
        reply.raise_for_status()
        return reply.json()

    def _post(self, path: str, body: dict[str, Any]) -> requests.Response:
        reply = self.session.post(f"{self.api_base}{path}", json=body, timeout=self.timeout_s)
        if reply.status_code >= 400:
            raise RuntimeError(f"{path}: HTTP {reply.status_code}: {reply.text[:300]}")
        return reply

    def served_model(self, model_dir: str) -> str:
        """The served name of ``model_dir``: ``self.model``, else the model whose root is that directory."""
        if self.model:
            return self.model
        models = self._get("/models").get("data", [])
        want = str(Path(model_dir).resolve())
        for m in models:
            if m.get("parent") is None and str(Path(m.get("root") or m["id"]).resolve()) == want:
                return str(m["id"])
        names = [m["id"] for m in models if m.get("parent") is None]
        raise ValueError(f"the server at {self.api_base} serves {names}, not {model_dir}; "
                         "start it on that model or set eval.api_model")

    def _adapter(self, adapter_dir: str) -> str:
        path = str(Path(adapter_dir).resolve())
        weights = sorted(Path(path).glob("adapter_model.*"))
        stamp = max((p.stat().st_mtime_ns for p in weights), default=0)
        name = "trex-" + hashlib.sha256(f"{path}:{stamp}".encode()).hexdigest()[:12]
        with self._lock:
            if name in self._loaded:
                return name
            if name not in {m["id"] for m in self._get("/models").get("data", [])}:  # another client's?
                self._post("/load_lora_adapter", {"lora_name": name, "lora_path": path})
                logger.info("loaded LoRA adapter %s as %s on %s", path, name, self.api_base)
            self._loaded.add(name)
        return name

    def generate(self, model_dir: str, adapter_dir: str | None, prompts: list[str], max_new_tokens: int,
                 batch_size: int, allowed_token_ids: list[int] | None = None) -> list[str]:
        """``allowed_token_ids``: one token, pushed into that set by the API's ``logit_bias``."""
        model = self._adapter(adapter_dir) if adapter_dir else self.served_model(model_dir)
        texts: list[str] = []
        bias = {"logit_bias": {str(i): 100 for i in allowed_token_ids}} if allowed_token_ids else {}
        for i in range(0, len(prompts), batch_size):
            chunk = prompts[i:i + batch_size]
            body = {"model": model, "prompt": chunk, "max_tokens": 1 if bias else max_new_tokens,
                    "temperature": 0.0, "n": 1, "stream": False, **bias}
            choices = sorted(self._post("/completions", body).json()["choices"], key=lambda c: c["index"])
            if len(choices) != len(chunk):
                raise RuntimeError(f"/completions: {len(choices)} choices for {len(chunk)} prompts")
            texts += [str(c.get("text") or "").strip() for c in choices]
        return texts
