"""A request through the gateway with tracing on starts its trace at Envoy: Envoy's span goes
to an OTLP receiver, the MarketDataService's span (this process, in memory) is its child, and
the reply names the trace in `x-trace-id`; with a real Jaeger as the store, the trace is read
back through the gateway as the UI's trace view reads it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.trace import SpanKind

from financelake.gateway.config import TRACE_ID_HEADER, Target
from financelake.gateway.envoy import validate
from financelake.gateway.render import render
from financelake.services.marketdata.server import build_server
from financelake.services.settings import Settings, TracingSettings
from financelake.stream.lake import ensure_tables
from financelake.stream.lake.catalog import open_catalog
from tests.fixtures.gateway import acall, gateway_settings, running_envoy
from tests.fixtures.grpc import running_server
from tests.fixtures.kafka import free_port
from tests.fixtures.tracing import otlp_receiver, running_jaeger, trace_this_process

pytestmark = pytest.mark.integration


def _traced(home: Path, endpoint: str, marketdata_port: int = 0) -> Settings:
    settings = gateway_settings(home, marketdata_port=marketdata_port)
    tracing = TracingSettings(enabled=True, otlp_endpoint=endpoint, export_delay_ms=100)
    return settings.model_copy(update={"tracing": tracing})


@pytest.mark.parametrize("target", list(Target))
def test_a_traced_config_passes_envoy_validate(tmp_path: Path, target: Target) -> None:
    settings = _traced(tmp_path / "home", "http://collector.observability:4317")
    validate(render(settings, target, tmp_path / f"envoy-{target}.json").config)


async def test_a_rest_call_is_traced_from_envoy_to_the_server(tmp_path: Path) -> None:
    async with otlp_receiver() as (receiver, endpoint):
        memory = trace_this_process(endpoint)
        lake = _traced(tmp_path / "home", endpoint)
        await asyncio.to_thread(lambda: ensure_tables(open_catalog(lake)))
        async with running_server(build_server, lake) as marketdata:
            settings = _traced(tmp_path / "home", endpoint, marketdata_port=marketdata.port)
            async with running_envoy(settings, tmp_path) as gateway:
                reply = await acall(f"{gateway.url}/v1/symbols")
                assert reply.status == 200, reply.body
                trace_id = int(reply.headers[TRACE_ID_HEADER], 16)
                ui_config = (await acall(f"{gateway.url}/ui-config.json")).json()
                assert ui_config == {"trace_url": "/traces/{trace_id}"}  # the UI's trace page

                deadline = time.monotonic() + 30
                while not (
                    envoy := [
                        r for r in receiver.trace(trace_id) if r.service == "financelake-gateway"
                    ]
                ):
                    assert time.monotonic() < deadline, "Envoy exported no span of the trace"
                    await asyncio.sleep(0.2)

    server = [
        span
        for span in memory.get_finished_spans()
        if span.context.trace_id == trace_id and span.kind is SpanKind.SERVER
    ]
    assert [span.name for span in server] == [
        "/financelake.marketdata.v1.MarketDataService/ListSymbols"
    ]
    assert server[0].parent is not None
    assert server[0].parent.span_id.to_bytes(8, "big") in {r.span.span_id for r in envoy}


async def test_the_trace_store_answers_through_the_gateway(tmp_path: Path) -> None:
    """Envoy and the server export to a real Jaeger; the UI's trace view reads the trace back
    through the gateway at `/api/traces/<id>`, both processes' spans in it."""
    otlp_port, query_port = free_port("127.0.0.1"), free_port("127.0.0.1")
    endpoint = f"http://127.0.0.1:{otlp_port}"
    lake = _traced(tmp_path / "home", endpoint).model_copy(deep=True)
    lake.tracing.jaeger_query_url = f"http://127.0.0.1:{query_port}"
    trace_this_process(endpoint)
    await asyncio.to_thread(lambda: ensure_tables(open_catalog(lake)))
    with running_jaeger(lake, tmp_path):
        async with running_server(build_server, lake) as marketdata:
            settings = lake.model_copy(
                update={
                    "servers": lake.servers.model_copy(update={"marketdata_port": marketdata.port})
                }
            )
            async with running_envoy(settings, tmp_path) as gateway:
                reply = await acall(f"{gateway.url}/v1/symbols")
                trace_id = reply.headers[TRACE_ID_HEADER]
                deadline = time.monotonic() + 30
                while True:
                    stored = await acall(f"{gateway.url}/api/traces/{trace_id}")
                    found: list[Any] = (stored.json()["data"] or []) if stored.status == 200 else []
                    processes = found[0]["processes"].values() if found else []
                    services = {process["serviceName"] for process in processes}
                    if {"financelake-gateway", "test-client"} <= services:
                        break
                    assert time.monotonic() < deadline, f"the store has {services} of {trace_id}"
                    await asyncio.sleep(0.3)

    spans = found[0]["spans"]
    names = {span["operationName"] for span in spans}
    assert "/financelake.marketdata.v1.MarketDataService/ListSymbols" in names
    assert all(span["traceID"] == trace_id for span in spans)
