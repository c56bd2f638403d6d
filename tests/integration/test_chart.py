"""The Helm chart `charts/financelake`: `helm lint` and `helm template` with each example
values file, every rendered manifest valid against the Kubernetes API schema and clean under
checkov, and in the `eks` rendering every workload with probes, resources, the locked-down
security context, a NetworkPolicy selecting it and only its own AWS rights. Helm and checkov
are the real tools (`make tools` provides them)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, get_args, get_origin

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from financelake.services.settings import SECRETS_DIR_VARIABLE, Settings
from tests.fixtures.deployment import cached_tool, run_checkov

pytestmark = pytest.mark.integration

CHART = Path(__file__).resolve().parents[2] / "charts" / "financelake"
VALUES = ("values.yaml", "values-dev.yaml", "values-eks.yaml")
KUBERNETES = "1.31"  # the oldest minor EKS still supports as standard
NAMESPACE = "financelake"


@pytest.fixture(scope="module")
def helm() -> Path:
    return cached_tool("helm")


def _helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm), *args], capture_output=True, text=True, check=False)


def _render(helm: Path, values: str, *extra: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(_render_text(helm, values, *extra)) if doc]


def _render_text(helm: Path, values: str, *extra: str) -> str:
    rendered = _helm(
        helm, "template", "fl", str(CHART), "-n", NAMESPACE, "-f", str(CHART / values), *extra
    )
    assert rendered.returncode == 0, rendered.stderr
    return rendered.stdout


@pytest.mark.parametrize("values", VALUES)
def test_the_chart_lints_and_renders_valid_manifests(helm: Path, values: str) -> None:
    linted = _helm(helm, "lint", str(CHART), "-f", str(CHART / values), "--strict")
    assert linted.returncode == 0, linted.stdout + linted.stderr
    for manifest in _render(helm, values):
        kubernetes_validate.validate(manifest, KUBERNETES, strict=True)


def test_checkov_fails_no_check_and_every_accepted_finding_says_why(
    helm: Path, tmp_path: Path
) -> None:
    for values in VALUES:
        (tmp_path / f"{values}.rendered.yaml").write_text(_render_text(helm, values))
    report = run_checkov(tmp_path, "kubernetes")
    assert report.passed > 0
    assert not report.failed, report.failures()
    for skipped in report.skipped:
        assert len(skipped["check_result"]["suppress_comment"]) > 20, skipped["resource"]


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
        "financelake-maintenance",
        "financelake-otel-collector",
        "financelake-jaeger",
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
        assert manifest["metadata"]["namespace"] == NAMESPACE, name
        assert pods["metadata"]["annotations"]["linkerd.io/inject"] == "enabled", name
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


def _find(manifests: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name)


def test_each_eks_component_runs_with_only_its_own_aws_rights(helm: Path) -> None:
    manifests = _render(helm, "values-eks.yaml")
    role_of_account = {
        m["metadata"]["name"]: m["metadata"]
        .get("annotations", {})
        .get("eks.amazonaws.com/role-arn")
        for m in manifests
        if m["kind"] == "ServiceAccount"
    }
    account_of = {
        m["metadata"]["name"].removeprefix("financelake-"): pods["spec"]["serviceAccountName"]
        for m in manifests
        if (pods := _pods(m)) is not None
    }
    assert account_of["ingestion"] == account_of["gateway"] == "financelake"
    assert role_of_account["financelake"] is None
    for component, role in {
        "marketdata": "lake-reader",
        "stream": "lake-reader",
        "worker": "lake-writer",
        "prediction": "lake-writer",
        "maintenance": "lake-writer",
        "training": "trainer",
    }.items():
        account = account_of[component]
        assert account == f"financelake-{role}", component
        assert role_of_account[account].endswith(f":role/financelake-prod-{role}"), component


def _is_setting(name: str) -> bool:
    """Whether FINANCELAKE_<name> names a field of Settings (`__` nesting) or where the
    secret files are, so that a misspelt key, which the processes would silently ignore, is
    caught."""
    if name == SECRETS_DIR_VARIABLE:
        return True
    model: Any = Settings
    for part in name.removeprefix("FINANCELAKE_").lower().split("__"):
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        model = annotation if get_origin(annotation) is None else get_args(annotation)[0]
    return True


@pytest.mark.parametrize("values", VALUES)
def test_the_config_map_holds_only_settings_the_processes_read(helm: Path, values: str) -> None:
    config = _find(_render(helm, values), "ConfigMap", "fl-config")["data"]
    unknown = [name for name in config if not _is_setting(name)]
    assert not unknown


def test_eks_speaks_tls_to_kafka_and_traces_through_the_collector_to_jaeger(helm: Path) -> None:
    manifests = _render(helm, "values-eks.yaml")
    config = _find(manifests, "ConfigMap", "fl-config")["data"]
    assert config["FINANCELAKE_KAFKA__SECURITY_PROTOCOL"] == "SSL"
    assert config["FINANCELAKE_TRACING__ENABLED"] == "true"
    assert config["FINANCELAKE_TRACING__OTLP_ENDPOINT"] == "http://financelake-otel-collector:4317"
    assert config["FINANCELAKE_TRACING__JAEGER_QUERY_URL"] == "http://financelake-jaeger:16686"
    collector = yaml.safe_load(
        _find(manifests, "ConfigMap", "financelake-otel-collector")["data"]["config.yaml"]
    )
    assert collector["exporters"]["otlp"]["endpoint"] == "financelake-jaeger:4317"
    for port in (4317, 16686):
        assert any(
            p["port"] == port
            for p in _find(manifests, "Service", "financelake-jaeger")["spec"]["ports"]
        )
    egress = _find(manifests, "NetworkPolicy", "financelake-default-deny")["spec"]["egress"]
    kafka = next(rule for rule in egress if any("ipBlock" in peer for peer in rule.get("to", [])))
    assert [p["port"] for p in kafka["ports"]] == [9094]


def test_without_tracing_nothing_of_it_is_deployed(helm: Path) -> None:
    manifests = _render(helm, "values.yaml")
    names = {m["metadata"]["name"] for m in manifests}
    assert not {n for n in names if "jaeger" in n or "otel" in n}
    assert _find(manifests, "ConfigMap", "fl-config")["data"]["FINANCELAKE_TRACING__ENABLED"] == (
        "false"
    )


def test_the_secret_reaches_every_process_as_files_never_as_variables(helm: Path) -> None:
    manifests = _render(helm, "values-eks.yaml")
    secrets_dir = _find(manifests, "ConfigMap", "fl-config")["data"][SECRETS_DIR_VARIABLE]
    readers = 0
    for manifest in manifests:
        pods = _pods(manifest)
        if pods is None:
            continue
        volumes = {v["name"]: v for v in pods["spec"]["volumes"]}
        for container in pods["spec"].get("initContainers", []) + pods["spec"]["containers"]:
            sources = container.get("envFrom", [])
            assert all("secretRef" not in source for source in sources), container["name"]
            if not sources:
                continue  # Envoy, the collector, Jaeger: no FinanceLake settings
            readers += 1
            (mount,) = (m for m in container["volumeMounts"] if m["mountPath"] == secrets_dir)
            assert mount["readOnly"] is True
            assert volumes[mount["name"]]["secret"]["secretName"] == "financelake-sources"
    # Four servers, the worker, the topic creation before ingestion and the worker, the
    # gateway's render, three job steps.
    assert readers == 11


def test_the_topics_exist_before_anything_produces_or_consumes_them(helm: Path) -> None:
    manifests = _render(helm, "values-eks.yaml")
    config = _find(manifests, "ConfigMap", "fl-config")["data"]
    assert (
        config["FINANCELAKE_TOPICS__PARTITIONS"],
        config["FINANCELAKE_TOPICS__REPLICATION_FACTOR"],
    ) == ("12", "3")
    for name in ("financelake-ingestion", "financelake-worker"):
        (init,) = _find(manifests, "Deployment", name)["spec"]["template"]["spec"]["initContainers"]
        assert init["args"] == ["topics", "create"], name
