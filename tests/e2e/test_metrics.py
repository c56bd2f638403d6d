"""Every process's Prometheus endpoint, scraped after real traffic through the gateway:
`financelake up --detach` with the demo market, REST calls to each service (one refused),
then `GET /metrics` on each of the five processes; and every series observability/'s alert
rules and dashboards query is one these processes or Envoy really export."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.observability import queried_metrics
from tests.fixtures.stack import run_cli

pytestmark = pytest.mark.e2e

Samples = list[tuple[str, dict[str, str], float]]
MARKETDATA = "financelake.marketdata.v1.MarketDataService"


def _exposition(port: str, path: str = "/metrics") -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as response:
        return str(response.read().decode())


def _series_names(text: str) -> set[str]:
    """Every series name an exposition declares, observed yet or not (a labelled family
    with no child has only its HELP and TYPE lines)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
    return {
        family.name + suffix
        for family in text_string_to_metric_families(text)
        for suffix in suffixes.get(family.type, ("",))
    }


def _scrape(port: str) -> Samples:
    text = _exposition(port)
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def _total(samples: Samples, name: str, **labels: str) -> float:
    return sum(
        value
        for sample, sample_labels, value in samples
        if sample == name and labels.items() <= sample_labels.items()
    )


def _call(gateway: str, method: str, path: str, body: bytes | None = None) -> int:
    request = urllib.request.Request(f"{gateway}{path}", data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def _until(check: Callable[[], bool], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(1)


def test_every_process_exports_red_and_pipeline_metrics_after_traffic(
    cli_env: dict[str, str],
) -> None:
    env = cli_env | {
        "FINANCELAKE_DEMO__ENABLED": "true",
        "FINANCELAKE_DEMO__HISTORY_DAYS": "0.05",
        "FINANCELAKE_DEMO__TICK_INTERVAL_S": "0.5",
    }
    started = run_cli(env, "up", "--detach")
    assert started.returncode == 0, started.stdout + started.stderr
    port: Mapping[str, str] = {
        name: env[f"FINANCELAKE_METRICS__{name.upper()}_PORT"]
        for name in ("ingestion", "marketdata", "stream", "prediction", "worker")
    }
    gateway = f"http://127.0.0.1:{env['FINANCELAKE_GATEWAY__PORT']}"

    # `up` returns once every process is healthy; market data serves once it opened the lake.
    _until(lambda: _call(gateway, "GET", "/v1/symbols") == 200, "market data never opened the lake")
    _until(
        lambda: _call(gateway, "GET", "/v1/symbols/BTC-USD/quote") == 200,
        "the demo market never reached the lake",
    )
    assert _call(gateway, "GET", "/v1/symbols/not%20a%20symbol/quote") == 400
    assert _call(gateway, "GET", "/v1/pipeline") == 200
    assert _call(gateway, "GET", "/v1/models") == 200

    marketdata = _scrape(port["marketdata"])
    handled = "grpc_server_handled_total"
    assert (
        _total(
            marketdata, handled, grpc_service=MARKETDATA, grpc_method="ListSymbols", grpc_code="OK"
        )
        >= 1
    )
    assert _total(marketdata, handled, grpc_method="GetQuote", grpc_code="OK") >= 1
    assert _total(marketdata, handled, grpc_method="GetQuote", grpc_code="INVALID_ARGUMENT") == 1
    assert _total(marketdata, "grpc_server_handling_seconds_count", grpc_method="GetQuote") >= 2

    # The demo feed publishes through the ingestion service; the worker lands it in the lake.
    ingestion = _scrape(port["ingestion"])
    assert (
        _total(
            ingestion,
            handled,
            grpc_service="financelake.ingestion.v1.IngestionService",
            grpc_code="OK",
        )
        >= 1
    )
    _until(
        lambda: (
            _total(_scrape(port["worker"]), "financelake_lake_committed_rows_total", agent="bronze")
            > 0
        ),
        "the worker committed no trades",
    )
    worker = _scrape(port["worker"])
    assert _total(worker, "financelake_agent_records_total", agent="bronze") > 0
    assert _total(worker, "financelake_lake_commit_seconds_count", agent="bronze") > 0
    assert _total(worker, "financelake_lake_committed_files_total", agent="bronze") > 0

    stream = _scrape(port["stream"])
    assert _total(stream, handled, grpc_method="GetPipelineStatus", grpc_code="OK") >= 1
    lags = [labels for name, labels, _ in stream if name == "financelake_kafka_consumer_lag"]
    assert {labels["topic"] for labels in lags} >= {env["FINANCELAKE_TOPICS__TICKS"]}
    fresh = {
        labels["table"]
        for name, labels, _ in stream
        if name == "financelake_table_freshness_seconds"
    }
    assert "bronze.ticks" in fresh

    prediction = _scrape(port["prediction"])
    assert _total(prediction, handled, grpc_method="ListModels", grpc_code="OK") >= 1
    # Served models are a gauge from the start (0 until the demo market trained some).
    assert any(name == "financelake_models_loaded" for name, _, _ in prediction)

    # The alert rules and dashboards query only series these processes and Envoy export.
    exported = set().union(*(_series_names(_exposition(p)) for p in port.values()))
    admin = env["FINANCELAKE_GATEWAY__ADMIN_PORT"]
    exported |= _series_names(_exposition(admin, "/stats/prometheus"))
    assert queried_metrics() - exported == set()
