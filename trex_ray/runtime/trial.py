"""What a NodeRunner adds around the training launcher: shipping files, classifying failures.

``TrialLauncher`` wraps a ``TrainLauncher`` (``RayTrainLauncher``) for one attempt of one node:

* **files across machines** — when ``storage_path`` is an object store, a trial's workers may sit
  on machines that have never seen its base model, prepared data or parent checkpoint: the
  NodeRunner pushes those cache entries to ``<storage>/cache/...`` (keyed like the local cache:
  by content hash), each worker pulls what its machine lacks, and rank 0 uploads the new
  checkpoint to ``<run>/nodes/<id>/checkpoint`` before returning, so the checkpoint is stored
  before the Researcher journals ``node_finished``;
* **why a launch failed** — ``lost``: a worker or machine died (not an exception of the training
  code), which the NodeRunner hands back beside the result; the trial loop
  (``research/orchestrator.py``), which alone classifies failures, then records the attempt ``lost``
  (retried elsewhere) instead of ``error``;
* **test faults** — ``runtime/faults.py``, inert unless ``TREX_TEST_FAULTS`` is set.

Example::

    launcher = TrialLauncher(RayTrainLauncher(...), node_id="n3", attempt=1, shipping=None)
    result = launcher.finalize(run_plan(plan, ctx_with(launcher)))  # and launcher.lost: why, if lost
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trex_ray.runtime import faults
from trex_ray.spec import Result
from trex_ray.store.files import download_dir, ensure_local, is_complete_dir, join, upload_dir

log = logging.getLogger(__name__)

Loop = Any  # Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Shipping:
    """Local paths a trial's workers need and where each lives in the object store."""

    cache_dir: str  # the local cache root, the same path on every machine
    remote_cache: str  # <storage>/cache
    checkpoint_uri: str  # where this node's checkpoint is stored: <run>/nodes/<id>/checkpoint
    extra: dict[str, str] = field(default_factory=dict)  # local path -> URI (a parent checkpoint)

    def remote_for(self, local: str | None) -> str | None:
        """The URI of a local cache entry (``<cache>/data/<hash>`` -> ``<remote>/data/<hash>``)."""
        if not local:
            return None
        if local in self.extra:
            return self.extra[local]
        try:
            rel = Path(local).absolute().relative_to(Path(self.cache_dir).absolute())
        except ValueError:
            return None  # outside the cache (a local model folder): assumed on every machine
        return join(self.remote_cache, *rel.parts)

    def push(self, paths: list[str | None]) -> None:
        """Upload cache entries the store lacks (content-addressed: never overwritten)."""
        for local in paths:
            uri = self.remote_for(local)
            if uri is None or local is None or local in self.extra or not Path(local).is_dir():
                continue
            if not is_complete_dir(uri):
                upload_dir(local, uri)

    def pull(self, paths: list[str | None]) -> None:
        """Download entries this machine lacks."""
        for local in paths:
            uri = self.remote_for(local)
            if uri and local and not Path(local).is_dir():
                download_dir(uri, local)


def _needed(config: dict[str, Any]) -> list[str | None]:
    data = str(Path(config["train_path"]).parent) if config.get("train_path") else None
    return [config.get("base_dir"), data, config.get("parent_checkpoint")]


@dataclass
class _WorkerLoop:
    """The loop as it runs on each training worker: pull inputs, maybe a test fault, push the checkpoint."""

    loop: Loop
    node_id: str
    fault: str | None
    shipping: Shipping | None

    def __call__(self, config: dict[str, Any]) -> dict[str, Any]:
        if self.shipping is not None:
            self.shipping.pull(_needed(config))
        if self.fault is not None:
            config = faults.inject(self.fault, self.node_id, config)
        result = self.loop(config)
        if self.shipping is not None and result.get("checkpoint") and int(os.environ.get("RANK", "0")) == 0:
            result["checkpoint_uri"] = upload_dir(result["checkpoint"], self.shipping.checkpoint_uri)
        return result


class TrialLauncher:
    """A ``TrainLauncher`` for one attempt of one node (see the module docstring)."""

    def __init__(self, inner: Any, node_id: str, attempt: int = 1, shipping: Shipping | None = None) -> None:
        self.inner = inner
        self.node_id = node_id
        self.attempt = attempt
        self.shipping = shipping
        self.lost: str | None = None  # why the attempt was lost, when a worker or machine died
        self.checkpoint_uri: str | None = None

    def launch(self, loop: Loop, config: dict[str, Any]) -> dict[str, Any]:
        if self.shipping is not None:
            self.shipping.push(_needed(config))
        fault = faults.planned(self.node_id, self.attempt)
        try:
            result = self.inner.launch(_WorkerLoop(loop, self.node_id, fault, self.shipping), config)
        except Exception as exc:
            self.lost = lost_reason(exc)
            raise
        if result.get("checkpoint_uri"):  # rank 0 may have trained on another machine
            self.checkpoint_uri = result["checkpoint_uri"]
            ensure_local(self.checkpoint_uri, result["checkpoint"])
        return result

    def finalize(self, result: Result) -> Result:
        """The trial's Result with the stored checkpoint's URI (a failure's kind is not decided here)."""
        if self.checkpoint_uri and result.checkpoint:
            return result.model_copy(update={"checkpoint": self.checkpoint_uri})
        return result


def lost_reason(exc: BaseException) -> str | None:
    """Why a training failure was the cluster's (a worker or machine died), or None for the code's."""
    from ray.exceptions import RayActorError
    from ray.train.v2._internal.exceptions import (
        WorkerGroupStartupFailedError,
        WorkerHealthCheckFailedError,
        WorkerHealthCheckTimeoutError,
    )
    from ray.train.v2.api.exceptions import ControllerError, WorkerGroupError

    died = (RayActorError, WorkerHealthCheckFailedError, WorkerHealthCheckTimeoutError)
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, RayActorError):
            return "a training worker died"
        if isinstance(exc, WorkerGroupError):  # user errors come unwrapped; dead workers fail health checks
            ranks = sorted(rank for rank, e in exc.worker_failures.items() if isinstance(e, died))
            return f"training worker {ranks[0]} was lost (its process or machine died)" if ranks else None
        failure = getattr(exc, "controller_failure", None)
        if isinstance(exc, ControllerError) and isinstance(failure, WorkerGroupStartupFailedError):
            return "the training workers could not start (a machine died)"
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return None


def parent_local(cache_dir: str, uri: str) -> str:
    """Where a stored parent checkpoint is kept on this machine (the same path on every machine)."""
    return str(Path(cache_dir) / "checkpoints" / hashlib.sha256(uri.encode()).hexdigest()[:16])
