"""`trex report` and `trex status` of a finished run work where Ray cannot be imported (issue #17).

Each command runs in a fresh interpreter whose first meta-path finder refuses ``ray`` and every
``ray.*`` module, so any import of Ray on these paths (module level or lazy) fails the command.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from run_builder import demo_run

from trex_ray.runtime.live import ADDRESS_HINT

REPO = Path(__file__).resolve().parents[1]
NO_RAY = """
import sys

class NoRay:
    def find_spec(self, name, path=None, target=None):
        if name == "ray" or name.startswith("ray."):
            raise ImportError(f"No module named {name!r} (Ray is blocked by this test)")
        return None

sys.meta_path.insert(0, NoRay())
if sys.argv[1:] == ["--import-ray"]:
    import ray  # must fail: proves the blocker works
from trex_ray.cli import main
sys.exit(main(sys.argv[1:]))
"""


def trex_without_ray(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    env.pop("RAY_ADDRESS", None)
    return subprocess.run([sys.executable, "-c", NO_RAY, *args], capture_output=True, text=True,
                          env=env, timeout=120, cwd=REPO)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "done"
    demo_run(run)
    return run


def test_the_blocker_blocks_ray() -> None:
    out = trex_without_ray("--import-ray")
    assert out.returncode != 0 and "Ray is blocked by this test" in out.stderr


def test_report_of_a_finished_run_without_ray(finished_run: Path) -> None:
    out = trex_without_ray("report", str(finished_run), "--format", "json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["run_id"] == "done" and report["best"]["node_id"]
    text = trex_without_ray("report", str(finished_run))
    assert text.returncode == 0, text.stderr
    assert report["best"]["node_id"] in text.stdout


def test_status_of_a_finished_run_without_ray(finished_run: Path) -> None:
    # The driver's address hint points at a port that answers: status would reach for Ray, and must
    # fall back to the store when Ray is not there.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        (finished_run / ADDRESS_HINT).write_text(f"127.0.0.1:{listener.getsockname()[1]}\n")
        try:
            out = trex_without_ray("status", str(finished_run))
        finally:
            (finished_run / ADDRESS_HINT).unlink()
    assert out.returncode == 0, out.stderr
    assert "run done of " in out.stdout and "finished (" in out.stdout
