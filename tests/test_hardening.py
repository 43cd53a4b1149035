"""Hardening (issue 18): secrets out of run locations, journal writes that cannot tear the log,
bounded data-op params. Pure: no Ray, no training."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from factories import task_dict

from trex_ray.cli import main
from trex_ray.spec import SpecError, load_task
from trex_ray.spec.uri import credentials_problem

SECRET = "wJalrXUtnFEMIK7MDENGbPxRfiCYzEXAMPLEKEY"
SECRET_URIS = [
    f"s3://AKIAIOSFODNN7EXAMPLE:{SECRET}@bucket/trex",
    f"s3://{SECRET}@bucket/trex",
    f"gs://bucket/trex?access_key=AKIA&secret_key={SECRET}",
    f"s3://bucket/trex?endpoint_override=127.0.0.1:9000&X-Amz-Signature={SECRET}",
    f"s3://bucket/trex?session_token={SECRET}",
]


# --- secrets ------------------------------------------------------------------------------------
@pytest.mark.parametrize("uri", SECRET_URIS)
def test_a_storage_path_with_credentials_is_refused_without_echoing_them(uri):
    with pytest.raises(SpecError) as info:
        load_task(task_dict(storage_path=uri))
    message = str(info.value)
    assert "\n" not in message and "storage_path" in message and "AWS_ACCESS_KEY_ID" in message
    assert SECRET not in message and "AKIA" not in message


@pytest.mark.parametrize("uri", ["runs", "/tmp/runs", "runs/me@host", "s3://bucket/trex",
                                 "s3://bucket/trex?endpoint_override=127.0.0.1:9000&scheme=http",
                                 "gs://bucket/a/b?region=eu-west-1"])
def test_plain_locations_pass(uri):
    assert credentials_problem(uri) is None
    assert load_task(task_dict(storage_path=uri)).storage_path == uri


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@pytest.mark.parametrize("uri", SECRET_URIS)
@pytest.mark.parametrize("command", ["run", "resume", "status", "report"])
def test_the_cli_refuses_a_run_dir_with_credentials_and_writes_nothing(uri, command, tmp_path,
                                                                       monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    task_file = tmp_path / "task.yaml"
    task_file.write_text(yaml.safe_dump(task_dict()))
    before = _files(tmp_path)
    argv = ["run", str(task_file), "--run-dir", uri] if command == "run" else [command, uri]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert SECRET not in out + err and err.count("\n") == 1 and "environment" in err
    assert "--run-dir" in err if command == "run" else "RUN_DIR" in err
    assert _files(tmp_path) == before


def test_trex_run_refuses_a_task_whose_storage_path_holds_credentials(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    task_file = tmp_path / "task.yaml"
    task_file.write_text(yaml.safe_dump(task_dict(storage_path=SECRET_URIS[0])))
    clean_file = tmp_path / "clean.yaml"
    clean_file.write_text(yaml.safe_dump(task_dict()))
    assert main(["run", str(task_file)]) == 2
    assert main(["run", str(clean_file), f"storage_path={SECRET_URIS[2]}"]) == 2
    out, err = capsys.readouterr()
    assert SECRET not in out + err and err.count("\n") == 2
    assert _files(tmp_path) == {task_file, clean_file}
