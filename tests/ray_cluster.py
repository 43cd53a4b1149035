"""A multi-node Ray cluster on this machine (`ray.cluster_utils.Cluster`), with logical GPUs.

The test process is the driver. Ray's Cluster records its address in the default temp dir's
`ray_current_cluster`, where any later bare `ray.init()` on this (shared) machine would find it;
the previous content of that file is put back as soon as the cluster is up, and again at the end.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")


def _address_file() -> Path:
    from ray._private.utils import get_ray_address_file

    return Path(get_ray_address_file(None))


@contextmanager
def _address_file_kept() -> Iterator[None]:
    path = _address_file()
    saved = path.read_bytes() if path.is_file() else None

    def restore() -> None:
        if saved is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(saved)

    try:
        yield
    finally:
        restore()


@contextmanager
def local_cluster(head: dict[str, Any], workers: list[dict[str, Any]]) -> Iterator[Any]:
    """Start a head and worker nodes, connect this process as the driver (namespace trex)."""
    from ray.cluster_utils import Cluster

    from trex_ray.runtime.driver import connect

    saved_mode = os.environ.get("RAY_AUTH_MODE")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # Cluster nodes start without token auth
    cluster = None
    try:
        with _address_file_kept():
            cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, **head})
            for spec in workers:
                cluster.add_node(**spec)
        cluster.wait_for_nodes()
        connect(cluster.address)
        yield cluster
    finally:
        ray.shutdown()
        if cluster is not None:
            with _address_file_kept():
                cluster.shutdown()
        if saved_mode is None:
            os.environ.pop("RAY_AUTH_MODE", None)
