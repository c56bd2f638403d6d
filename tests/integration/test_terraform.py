"""terraform/: the modules and environment roots parse, every variable is typed and
described, the environments pin the AWS provider and wire every module, `tofu fmt` has
nothing to change, checkov fails no check (accepted findings are suppressed in place, with
their reason), and the chart values the environments output exist in the chart.

Nothing is planned: the Terraform registry is out of reach here, so providers cannot be
installed. Parsing, formatting and checkov need none."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml

from tests.fixtures.deployment import ROOT, cached_tool, run_checkov

pytestmark = pytest.mark.integration

TERRAFORM = ROOT / "terraform"
MODULES = ("vpc", "eks", "msk", "s3-warehouse", "glue-catalog", "iam-irsa", "ecr")
ENVIRONMENTS = ("dev", "prod")
# Used by the modules above rather than by the environments.
INNER_MODULES = ("encrypted-log-group",)
ROOTS = [TERRAFORM / "modules" / m for m in MODULES + INNER_MODULES] + [
    TERRAFORM / "environments" / e for e in ENVIRONMENTS
]
FILES = ("main.tf", "variables.tf", "outputs.tf", "versions.tf")


def _unquote(value: Any) -> Any:
    """python-hcl2 keeps string literals' quotes."""
    return value.strip('"') if isinstance(value, str) else value


def _load(folder: Path) -> dict[str, list[Any]]:
    """Every top-level block of the folder's .tf files, by block type."""
    blocks: dict[str, list[Any]] = {}
    for path in sorted(folder.glob("*.tf")):
        with path.open() as source:
            for kind, entries in hcl2.load(source).items():
                blocks.setdefault(kind, []).extend(entries)
    return blocks


def _named(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {_unquote(name): body for entry in entries for name, body in entry.items()}


@pytest.mark.parametrize("folder", ROOTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_each_root_has_its_files_and_every_variable_and_output_is_documented(
    folder: Path,
) -> None:
    for name in FILES:
        assert (folder / name).is_file(), f"{folder}/{name} is missing"
    blocks = _load(folder)
    for name, variable in _named(blocks.get("variable", [])).items():
        assert "type" in variable, f"variable {name} has no type"
        assert len(_unquote(variable.get("description", ""))) > 10, f"{name} is undescribed"
    outputs = _named(blocks.get("output", []))
    assert outputs, f"{folder} has no outputs"
    for name, output in outputs.items():
        assert len(_unquote(output.get("description", ""))) > 10, f"output {name} undescribed"
    (terraform,) = blocks["terraform"]
    aws = terraform["required_providers"][0]["aws"]
    assert _unquote(aws["source"]) == "hashicorp/aws"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_each_environment_wires_every_module_with_a_pinned_provider_and_remote_state(
    environment: str,
) -> None:
    folder = TERRAFORM / "environments" / environment
    blocks = _load(folder)
    modules = _named(blocks["module"])
    sources = {_unquote(m["source"]) for m in modules.values()}
    assert sources == {f"../../modules/{name}" for name in MODULES}
    (terraform,) = blocks["terraform"]
    version = _unquote(terraform["required_providers"][0]["aws"]["version"])
    assert re.fullmatch(r"~> \d+\.\d+", version), f"the AWS provider is not pinned: {version}"
    assert "s3" in _named(terraform["backend"])
    assert (folder / "backend.hcl.example").is_file()


def _chart_value_keys() -> set[str]:
    values = yaml.safe_load((ROOT / "charts" / "financelake" / "values.yaml").read_text())
    keys: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, child in node.items():
                keys.add(key)
                walk(child)

    walk(values)
    return keys


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_helm_values_output_names_only_values_the_chart_has(environment: str) -> None:
    outputs = _named(_load(TERRAFORM / "environments" / environment)["output"])
    expression = outputs["helm_values"]["value"]
    assert "yamlencode" in expression
    # Pyiceberg's catalog properties are free-form; every other key must be the chart's.
    catalog_properties = {"type", "warehouse", "client.region"}
    keys = set(re.findall(r'"?([A-Za-z][\w.]*)"?\s*[=:]\s', expression)) - catalog_properties
    assert {"kafkaBootstrap", "roleArns", "registryUri"} <= keys
    assert keys <= _chart_value_keys(), keys - _chart_value_keys()


def test_tofu_fmt_has_nothing_to_change() -> None:
    formatted = subprocess.run(
        [str(cached_tool("tofu")), "fmt", "-check", "-recursive", "-diff", str(TERRAFORM)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr


def test_checkov_fails_no_check_and_every_accepted_finding_says_why() -> None:
    report = run_checkov(TERRAFORM, "terraform")
    assert report.passed > 100
    assert not report.failed, report.failures()
    for skipped in report.skipped:
        assert len(skipped["check_result"]["suppress_comment"]) > 20, skipped["resource"]
