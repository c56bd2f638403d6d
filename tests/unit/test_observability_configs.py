"""observability/'s Prometheus, alert-rule, Grafana and Collector files are well formed: every
expression is PromQL, every alert says what happened, the dashboards take their datasource
as a variable, and the scrape targets are the processes' metrics ports. (That every metric
they name is really exported is checked against live processes in tests/e2e/test_metrics.py.)"""

from __future__ import annotations

import json

import pytest
import yaml

from financelake.services.settings import Settings
from tests.fixtures.observability import (
    DASHBOARDS,
    OBSERVABILITY,
    dashboard_queries,
    queried_metrics,
    rule_list,
    selected_metrics,
)

ALERTS = {
    "FinanceLakeConsumerLag",
    "FinanceLakeTableStale",
    "FinanceLakeRpcErrorRate",
    "FinanceLakeNoModelLoaded",
    "FinanceLakeEnvoyUpstreamUnhealthy",
}


def test_the_parser_finds_the_metrics_an_expression_selects() -> None:
    expr = 'sum(rate(a_total{x="1"}[5m])) / on() group_left histogram_quantile(0.9, b_bucket) > 1'
    assert selected_metrics(expr) == {"a_total", "b_bucket"}
    with pytest.raises(ValueError, match="unclosed left parenthesis"):
        selected_metrics("sum(rate(a_total[5m])")


def test_every_rule_is_promql_and_every_alert_is_actionable() -> None:
    rules = rule_list()
    alerts = {rule["alert"]: rule for rule in rules if "alert" in rule}
    assert set(alerts) >= ALERTS
    for rule in rules:
        assert selected_metrics(rule["expr"]), rule
    for name, alert in alerts.items():
        assert alert["labels"]["severity"] in {"warning", "critical"}, name
        assert alert["annotations"]["summary"], name
        assert alert["annotations"]["description"], name
        assert alert.get("for"), f"{name} would fire on a single evaluation"


def test_dashboards_cover_the_four_views_with_a_datasource_variable() -> None:
    assert {path.stem for path in DASHBOARDS} == {"services", "pipeline", "lakehouse", "models"}
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] == "${datasource}", (path.name, panel["title"])
            assert panel["targets"], (path.name, panel["title"])
    for board, title, expr in dashboard_queries():
        assert selected_metrics(expr), (board, title)


def test_the_scrape_config_targets_every_process_and_envoy() -> None:
    config = yaml.safe_load((OBSERVABILITY / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["rules.yml"]
    targets = {
        static["labels"]["process"]: static["targets"]
        for job in config["scrape_configs"]
        for static in job["static_configs"]
    }
    settings = Settings()
    expected = {
        name: [f"127.0.0.1:{settings.metrics.port_of(name)}"]
        for name in ("ingestion", "marketdata", "stream", "prediction", "worker")
    }
    expected["envoy"] = [f"127.0.0.1:{settings.gateway.admin_port}"]
    assert targets == expected


def test_the_collector_pipelines_use_only_declared_components() -> None:
    config = yaml.safe_load((OBSERVABILITY / "otel-collector.yaml").read_text())
    pipelines = config["service"]["pipelines"]
    assert set(pipelines) == {"traces", "metrics"}
    for pipeline in pipelines.values():
        for kind in ("receivers", "processors", "exporters"):
            assert set(pipeline[kind]) <= set(config[kind]), (kind, pipeline)
    assert "otlp/jaeger" in pipelines["traces"]["exporters"]


def test_queried_metrics_are_named_by_our_conventions() -> None:
    prefixes = ("grpc_server_", "financelake_", "envoy_")
    assert [name for name in queried_metrics() if not name.startswith(prefixes)] == []
