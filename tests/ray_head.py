"""A real Ray head started with `ray start --head` on 127.0.0.1: free ports, its own temp dir.

Used by the `ray job submit` test. It is stopped by its own process ids (the `ray start --block`
process group, then any process left whose command line names its temp dir), never `ray stop`,
which would stop every Ray cluster on a shared machine.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))
PORT_FLAGS = ("--port", "--dashboard-port", "--ray-client-server-port", "--dashboard-agent-listen-port",
              "--dashboard-agent-grpc-port", "--metrics-export-port", "--runtime-env-agent-port",
              "--node-manager-port", "--object-manager-port")


@dataclass(frozen=True)
class Head:
    gcs_address: str  # 127.0.0.1:PORT, for ray.init / RAY_ADDRESS
    dashboard_url: str  # http://127.0.0.1:PORT, for `ray job submit --address`
    temp_dir: Path
    env: dict[str, str]  # the environment the head was started with (RAY_AUTH_MODE, PATH)


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _pids_using(marker: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                if marker in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


def _wait_dashboard(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ray start exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/api/version", timeout=2):
                return
        except urllib.error.HTTPError:  # it answers (401 without a token): it is up
            return
        except OSError:
            time.sleep(1)
    raise TimeoutError(f"the dashboard at {url} did not answer in {timeout:.0f} s")


@contextmanager
def ray_head(num_cpus: int = 2, env: dict[str, str] | None = None, timeout: float = 180) -> Iterator[Head]:
    temp_dir = Path(tempfile.mkdtemp(prefix="trexhead-", dir="/tmp"))
    ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS)), strict=True))
    env = {**(env if env is not None else os.environ)}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"  # the job's `python` is this one
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Ray swaps 127.0.0.1 for the machine's address unless told this is a single-machine cluster;
    # this keeps every socket of the test head on the loopback interface.
    env.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    env.pop("RAY_ADDRESS", None)
    cmd = [RAY, "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--num-cpus", str(num_cpus),
           "--num-gpus", "0", "--temp-dir", str(temp_dir), "--include-dashboard", "true",
           "--dashboard-host", "127.0.0.1", "--disable-usage-stats",
           *[f"{flag}={port}" for flag, port in ports.items()]]
    log = open(temp_dir / "ray-start.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    head = Head(gcs_address=f"127.0.0.1:{ports['--port']}",
                dashboard_url=f"http://127.0.0.1:{ports['--dashboard-port']}", temp_dir=temp_dir, env=env)
    try:
        _wait_dashboard(head.dashboard_url, proc, timeout)
        yield head
    finally:
        _stop(proc, str(temp_dir))
        log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)


def _stop(proc: subprocess.Popen, marker: str) -> None:
    """SIGTERM the `ray start --block` group, then SIGKILL whatever of this head is left, by pid."""
    for sig, grace in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        for pid in _pids_using(marker):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + grace
        while time.time() < deadline and (proc.poll() is None or _pids_using(marker)):
            time.sleep(0.5)
        if proc.poll() is not None and not _pids_using(marker):
            return
