"""``trex status`` from another shell: ask the live Researcher actor, if its cluster answers.

The cluster's address comes from ``--address``, ``RAY_ADDRESS``, or the hint the driver leaves in
the run folder (``ray_address``). The GCS port is probed first (one second), so a dead cluster
costs no ``ray.init`` retries; anything that fails means "not live" and the caller reads the
store read-only instead (``trex_ray.store.read_tree``).
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any

from trex_ray.runtime.paths import scratch_root
from trex_ray.store.files import basename, is_remote

log = logging.getLogger(__name__)

ADDRESS_HINT = "ray_address"
STATUS_TIMEOUT_S = 10.0


def cluster_address(run_dir: str, address: str | None = None) -> str | None:
    """Where the run's cluster should be: an explicit address, RAY_ADDRESS, or the driver's hint."""
    if address or os.environ.get("RAY_ADDRESS"):
        return address or os.environ["RAY_ADDRESS"]
    local = scratch_root() / basename(run_dir) if is_remote(run_dir) else Path(run_dir)
    hint = local / ADDRESS_HINT
    return (hint.read_text().strip() or None) if hint.is_file() else None


def _reachable(address: str, timeout: float = 1.0) -> bool:
    if "://" in address:  # ray://host:port (client) or http:// (dashboard): let ray.init decide
        return True
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def live_status(run_dir: str, address: str | None = None) -> dict[str, Any] | None:
    """The running Researcher's ``status()`` summary, or None when it cannot be reached."""
    target = cluster_address(run_dir, address)
    if not target or not _reachable(target):
        return None
    try:
        import ray
    except ImportError:  # Ray not installed here: the store is read instead
        return None

    from trex_ray.runtime.auth import align_auth_mode
    from trex_ray.runtime.researcher_actor import NAMESPACE, actor_name

    align_auth_mode()
    started_here = not ray.is_initialized()
    try:
        if started_here:
            ray.init(address=target, namespace=NAMESPACE, log_to_driver=False, logging_level=logging.ERROR)
        actor = ray.get_actor(actor_name(basename(run_dir)), namespace=NAMESPACE)
        return dict(ray.get(actor.status.remote(), timeout=STATUS_TIMEOUT_S))
    except Exception as exc:  # no such actor, a cluster going away, auth: not live
        log.debug("no live status for %s at %s: %s", run_dir, target, exc)
        return None
    finally:
        if started_here and ray.is_initialized():
            ray.shutdown()
