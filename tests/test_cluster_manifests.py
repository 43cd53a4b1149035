"""cluster/: the launcher YAML, the KubeRay manifests, the one runtime environment, the submit script.

They parse, carry the fields their tools require, all name the Ray and Python that
requirements.txt pins, and reuse cluster/runtime_env.yaml instead of defining another.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "cluster"
MANIFESTS = [CLUSTER / "cluster.yaml", CLUSTER / "runtime_env.yaml", CLUSTER / "kustomization.yaml",
             CLUSTER / "kuberay" / "raycluster.yaml", CLUSTER / "kuberay" / "rayjob.yaml"]


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def ray_pin() -> str:
    [pin] = re.findall(r"^ray\[[^\]]*\]==([\d.]+)", (REPO / "requirements.txt").read_text(), re.M)
    return pin


def images(doc: Any) -> list[str]:
    """Every container image named anywhere in a manifest."""
    if isinstance(doc, dict):
        found = [doc["image"]] if isinstance(doc.get("image"), str) else []
        return found + [i for v in doc.values() for i in images(v)]
    if isinstance(doc, list):
        return [i for v in doc for i in images(v)]
    return []


def image_versions(image: str) -> tuple[str, str]:
    """(ray, python) of an image tag like ...:2.60.0-py311-gpu."""
    match = re.search(r":(\d+\.\d+\.\d+)-py(\d)(\d+)", image)
    assert match, f"{image}: the tag must name the Ray and Python versions (e.g. :2.60.0-py311-gpu)"
    return match.group(1), f"{match.group(2)}.{match.group(3)}"


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_manifest_parses(path: Path) -> None:
    assert isinstance(load(path), dict)


def test_the_runtime_env_is_one_file_the_driver_reads_too() -> None:
    from trex_ray.runtime import env

    spec = load(CLUSTER / "runtime_env.yaml")
    assert spec["working_dir"] == "." and ".venv" in spec["excludes"] and ".git" in spec["excludes"]
    assert all(isinstance(v, str) for v in spec["env_vars"].values())
    assert not [k for k in spec["env_vars"] if re.search(r"_KEY|_TOKEN$|SECRET|PASSWORD", k)]  # no secrets
    assert env.RUNTIME_ENV_FILE == CLUSTER / "runtime_env.yaml"
    nvlink_multicast_off = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1",
                            "NVSHMEM_DISABLE_NVLS": "1"}  # in every worker trex starts on a GPU host
    assert nvlink_multicast_off.items() <= spec["env_vars"].items()
    for key, value in spec["env_vars"].items():
        assert env.worker_env()[key] == __import__("os").environ.get(key, value)
    # no second definition: only runtime_env.yaml holds env_vars / a runtime env under cluster/
    for path in CLUSTER.rglob("*.y*ml"):
        if path.name != "runtime_env.yaml":
            text = path.read_text()
            assert "env_vars" not in text and "runtimeEnvYAML" not in text, path


def test_versions_agree_with_requirements_txt() -> None:
    pin = ray_pin()
    pythons = set()
    kuberay = CLUSTER / "kuberay"
    for path in [CLUSTER / "cluster.yaml", kuberay / "raycluster.yaml", kuberay / "rayjob.yaml"]:
        doc = load(path)
        for image in images(doc):
            ray_version, python = image_versions(image)
            assert ray_version == pin, f"{path.name}: {image} is not Ray {pin} (requirements.txt)"
            pythons.add(python)
    dockerfile = (CLUSTER / "kuberay" / "Dockerfile").read_text()
    [base] = re.findall(r"^FROM (\S+)", dockerfile, re.M)
    assert image_versions(base)[0] == pin
    pythons.add(image_versions(base)[1])
    assert len(pythons) == 1, pythons
    [python] = pythons
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == python  # the one this venv runs
    for kind in ("raycluster.yaml", "rayjob.yaml"):
        doc = load(CLUSTER / "kuberay" / kind)
        spec = doc["spec"] if kind == "raycluster.yaml" else doc["spec"]["rayClusterSpec"]
        assert spec["rayVersion"] == pin


def test_the_launcher_yaml_has_a_gpu_free_head_and_gpu_workers() -> None:
    doc = load(CLUSTER / "cluster.yaml")
    for key in ("cluster_name", "provider", "available_node_types", "head_node_type", "setup_commands",
                "head_start_ray_commands", "worker_start_ray_commands"):
        assert key in doc, key
    types = doc["available_node_types"]
    assert doc["head_node_type"] in types and types[doc["head_node_type"]]["resources"]["GPU"] == 0
    workers = [t for name, t in types.items() if name != doc["head_node_type"]]
    assert workers
    assert all(t["resources"]["GPU"] > 0 and t["max_workers"] >= t["min_workers"] for t in workers)
    assert any("requirements.txt" in c for c in doc["setup_commands"])
    starts = doc["head_start_ray_commands"] + doc["worker_start_ray_commands"]
    assert all("RAY_AUTH_MODE=token" in c for c in starts if "ray start" in c)


def test_kuberay_manifests_have_the_fields_kuberay_requires() -> None:
    cluster = load(CLUSTER / "kuberay" / "raycluster.yaml")
    assert cluster["apiVersion"] == "ray.io/v1" and cluster["kind"] == "RayCluster"
    head = cluster["spec"]["headGroupSpec"]
    assert head["rayStartParams"]["num-gpus"] == "0" and head["template"]["spec"]["containers"]
    [group] = cluster["spec"]["workerGroupSpecs"]
    assert group["groupName"] and group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    assert "nvidia.com/gpu" in group["template"]["spec"]["containers"][0]["resources"]["limits"]

    job = load(CLUSTER / "kuberay" / "rayjob.yaml")
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    assert "trex_ray.cli run" in job["spec"]["entrypoint"]
    submitter = job["spec"]["submitterPodTemplate"]["spec"]
    [container] = submitter["containers"]
    command = " ".join(container["args"])
    assert "--runtime-env /etc/trex/runtime_env.yaml" in command and "trex_ray.cli run" in command
    [volume] = submitter["volumes"]
    assert volume["configMap"]["name"] == "trex-runtime-env"
    assert {"name": "RAY_AUTH_MODE", "value": "token"} in container["env"]

    kustomization = load(CLUSTER / "kustomization.yaml")
    [generator] = kustomization["configMapGenerator"]
    assert generator["name"] == "trex-runtime-env"
    assert [(CLUSTER / f).resolve() for f in generator["files"]] == [(CLUSTER / "runtime_env.yaml").resolve()]
    assert "kuberay/rayjob.yaml" in kustomization["resources"]


def test_submit_script_uses_the_runtime_env_and_handles_token_auth() -> None:
    script = REPO / "scripts" / "submit.sh"
    text = script.read_text()
    assert "--runtime-env cluster/runtime_env.yaml" in text and "RAY_AUTH_MODE" in text
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    usage = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    assert usage.returncode == 2 and "usage" in usage.stderr
