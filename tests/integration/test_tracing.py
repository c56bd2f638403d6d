"""One published batch is one trace, from the client's call to the bar the worker emits.

Real parts throughout: our traced client and the ingestion server in this process with
tracing on, the session's Kafka broker, the stream worker as its own process, and an
OTLP/gRPC receiver on loopback that both processes export to. This process also records its
spans in memory.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc
import pytest
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.trace import SpanKind

from financelake.gen.common.v1 import tick_pb2
from financelake.gen.ingestion.v1 import ingestion_service_pb2 as pb
from financelake.gen.ingestion.v1 import ingestion_service_pb2_grpc as pb_grpc
from financelake.observability.tracing import client_interceptors
from financelake.services.ingestion.server import build_server
from financelake.services.settings import ServerSettings, Settings, TracingSettings
from tests.fixtures.grpc import running_server, stub_for
from tests.fixtures.ingestion import wait_serving
from tests.fixtures.stream import WorkerFactory
from tests.fixtures.tracing import OtlpReceiver, otlp_receiver, trace_this_process

pytestmark = pytest.mark.integration

MINUTE_NS = 60 * 1_000_000_000
START_NS = 1_767_607_200 * 1_000_000_000  # 2026-01-05 10:00 UTC
PUBLISH = "/financelake.ingestion.v1.IngestionService/PublishTicks"
SERVER = trace_pb2.Span.SPAN_KIND_SERVER
CONSUMER = trace_pb2.Span.SPAN_KIND_CONSUMER
PRODUCER = trace_pb2.Span.SPAN_KIND_PRODUCER


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[OtlpReceiver, str]]:
    async with otlp_receiver() as running:
        yield running


@pytest.fixture
def stream_settings(stream_settings: Settings, receiver: tuple[OtlpReceiver, str]) -> Settings:
    """The stream fixtures' settings with tracing on, exporting to the receiver quickly."""
    tracing = TracingSettings(enabled=True, otlp_endpoint=receiver[1], export_delay_ms=100)
    return stream_settings.model_copy(update={"tracing": tracing})


def _batch() -> tick_pb2.TickBatch:
    # Trades over four minutes: the first minute's bar closes (its grace is 10 s) within the
    # one batch, so the worker emits it while processing that batch.
    times = [START_NS + 5_000_000_000 + i * 30_000_000_000 for i in range(8)]
    return tick_pb2.TickBatch(
        symbol="TRACE",
        event_time_unix_nanos=times,
        prices=[100.0 + i for i in range(8)],
        sizes=[10.0] * 8,
        trade_ids=[f"trace-{i}" for i in range(8)],
    )


async def _until_traced(receiver: OtlpReceiver, trace_id: int, names: set[str]) -> None:
    deadline = time.monotonic() + 90
    while not names <= {r.span.name for r in receiver.trace(trace_id)}:
        seen = sorted({r.span.name for r in receiver.trace(trace_id)})
        assert time.monotonic() < deadline, f"the trace never had {names}; it has {seen}"
        await asyncio.sleep(0.5)


async def test_one_batch_is_one_trace_from_the_client_call_to_the_emitted_bar(
    stream_settings: Settings,
    stream_worker: WorkerFactory,
    receiver: tuple[OtlpReceiver, str],
) -> None:
    otlp, endpoint = receiver
    memory = trace_this_process(endpoint)
    worker = stream_worker.start()
    settings = stream_settings.model_copy(update={"servers": ServerSettings(ingestion_port=0)})
    async with running_server(build_server, settings) as server:
        await wait_serving(server.channel)
        async with grpc.aio.insecure_channel(
            server.address,
            interceptors=client_interceptors(stream_settings.tracing),
        ) as channel:
            stub = stub_for(pb_grpc.IngestionServiceStub, channel)
            await stub.PublishTicks(pb.PublishTicksRequest(batches=[_batch()]), timeout=10)

    # In this process: the client call, the server's span under it, the produce under that.
    spans = {span.name: span for span in memory.get_finished_spans()}
    client = next(s for s in memory.get_finished_spans() if s.kind is SpanKind.CLIENT)
    trace_id = client.context.trace_id
    here = [s for s in memory.get_finished_spans() if s.context.trace_id == trace_id]
    server_span = next(s for s in here if s.kind is SpanKind.SERVER)
    produce = spans[f"publish {stream_settings.topics.ticks}"]
    assert client.name == server_span.name == PUBLISH
    assert server_span.parent is not None
    assert server_span.parent.span_id == client.context.span_id
    assert produce.parent is not None
    assert produce.parent.span_id == server_span.context.span_id
    assert (produce.attributes or {}).get("messaging.batch.message_count") == 1

    # The worker continued it: consume batch, the bronze and bars commits, the emitted bar.
    ticks, bars = stream_settings.topics.ticks, stream_settings.topics.bars
    names = {f"process {ticks}", "commit bronze", "commit bars", f"publish {bars}", PUBLISH}
    await _until_traced(otlp, trace_id, names)
    received = otlp.trace(trace_id)
    by_name = {r.span.name: r for r in received}
    batch = by_name[f"process {ticks}"]
    assert (batch.service, batch.span.kind) == ("financelake-worker", CONSUMER)
    assert batch.span.parent_span_id == produce.context.span_id.to_bytes(8, "big")
    for commit in ("commit bronze", "commit bars"):
        assert by_name[commit].span.parent_span_id == batch.span.span_id
    bronze = {a.key: a.value for a in by_name["commit bronze"].span.attributes}
    assert bronze["financelake.commit.rows"].int_value == 8
    assert bronze["financelake.commit.bytes"].int_value > 0
    assert bronze["financelake.commit.files"].int_value >= 1
    emitted = by_name[f"publish {bars}"]
    assert (emitted.span.kind, emitted.span.parent_span_id) == (PRODUCER, batch.span.span_id)
    # This process's spans reached the receiver over OTLP too.
    assert {r.span.kind for r in received if r.service == "test-client"} >= {SERVER}
    assert worker.process.poll() is None, worker.log_tail()
