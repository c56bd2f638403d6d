"""The shared interceptors and health handle, on a real in-process server over loopback.

A scripted IngestionService servicer (a fake, so it lives here) raises whatever a test
asks; the assertions are on what a real client receives: the status code and the
unpacked `google.rpc` details.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY

from financelake.gen.common.v1 import bar_pb2
from financelake.gen.ingestion.v1 import import_pb2
from financelake.gen.ingestion.v1 import ingestion_service_pb2 as pb
from financelake.gen.ingestion.v1 import ingestion_service_pb2_grpc as pb_grpc
from financelake.services import errors
from financelake.services.ingestion.fast_validation import valid_request_batches
from financelake.services.ingestion.servicer import SERVICE_NAME
from financelake.services.server import ServerHealth, ServiceRegistration, build_server
from financelake.services.server.validation import REQUEST_BYTES, REQUEST_WIRE
from financelake.services.settings import Settings
from tests.builders import tick_batch
from tests.fixtures.grpc import (
    RunningServer,
    StartServer,
    error_info,
    field_violations,
    running_server,
    stub_for,
)

pytestmark = pytest.mark.integration

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class ScriptedIngestion(pb_grpc.IngestionServiceServicer):
    """Answers normally unless a test set `error`, which it then raises."""

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.calls = 0
        self.request_bytes: list[bytes | None] = []
        self.request_wire: list[Any] = []

    async def PublishTicks(self, request, context):
        self.calls += 1
        self.request_bytes.append(REQUEST_BYTES.get())
        self.request_wire.append(REQUEST_WIRE.get())
        if self.error is not None:
            raise self.error
        return pb.PublishTicksResponse(accepted_batches=len(request.batches))

    async def IngestTicks(self, request_iterator, context):
        self.calls += 1
        batches = 0
        async for request in request_iterator:
            self.request_bytes.append(REQUEST_BYTES.get())
            batches += len(request.batches)
        return pb.IngestTicksResponse(accepted_batches=batches)

    async def ImportHistory(self, request, context) -> AsyncIterator[pb.ImportHistoryResponse]:
        self.calls += 1
        yield pb.ImportHistoryResponse(rows_fetched=1)
        if self.error is not None:
            raise self.error
        yield pb.ImportHistoryResponse(rows_fetched=2)


def history_request() -> pb.ImportHistoryRequest:
    return pb.ImportHistoryRequest(
        source=import_pb2.IMPORT_SOURCE_SYNTHETIC, symbols=["AAPL"], interval=bar_pb2.INTERVAL_1D
    )


@pytest.fixture
def servicer() -> ScriptedIngestion:
    return ScriptedIngestion()


@pytest.fixture
async def ingestion(grpc_server: StartServer, servicer: ScriptedIngestion) -> RunningServer:
    def build(settings: Settings, health: ServerHealth) -> tuple[grpc.aio.Server, int]:
        registration = ServiceRegistration(
            pb_grpc.add_IngestionServiceServicer_to_server, servicer, SERVICE_NAME
        )
        return build_server(settings, 0, registration, health=health)

    return await grpc_server(build)


@pytest.fixture
def stub(ingestion: RunningServer) -> pb_grpc.IngestionServiceStub:
    return stub_for(pb_grpc.IngestionServiceStub, ingestion.channel)


@pytest.fixture
async def wired(grpc_server: StartServer, servicer: ScriptedIngestion) -> RunningServer:
    """The scripted service behind the ingestion server's wire path for tick requests."""

    def build(settings: Settings, health: ServerHealth) -> tuple[grpc.aio.Server, int]:
        registration = ServiceRegistration(
            pb_grpc.add_IngestionServiceServicer_to_server, servicer, SERVICE_NAME
        )
        wire = {pb.PublishTicksRequest.DESCRIPTOR.full_name: valid_request_batches}
        return build_server(settings, 0, registration, health=health, wire_validation=wire)

    return await grpc_server(build)


async def test_valid_request_reaches_the_handler(stub, servicer) -> None:
    response = await stub.PublishTicks(pb.PublishTicksRequest(batches=[tick_batch()]), timeout=5)

    assert response.accepted_batches == 1
    assert servicer.calls == 1


async def test_the_handler_sees_the_wire_bytes_of_each_request_it_is_given(stub, servicer) -> None:
    single = pb.PublishTicksRequest(batches=[tick_batch(), tick_batch(symbol="MSFT")])
    streamed = [
        pb.IngestTicksRequest(batches=[tick_batch(prices=(float(i), 2.0))]) for i in (1, 2, 3)
    ]

    async def requests() -> AsyncIterator[pb.IngestTicksRequest]:
        for request in streamed:
            yield request

    await stub.PublishTicks(single, timeout=5)
    await stub.IngestTicks(requests(), timeout=5)

    assert servicer.request_bytes == [r.SerializeToString() for r in (single, *streamed)]


async def test_a_request_proven_from_its_bytes_reaches_the_handler_unparsed(
    wired: RunningServer, servicer: ScriptedIngestion
) -> None:
    stub = stub_for(pb_grpc.IngestionServiceStub, wired.channel)
    proven = pb.PublishTicksRequest(batches=[tick_batch(), tick_batch(symbol="MSFT")])
    unicode = pb.PublishTicksRequest(batches=[tick_batch(trade_id_prefix="é")])

    for request in (proven, unicode):
        response = await stub.PublishTicks(request, timeout=5)
        # The handler read `request.batches`: an unparsed request parses on first use.
        assert response.accepted_batches == len(request.batches)

    first, second = servicer.request_wire
    assert [batch.symbol for batch in first] == ["AAPL", "MSFT"]
    assert second is None  # not ASCII: parsed and validated as usual
    assert servicer.request_bytes == [r.SerializeToString() for r in (proven, unicode)]


async def test_behind_a_wire_path_bad_requests_still_get_their_exact_errors(
    wired: RunningServer, servicer: ScriptedIngestion
) -> None:
    stub = stub_for(pb_grpc.IngestionServiceStub, wired.channel)
    invalid = pb.PublishTicksRequest(batches=[tick_batch(prices=(1.0, -1.0))])
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.PublishTicks(invalid, timeout=5)
    assert field_violations(refused.value) == [("batches[0].prices[1]", "must be greater than 0")]

    publish = wired.channel.unary_unary(
        f"/{SERVICE_NAME}/PublishTicks",
        request_serializer=lambda raw: raw,
        response_deserializer=lambda raw: raw,
    )
    with pytest.raises(grpc.aio.AioRpcError) as malformed:
        await publish(invalid.SerializeToString()[:-3], timeout=5)
    assert malformed.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(malformed.value).reason == "MALFORMED_REQUEST"
    assert servicer.calls == 0


async def test_domain_error_becomes_its_code_with_one_error_info(stub, servicer) -> None:
    servicer.error = errors.NotFound("no such symbol: ZZZZ", metadata={"symbol": "ZZZZ"})

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.PublishTicks(pb.PublishTicksRequest(batches=[tick_batch()]), timeout=5)

    assert raised.value.code() is grpc.StatusCode.NOT_FOUND
    assert raised.value.details() == "no such symbol: ZZZZ"
    info = error_info(raised.value)
    assert (info.reason, info.domain, dict(info.metadata)) == (
        "NOT_FOUND",
        "financelake.io",
        {"symbol": "ZZZZ"},
    )
    assert field_violations(raised.value) == []


async def test_error_mid_server_stream_ends_it_with_the_mapped_status(stub, servicer) -> None:
    servicer.error = errors.Overloaded("import queue full", metadata={"limit": "4"})
    received: list[int] = []

    async def consume() -> None:
        async for response in stub.ImportHistory(history_request(), timeout=5):
            received.append(response.rows_fetched)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await consume()

    assert received == [1]
    assert raised.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_info(raised.value).reason == "OVERLOADED"


async def test_unexpected_exception_is_internal_logged_and_not_leaked(
    stub, servicer, caplog: pytest.LogCaptureFixture
) -> None:
    servicer.error = RuntimeError("catalog password=hunter2")

    with (
        caplog.at_level(logging.ERROR, logger="financelake.services.server.errors"),
        pytest.raises(grpc.aio.AioRpcError) as raised,
    ):
        await stub.PublishTicks(pb.PublishTicksRequest(batches=[tick_batch()]), timeout=5)

    assert raised.value.code() is grpc.StatusCode.INTERNAL
    assert "hunter2" not in raised.value.details()
    assert "hunter2" not in str(raised.value.trailing_metadata())
    assert error_info(raised.value).reason == "INTERNAL"
    (record,) = [r for r in caplog.records if r.exc_info]
    assert "PublishTicks" in record.getMessage()
    assert record.exc_info is not None
    assert "hunter2" in str(record.exc_info[1])


async def test_invalid_unary_request_is_rejected_before_the_handler(stub, servicer) -> None:
    request = pb.PublishTicksRequest(
        batches=[tick_batch(), tick_batch(symbol="", prices=(190.0, -1.0, math.nan))]
    )

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.PublishTicks(request, timeout=5)

    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    fields = [field for field, _ in field_violations(raised.value)]
    assert "batches[1].symbol" in fields
    assert "batches[1].prices[1]" in fields
    assert "batches[1].prices[2]" in fields
    info = error_info(raised.value)
    assert info.reason == "INVALID_REQUEST"
    assert info.metadata["message_type"] == "financelake.ingestion.v1.PublishTicksRequest"
    assert servicer.calls == 0


async def test_each_client_stream_message_is_validated(stub) -> None:
    async def requests() -> AsyncIterator[pb.IngestTicksRequest]:
        yield pb.IngestTicksRequest(batches=[tick_batch()])
        yield pb.IngestTicksRequest(batches=[tick_batch(prices=(1.0, 0.0))])

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.IngestTicks(requests(), timeout=5)

    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(raised.value) == [("batches[0].prices[1]", "must be greater than 0")]
    assert error_info(raised.value).metadata["stream_index"] == "1"


async def test_valid_client_stream_passes(stub) -> None:
    async def requests() -> AsyncIterator[pb.IngestTicksRequest]:
        for _ in range(3):
            yield pb.IngestTicksRequest(batches=[tick_batch()])

    response = await stub.IngestTicks(requests(), timeout=5)

    assert response.accepted_batches == 3


async def test_server_stream_request_is_validated(stub, servicer) -> None:
    async def consume() -> None:
        async for _ in stub.ImportHistory(pb.ImportHistoryRequest(symbols=["AAPL"]), timeout=5):
            pass

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await consume()

    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "source" in [field for field, _ in field_violations(raised.value)]
    assert servicer.calls == 0


async def test_unknown_method_is_unimplemented(ingestion: RunningServer) -> None:
    call = ingestion.channel.unary_unary(f"/{SERVICE_NAME}/NoSuchMethod")

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call(b"", timeout=5)

    assert raised.value.code() is grpc.StatusCode.UNIMPLEMENTED


async def test_health_follows_readiness_and_watch_streams_changes(
    grpc_settings: Settings, servicer: ScriptedIngestion
) -> None:
    def build(settings: Settings, health: ServerHealth) -> tuple[grpc.aio.Server, int]:
        registration = ServiceRegistration(
            pb_grpc.add_IngestionServiceServicer_to_server,
            servicer,
            SERVICE_NAME,
            ready_on_start=False,
        )
        return build_server(settings, 0, registration, health=health)

    health = ServerHealth()
    server, port = build(grpc_settings, health)
    await server.start()  # started, but nobody marked anything ready yet
    try:
        async with grpc.aio.insecure_channel(f"{grpc_settings.servers.host}:{port}") as channel:
            check = stub_for(health_pb2_grpc.HealthStub, channel).Check
            watch = stub_for(health_pb2_grpc.HealthStub, channel).Watch

            async def status(service: str) -> int:
                request = health_pb2.HealthCheckRequest(service=service)
                status: int = (await check(request, timeout=5)).status
                return status

            assert await status("") == NOT_SERVING
            assert await status(SERVICE_NAME) == NOT_SERVING

            await health.mark_started()
            assert await status("") == SERVING
            assert await status(SERVICE_NAME) == NOT_SERVING  # waits for its dependency

            updates = watch(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=5)
            assert (await updates.read()).status == NOT_SERVING
            await health.set_serving(SERVICE_NAME)
            assert (await updates.read()).status == SERVING
            assert await status(SERVICE_NAME) == SERVING
            updates.cancel()

            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await status("financelake.nope.v1.Nope")
            assert raised.value.code() is grpc.StatusCode.NOT_FOUND

            with pytest.raises(KeyError):
                await health.set_serving("financelake.nope.v1.Nope")

            await health.shutdown()
            assert await status("") == NOT_SERVING
            assert await status(SERVICE_NAME) == NOT_SERVING
    finally:
        await server.stop(0)


async def test_running_server_fixture_is_serving(grpc_settings, servicer) -> None:
    def build(settings: Settings, health: ServerHealth) -> tuple[grpc.aio.Server, int]:
        registration = ServiceRegistration(
            pb_grpc.add_IngestionServiceServicer_to_server, servicer, SERVICE_NAME
        )
        return build_server(settings, 0, registration, health=health)

    async with running_server(build, grpc_settings) as running:
        response = await stub_for(health_pb2_grpc.HealthStub, running.channel).Check(
            health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=5
        )
        assert response.status == SERVING
        assert running.port > 0


async def test_a_busy_port_fails_at_build(
    ingestion: RunningServer, grpc_settings, servicer
) -> None:
    registration = ServiceRegistration(
        pb_grpc.add_IngestionServiceServicer_to_server, servicer, SERVICE_NAME
    )

    with pytest.raises(RuntimeError):
        build_server(grpc_settings, ingestion.port, registration, health=ServerHealth())


def _rpc_sample(name: str, method: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(
        name, {"grpc_service": SERVICE_NAME, "grpc_method": method, **labels}
    )
    return value or 0.0


async def test_every_rpc_is_counted_by_its_final_status_and_timed(stub, servicer) -> None:
    handled = "grpc_server_handled_total"
    unary = {"grpc_type": "unary"}
    stream = {"grpc_type": "server_stream"}
    before = {
        code: _rpc_sample(handled, "PublishTicks", grpc_code=code, **unary)
        for code in ("OK", "NOT_FOUND", "INVALID_ARGUMENT", "INTERNAL")
    }
    timed = _rpc_sample("grpc_server_handling_seconds_count", "PublishTicks", **unary)
    streamed = _rpc_sample(handled, "ImportHistory", grpc_code="OK", **stream)
    sent = _rpc_sample("grpc_server_msg_sent_total", "ImportHistory", **stream)

    request = pb.PublishTicksRequest(batches=[tick_batch()])
    await stub.PublishTicks(request, timeout=5)
    bad = pb.PublishTicksRequest(batches=[tick_batch(symbol="not a symbol")])
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.PublishTicks(bad, timeout=5)  # refused by validation, before the handler
    for error in (errors.NotFound("no such symbol: ZZZZ"), RuntimeError("boom")):
        servicer.error = error
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.PublishTicks(request, timeout=5)
    servicer.error = None
    assert len([r async for r in stub.ImportHistory(history_request(), timeout=5)]) == 2

    after = {code: _rpc_sample(handled, "PublishTicks", grpc_code=code, **unary) for code in before}
    assert {code: after[code] - before[code] for code in before} == {
        "OK": 1,
        "NOT_FOUND": 1,
        "INVALID_ARGUMENT": 1,
        "INTERNAL": 1,
    }
    assert _rpc_sample("grpc_server_handling_seconds_count", "PublishTicks", **unary) == timed + 4
    assert _rpc_sample(handled, "ImportHistory", grpc_code="OK", **stream) == streamed + 1
    assert _rpc_sample("grpc_server_msg_sent_total", "ImportHistory", **stream) == sent + 2
