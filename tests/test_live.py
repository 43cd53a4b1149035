"""`trex status` lookups without a cluster: where the address comes from, and a dead one costs ~1 s."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from trex_ray.runtime import auth
from trex_ray.runtime.live import ADDRESS_HINT, cluster_address, live_status
from trex_ray.runtime.paths import RunPaths, scratch_root
from trex_ray.spec import load_task


def test_the_address_comes_from_the_flag_the_env_or_the_run_hint(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert cluster_address(str(tmp_path)) is None
    (tmp_path / ADDRESS_HINT).write_text("10.0.0.1:6379\n")
    assert cluster_address(str(tmp_path)) == "10.0.0.1:6379"
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.2:6379")
    assert cluster_address(str(tmp_path)) == "10.0.0.2:6379"
    assert cluster_address(str(tmp_path), "10.0.0.3:6379") == "10.0.0.3:6379"


def test_a_dead_cluster_means_not_live_quickly(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    t0 = time.time()
    assert live_status(str(tmp_path), address="127.0.0.1:1") is None
    assert time.time() - t0 < 5


def test_auth_mode_is_set_only_when_unset_and_a_token_exists(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "none"))
    assert auth.align_auth_mode() is None
    (tmp_path / "token").write_text("t")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "token"))
    monkeypatch.setattr(auth.sys, "modules", {})  # Ray not imported: nothing to refresh
    assert auth.align_auth_mode() == "token"
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    assert auth.align_auth_mode() == "disabled"


@pytest.mark.parametrize("storage", [None, "runs-here"])
def test_local_run_paths(tmp_path: Path, monkeypatch, storage: str | None) -> None:
    monkeypatch.delenv("TREX_CACHE_DIR", raising=False)
    task = load_task({"name": "t", "model": {"id": "builtin:tiny-llama"},
                      "data": {"train": [{"id": "builtin:sentiment"}], "eval": {"id": "builtin:sentiment"}},
                      "metric": {"name": "accuracy"}, "storage_path": storage and str(tmp_path / storage)})
    paths = RunPaths.for_run(task, tmp_path / "a" / "r1")
    assert paths.location == str(tmp_path / "a" / "r1") and paths.run_dir == tmp_path / "a" / "r1"
    assert paths.run_id == "r1" and not paths.remote
    assert paths.cache_dir == (tmp_path / storage if storage else tmp_path / "a") / "cache"


def test_stored_run_paths_use_local_scratch(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TREX_SCRATCH", str(tmp_path / "scratch"))
    monkeypatch.delenv("TREX_CACHE_DIR", raising=False)
    task = load_task({"name": "t", "model": {"id": "builtin:tiny-llama"},
                      "data": {"train": [{"id": "builtin:sentiment"}], "eval": {"id": "builtin:sentiment"}},
                      "metric": {"name": "accuracy"}, "storage_path": "s3://bucket/trex"})
    fresh = RunPaths.for_run(task, None)
    assert fresh.remote and fresh.location.startswith("s3://bucket/trex/t-") and fresh.storage_path == "s3://bucket/trex"
    assert fresh.run_dir == scratch_root() / fresh.run_id
    assert fresh.cache_dir == tmp_path / "scratch" / "cache"
    given = RunPaths.for_run(task, "s3://bucket/trex/r9/")
    assert given.location == "s3://bucket/trex/r9" and given.run_id == "r9"
