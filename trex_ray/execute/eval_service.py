"""The evaluation service: which backend evaluates a node, and the service that keeps vLLM engines.

``backend_for(plan, ctx, base_dir)`` picks the backend ``run_plan`` evaluates with: the plan's
``eval.backend`` unless ``auto``, else the task's ``eval.backend``; ``auto`` and ``vllm`` go to
the run's evaluator (``ctx.evaluator``) when there is one.

``EvalService`` is that evaluator without Ray (the runtime's ``Evaluator`` actor wraps one): it
answers requests with vLLM — one long-lived engine for the base model, LoRA adapters swapped in,
concurrent requests merged into one engine batch, a short-lived engine for any other model
directory — and with HF generate when vLLM is not installed or its engine cannot start (one
warning; the reply says ``backend: hf``).

A request is plain data (it crosses Ray)::

    {"base": True, "model_dir": "/cache/models/tiny-llama-…", "adapter_dir": "runs/x/nodes/n3/checkpoint",
     "prompts": ["great movie =>"], "max_new_tokens": 2, "batch_size": 64, "allowed_token_ids": None}

and a reply ``{"completions": [...], "backend": "vllm", "seconds": 0.4, "engine_starts": 0}``.
``base`` True means "the task's base model": the service uses its own copy of it. A path the
service cannot see (another machine) is answered ``{"missing": [path]}``; the caller then sends
the folders' files along (``pack_dirs``).

Example::

    service = EvalService(EngineSettings(), base_dir=str(base))
    backend = ServiceBackend(service, str(base))
    metric, metrics, samples = evaluate(backend, str(base), checkpoint, True, ds, "accuracy", 2, 64)
"""

from __future__ import annotations

import hashlib
import io
import logging
import shutil
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trex_ray.execute.context import EvalFn, RunContext
from trex_ray.execute.evaluate import EvalBackend, HFBackend
from trex_ray.execute.vllm_backend import EngineError, EngineSettings, EngineStartError, VLLMBackend
from trex_ray.spec import Plan

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "vllm", "hf", "openai")


def resolve_backend(plan: Plan, ctx: RunContext) -> str:
    """The backend a node asks for: its plan's unless ``auto``, else its task's."""
    name = plan.eval.backend if plan.eval.backend != "auto" else ctx.task.eval.backend
    if name not in BACKENDS:
        raise ValueError(f"eval.backend {name!r} is unknown; use one of {list(BACKENDS)}")
    return name


def backend_for(plan: Plan, ctx: RunContext, base_dir: str) -> EvalBackend:
    """The backend that evaluates this node (its ``name`` after ``generate`` is the one that did)."""
    name = resolve_backend(plan, ctx)
    if name == "hf":
        return HFBackend()
    if name == "openai":
        from trex_ray.execute.openai_backend import OpenAIBackend

        return OpenAIBackend.from_spec(ctx.task.eval)
    if ctx.evaluator is not None:
        return ServiceBackend(ctx.evaluator, base_dir)
    if name == "vllm":  # no evaluator here: an engine for this one evaluation
        service = EvalService(EngineSettings.from_spec(ctx.task.eval), base_dir=base_dir, backend="vllm")
        return ServiceBackend(service, base_dir, owned=True)
    return HFBackend()  # auto without an evaluator: one evaluation does not pay for an engine start


class ServiceBackend:
    """An ``EvalBackend`` over an evaluation service (an ``EvalService`` or a Ray evaluator's client)."""

    def __init__(self, service: EvalFn, base_dir: str, owned: bool = False) -> None:
        self.service = service
        self.base_dir = str(Path(base_dir).resolve())
        self.owned = owned  # close the service after one call
        self.name = "auto"
        self.last: dict[str, Any] = {}

    def generate(self, model_dir: str, adapter_dir: str | None, prompts: list[str], max_new_tokens: int,
                 batch_size: int, allowed_token_ids: list[int] | None = None) -> list[str]:
        request = {
            "base": str(Path(model_dir).resolve()) == self.base_dir, "model_dir": str(model_dir),
            "adapter_dir": str(adapter_dir) if adapter_dir else None, "prompts": list(prompts),
            "max_new_tokens": int(max_new_tokens), "batch_size": int(batch_size),
            "allowed_token_ids": list(allowed_token_ids) if allowed_token_ids else None,
        }
        try:
            reply = self.service(request)
        finally:
            if self.owned and hasattr(self.service, "close"):
                self.service.close()  # type: ignore[union-attr]
        self.name, self.last = reply["backend"], reply
        return list(reply["completions"])


@dataclass
class _Pending:
    request: dict[str, Any]
    done: threading.Event = field(default_factory=threading.Event)
    result: list[str] | None = None
    error: BaseException | None = None


class EvalService:
    """Serves evaluation requests for one base model (thread-safe; see the module docstring)."""

    def __init__(self, settings: EngineSettings | None = None, base_dir: str | None = None,
                 backend: str = "auto", spare: bool = False, files_dir: str | None = None,
                 vllm: VLLMBackend | None = None) -> None:
        """``vllm``: an engine keeper to share (tests, benchmarks); else one is made at the first need."""
        self.settings = settings or EngineSettings()
        self.base_dir = str(Path(base_dir).resolve()) if base_dir else None
        self.backend = backend
        self.spare = spare
        self.files_dir = Path(files_dir or tempfile.mkdtemp(prefix="trex-eval-files-"))
        self.disabled: str | None = None if backend in ("auto", "vllm") else f"eval backend {backend}"
        self._vllm: VLLMBackend | None = vllm
        self._init_lock = threading.Lock()
        self._batch_lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queue: list[_Pending] = []
        self.counts = {"vllm": 0, "hf": 0, "merged_batches": 0}

    # --- vLLM, or why not -------------------------------------------------------------------
    def vllm(self) -> VLLMBackend | None:
        with self._init_lock:
            if self._vllm is None and self.disabled is None:
                try:
                    self._vllm = VLLMBackend(self.settings, keep=[self.base_dir] if self.base_dir else [],
                                             spare=self.spare)
                except ImportError as exc:
                    self._disable(str(exc))
            return self._vllm

    def _disable(self, reason: str) -> None:
        if self.disabled is None:
            self.disabled = reason
            logger.warning("vLLM unavailable (%s); evaluating with HF generate", reason)

    def warm(self) -> None:
        """Start the base model's engine now (the actor does this at once, in a thread)."""
        backend = self.vllm()
        if backend is None or self.base_dir is None:
            return
        try:
            backend.warm(self.base_dir)
        except EngineError as exc:
            self._disable(f"engine start failed: {exc}")

    # --- requests ---------------------------------------------------------------------------
    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        missing = self._missing(request)
        if missing:
            return {"missing": missing}
        request = self._unpack(request)
        t0 = time.perf_counter()
        backend = self.vllm()
        starts = len(backend.stats["engine_starts"]) if backend else 0
        completions, used = None, "hf"
        if backend is not None and self.disabled is None and self._engine_pays(request):
            try:
                completions, used = self._with_vllm(backend, request), "vllm"
            except EngineStartError as exc:
                self._disable(f"engine start failed: {exc}")
            except Exception as exc:  # noqa: BLE001 - this request falls back, the engine stays
                logger.warning("vLLM could not evaluate %s (%s); this one with HF generate",
                               request.get("adapter_dir") or request["model_dir"], exc)
        if completions is None:
            completions = self._with_hf(request)
        self.counts[used] += 1
        return {"completions": completions, "backend": used, "seconds": time.perf_counter() - t0,
                "engine_starts": (len(backend.stats["engine_starts"]) - starts) if backend else 0,
                "note": self.disabled if used == "hf" else None}

    def _engine_pays(self, request: dict[str, Any]) -> bool:
        """vLLM for the base model and its adapters (one kept engine); a full fine-tune needs an engine
        of its own, which on a CPU starts in 15-25 s, longer than HF takes for a few hundred prompts: on
        CPUs those go to HF unless the task asked for ``vllm`` by name."""
        if self._model_dir(request) == self.base_dir or self.backend == "vllm":
            return True
        import torch

        return torch.cuda.is_available()

    def _model_dir(self, request: dict[str, Any]) -> str:
        return self.base_dir if request.get("base") and self.base_dir else str(request["model_dir"])

    def _with_hf(self, request: dict[str, Any]) -> list[str]:
        return HFBackend().generate(
            self._model_dir(request), request.get("adapter_dir"), list(request["prompts"]),
            int(request["max_new_tokens"]), int(request.get("batch_size") or 64),
            allowed_token_ids=request.get("allowed_token_ids"),
        )

    def _with_vllm(self, backend: VLLMBackend, request: dict[str, Any]) -> list[str]:
        model_dir = self._model_dir(request)
        if model_dir != self.base_dir:  # a full fine-tune: its own short-lived engine, nothing to merge
            return backend.generate_many(model_dir, [_job(request)])[0]
        return self._merged(backend, _Pending(request))

    def _merged(self, backend: VLLMBackend, mine: _Pending) -> list[str]:
        """Requests for the base model that arrive while the engine is busy go in its next batch together."""
        with self._queue_lock:
            self._queue.append(mine)
        with self._batch_lock:
            if not mine.done.is_set():
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._run_batch(backend, batch)
        mine.done.wait()
        if mine.error is not None:
            raise mine.error
        assert mine.result is not None
        return mine.result

    def _run_batch(self, backend: VLLMBackend, batch: list[_Pending]) -> None:
        jobs = [_job(p.request) for p in batch]
        try:
            results = backend.generate_many(str(self.base_dir), jobs)
        except EngineError as exc:
            if len(batch) == 1:
                batch[0].error = exc
                batch[0].done.set()
                return
            for p in batch:  # one bad adapter must not send the others to HF: one by one
                self._run_batch(backend, [p])
            return
        self.counts["merged_batches"] += len(batch) > 1
        for p, result in zip(batch, results, strict=True):
            p.result = result
            p.done.set()

    # --- files from another machine ---------------------------------------------------------
    def _missing(self, request: dict[str, Any]) -> list[str]:
        files = request.get("files") or {}
        paths = [request.get("adapter_dir")] + ([] if request.get("base") and self.base_dir else
                                                [request.get("model_dir")])
        return [p for p in paths if p and p not in files and not Path(p).is_dir()]

    def _unpack(self, request: dict[str, Any]) -> dict[str, Any]:
        files = request.get("files") or {}
        if not files:
            return request
        moved = dict(request, files=None)
        for key in ("model_dir", "adapter_dir"):
            path = request.get(key)
            if path and path in files:
                moved[key] = unpack_dir(files[path], self.files_dir)
        return moved

    def stats(self) -> dict[str, Any]:
        backend = self._vllm
        return {"backend": "hf" if self.disabled else "vllm", "disabled": self.disabled, **self.counts,
                "engine_starts": list(backend.stats["engine_starts"]) if backend else []}

    def close(self) -> None:
        if self._vllm is not None:
            self._vllm.close()


def _job(request: dict[str, Any]) -> tuple[Any, ...]:
    """A request as a vLLM job: prompts, max new tokens, adapter, allowed next tokens (or None)."""
    return (request["prompts"], request["max_new_tokens"], request.get("adapter_dir"),
            request.get("allowed_token_ids"))


def pack_dirs(paths: list[str]) -> dict[str, bytes]:
    """Each folder as an in-memory tar, keyed by its path (for an evaluator on another machine)."""
    packed = {}
    for path in paths:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            tar.add(path, arcname=".")
        packed[path] = buffer.getvalue()
    return packed


def unpack_dir(blob: bytes, into: Path) -> str:
    """Unpack a ``pack_dirs`` tar once per content into ``into``; returns the folder."""
    target = Path(into) / hashlib.sha256(blob).hexdigest()[:16]
    if not target.is_dir():
        tmp = Path(tempfile.mkdtemp(dir=into))
        with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
            tar.extractall(tmp, filter="data")
        try:
            tmp.rename(target)
        except OSError:  # another request unpacked it first
            shutil.rmtree(tmp, ignore_errors=True)
    return str(target)
