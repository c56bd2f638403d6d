"""The Helm chart `charts/financelake`: `helm lint` and `helm template` with each example
values file, every rendered manifest valid against the Kubernetes API schema, and in the
`eks` rendering every workload with probes, resources, the locked-down security context and
a NetworkPolicy selecting it. Helm is the real binary (`make tools` builds it)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from financelake.services.settings import Settings

pytestmark = pytest.mark.integration

CHART = Path(__file__).resolve().parents[2] / "charts" / "financelake"
VALUES = ("values.yaml", "values-dev.yaml", "values-eks.yaml")
KUBERNETES = "1.31"  # the oldest minor EKS still supports as standard


@pytest.fixture(scope="module")
def helm() -> Path:
    binary = Settings().cache_dir / "bin" / "helm"
    if not binary.is_file():
        pytest.fail(f"{binary} is missing: `make tools` (needs Go) builds it")
    return binary


def _helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm), *args], capture_output=True, text=True, check=False)


def _render(helm: Path, values: str, *extra: str) -> list[dict[str, Any]]:
    rendered = _helm(helm, "template", "fl", str(CHART), "-f", str(CHART / values), *extra)
    assert rendered.returncode == 0, rendered.stderr
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]


@pytest.mark.parametrize("values", VALUES)
def test_the_chart_lints_and_renders_valid_manifests(helm: Path, values: str) -> None:
    linted = _helm(helm, "lint", str(CHART), "-f", str(CHART / values), "--strict")
    assert linted.returncode == 0, linted.stdout + linted.stderr
    for manifest in _render(helm, values):
        kubernetes_validate.validate(manifest, KUBERNETES, strict=True)


def test_the_values_schema_refuses_a_bad_value(helm: Path) -> None:
    refused = _helm(
        helm, "template", "fl", str(CHART), "--set", "servers.ingestion.port=not-a-port"
    )
    assert refused.returncode != 0
    assert "/servers/ingestion/port" in refused.stderr


def _pods(manifest: dict[str, Any]) -> dict[str, Any] | None:
    if manifest["kind"] == "Deployment":
        return dict(manifest["spec"]["template"])
    if manifest["kind"] == "CronJob":
        return dict(manifest["spec"]["jobTemplate"]["spec"]["template"])
    return None


def test_every_eks_workload_is_probed_bounded_locked_down_and_fenced(helm: Path) -> None:
    manifests = _render(helm, "values-eks.yaml")
    policies = [m for m in manifests if m["kind"] == "NetworkPolicy"]
    workloads = [(m, pods) for m in manifests if (pods := _pods(m)) is not None]
    assert {m["metadata"]["name"] for m, _ in workloads} == {
        "financelake-ingestion",
        "financelake-marketdata",
        "financelake-stream",
        "financelake-prediction",
        "financelake-worker",
        "financelake-gateway",
        "financelake-training",
    }
    for manifest, pods in workloads:
        name = manifest["metadata"]["name"]
        spec = pods["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        for container in spec.get("initContainers", []) + spec["containers"]:
            where = f"{name}/{container['name']}"
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"]["drop"] == ["ALL"], where
            assert context["seccompProfile"]["type"] == "RuntimeDefault", where
            assert {"cpu", "memory"} <= set(container["resources"]["limits"]), where
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), where
        if manifest["kind"] == "Deployment":
            for container in spec["containers"]:
                assert "livenessProbe" in container, name
                assert "readinessProbe" in container, name
        labels = pods["metadata"]["labels"]
        fenced = [
            policy
            for policy in policies
            if policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
        ]
        assert fenced, f"no NetworkPolicy selects {name}"


def test_the_servers_have_native_grpc_probes_and_a_grpc_port(helm: Path) -> None:
    manifests = _render(helm, "values-eks.yaml")
    for server in ("ingestion", "marketdata", "stream", "prediction"):
        deployment = next(
            m
            for m in manifests
            if m["kind"] == "Deployment" and m["metadata"]["name"] == f"financelake-{server}"
        )
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["args"] == ["serve", server]
        assert "grpc" in container["readinessProbe"]
        assert container["readinessProbe"]["grpc"]["service"].startswith("financelake.")
        service = next(
            m
            for m in manifests
            if m["kind"] == "Service" and m["metadata"]["name"] == f"financelake-{server}"
        )
        assert service["spec"]["ports"][0]["name"] == "grpc"
