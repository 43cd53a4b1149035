"""The evaluator: one Ray actor per run and base model that keeps a vLLM engine alive across nodes.

Named ``evaluator-<run_id>-<model key>`` in namespace ``trex``; the ResearcherActor creates it
(and so owns it: it ends with the run) and hands its handle to every NodeRunner, whose
``run_plan`` sees only a plain callable (``EvaluatorClient``) in ``RunContext.evaluator``.
The actor wraps ``execute.eval_service.EvalService``: at creation it builds the base model and
starts its engine in a thread, so that the engine start overlaps the first trials; LoRA nodes
are ``LoRARequest``s on that engine, full fine-tunes get a short-lived engine, and without vLLM
(not installed, engine start failed) it answers with HF generate and says so.

The actor holds ``eval.num_gpus`` GPUs (0 on CPU machines; its engine process uses one core).

Example::

    handle = evaluator_for(task, run_id="sentiment-1", cache_dir="runs/cache")
    ctx = RunContext(..., evaluator=EvaluatorClient(handle))
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray

from trex_ray.spec import TaskSpec

log = logging.getLogger(__name__)

NAMESPACE = "trex"
NEEDS_EVALUATOR = ("auto", "vllm")


def model_key(task: TaskSpec) -> str:
    blob = f"{task.model.id}@{task.model.revision or ''}"
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def evaluator_name(run_id: str, task: TaskSpec) -> str:
    return f"evaluator-{run_id}-{model_key(task)}"


@ray.remote(num_cpus=0, max_concurrency=32)
class Evaluator:
    def __init__(self, task: dict[str, Any], cache_dir: str) -> None:
        from trex_ray.execute.eval_service import EvalService
        from trex_ray.execute.vllm_backend import EngineSettings
        from trex_ray.runtime.env import apply_to_this_process

        apply_to_this_process()
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
        self.task = TaskSpec.model_validate(task)
        self.cache_dir = cache_dir
        spec = self.task.eval
        self.service = EvalService(EngineSettings.from_spec(spec), backend=spec.backend,
                                   spare=spec.spare_engine, files_dir=str(Path(cache_dir) / "eval-files"))
        self.ready = threading.Event()
        threading.Thread(target=self._warm, name="evaluator-warm", daemon=True).start()

    def _warm(self) -> None:
        from trex_ray.execute.models import materialize_base_model

        try:
            base = materialize_base_model(self.task.model, Path(self.cache_dir))
            self.service.base_dir = str(base.resolve())
        except Exception as exc:  # noqa: BLE001 - nodes then send their own copy of the base model
            log.warning("evaluator: base model unavailable here (%s)", exc)
        finally:
            self.ready.set()
        self.service.warm()

    def generate(self, request: dict[str, Any]) -> dict[str, Any]:
        self.ready.wait()
        return self.service(request)

    def stats(self) -> dict[str, Any]:
        return self.service.stats()

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        self.service.close()


@dataclass
class EvaluatorClient:
    """The plain callable ``run_plan`` gets (``RunContext.evaluator``): a request to the actor, its reply.
    Folders the actor cannot see (it runs on another machine) are sent along and asked again."""

    handle: Any
    timeout_s: float | None = None

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        from ray.exceptions import RayActorError

        from trex_ray.execute.eval_service import EvalService, pack_dirs

        try:
            reply = ray.get(self.handle.generate.remote(request), timeout=self.timeout_s)
            if reply.get("missing"):
                files = pack_dirs(reply["missing"])
                again = self.handle.generate.remote({**request, "files": files})
                reply = ray.get(again, timeout=self.timeout_s)
        except RayActorError as exc:  # the evaluator is gone (killed, out of memory): evaluate here
            log.warning("evaluator unavailable (%s); this node evaluates with HF generate",
                        str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__)
            reply = EvalService(backend="hf")({**request, "base": False})
        return reply


def evaluator_for(task: TaskSpec, run_id: str, cache_dir: str) -> Any:
    """The run's evaluator for the task's base model, created if needed (by the caller, who owns it);
    None when the task evaluates without one (``eval.backend`` hf or openai)."""
    if task.eval.backend not in NEEDS_EVALUATOR:
        return None
    options: dict[str, Any] = {"name": evaluator_name(run_id, task), "namespace": NAMESPACE,
                               "get_if_exists": True}
    if task.eval.num_gpus:
        options["num_gpus"] = task.eval.num_gpus
    return Evaluator.options(**options).remote(task.model_dump(mode="json"), cache_dir)


def close_evaluator(handle: Any, timeout: float = 30.0) -> None:
    """End the evaluator's engines, then the actor."""
    if handle is None:
        return
    try:
        ray.get(handle.close.remote(), timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - it is killed either way
        log.warning("evaluator close: %s", exc)
    ray.kill(handle)
