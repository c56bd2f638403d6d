"""IngestionService against a real broker: what is acknowledged is in Kafka byte for byte,
what is refused never gets there, and a broker outage is a clean, bounded error."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from financelake.gen.common.v1 import tick_pb2
from financelake.gen.ingestion.v1 import ingestion_service_pb2 as pb
from financelake.gen.ingestion.v1 import ingestion_service_pb2_grpc as pb_grpc
from financelake.services.ingestion.server import build_server
from financelake.services.settings import Settings
from financelake.stream.broker import LocalBroker
from financelake.stream.kafka_dist import provision
from tests.builders import tick_batch
from tests.fixtures.grpc import (
    RunningServer,
    StartServer,
    error_info,
    field_violations,
    stub_for,
)
from tests.fixtures.ingestion import create_topic, read_topic, settings_for, wait_serving
from tests.fixtures.kafka import local_broker_settings

pytestmark = pytest.mark.integration


def _stub(running: RunningServer) -> pb_grpc.IngestionServiceStub:
    return stub_for(pb_grpc.IngestionServiceStub, running.channel)


async def test_published_batches_are_in_kafka_byte_for_byte(
    ingestion: RunningServer, kafka_bootstrap: str, ticks_topic: str
) -> None:
    batches = [
        tick_batch("AAPL", prices=(190.5, 190.6, 190.55), exchanges=("XNAS",) * 3),
        tick_batch("MSFT", prices=(410.0,)),
    ]
    response = await _stub(ingestion).PublishTicks(
        pb.PublishTicksRequest(batches=batches), timeout=10
    )

    assert (response.accepted_trades, response.accepted_batches) == (4, 2)
    records = read_topic(kafka_bootstrap, ticks_topic, expected=2)
    assert sorted((key, value) for _, _, key, value in records) == sorted(
        (batch.symbol.encode(), batch.SerializeToString()) for batch in batches
    )
    written = {
        (r.partition, offset)
        for r in response.offsets
        for offset in range(r.first_offset, r.last_offset + 1)
    }
    assert written == {(partition, offset) for partition, offset, _, _ in records}
    assert all(r.topic == ticks_topic for r in response.offsets)


async def test_streamed_batches_are_acknowledged_in_order_per_symbol(
    ingestion: RunningServer, kafka_bootstrap: str, ticks_topic: str
) -> None:
    messages = 60

    async def requests() -> AsyncIterator[pb.IngestTicksRequest]:
        for i in range(messages):
            yield pb.IngestTicksRequest(
                batches=[
                    tick_batch("AAPL", prices=(100.0 + i, 100.5 + i), trade_id_prefix=f"a{i}-"),
                    tick_batch("BTC-USD", prices=(50_000.0 + i,), trade_id_prefix=f"b{i}-"),
                ]
            )

    response = await _stub(ingestion).IngestTicks(requests(), timeout=30)

    assert (response.accepted_batches, response.accepted_trades) == (2 * messages, 3 * messages)
    assert (response.rejected_batches, response.rejected_trades) == (0, 0)
    records = read_topic(kafka_bootstrap, ticks_topic, expected=2 * messages)
    assert len(records) == 2 * messages
    by_symbol: dict[bytes, list[float]] = {}
    for _, _, key, value in sorted(records):
        by_symbol.setdefault(key, []).append(tick_pb2.TickBatch.FromString(value).prices[0])
    assert by_symbol[b"AAPL"] == [100.0 + i for i in range(messages)]
    assert by_symbol[b"BTC-USD"] == [50_000.0 + i for i in range(messages)]
    assert sum(r.last_offset - r.first_offset + 1 for r in response.offsets) == 2 * messages


def _now_plus(seconds: float) -> int:
    return time.time_ns() + int(seconds * 1e9)


def _with(batch: tick_pb2.TickBatch, mutate: Callable[[tick_pb2.TickBatch], None]):
    mutate(batch)
    return batch


BAD_BATCHES = [
    pytest.param(tick_batch(prices=(190.5, -1.0)), "batches[0].prices[1]", id="negative-price"),
    pytest.param(tick_batch(prices=(0.0, 1.0)), "batches[0].prices[0]", id="zero-price"),
    pytest.param(tick_batch(prices=(1.0, math.nan)), "batches[0].prices[1]", id="nan-price"),
    pytest.param(tick_batch(prices=(math.inf, 1.0)), "batches[0].prices[0]", id="inf-price"),
    pytest.param(tick_batch(symbol=""), "batches[0].symbol", id="empty-symbol"),
    pytest.param(tick_batch(symbol="aapl"), "batches[0].symbol", id="lowercase-symbol"),
    pytest.param(
        _with(tick_batch(), lambda b: b.sizes.__setitem__(1, -5.0)),
        "batches[0].sizes[1]",
        id="negative-size",
    ),
    pytest.param(
        _with(tick_batch(), lambda b: b.trade_ids.__setitem__(1, "t0")),
        "batches[0].trade_ids",
        id="duplicate-trade-id",
    ),
    pytest.param(
        _with(tick_batch(), lambda b: b.prices.append(1.0)), "batches[0]", id="ragged-columns"
    ),
    pytest.param(
        _with(tick_batch(), lambda b: b.event_time_unix_nanos.__setitem__(1, _now_plus(3600))),
        "batches[0].event_time_unix_nanos[1]",
        id="event-time-in-the-future",
    ),
    pytest.param(
        tick_batch(prices=[1.0] * 10_001, trade_id_prefix="x"),
        "batches[0].event_time_unix_nanos",
        id="batch-too-large",
    ),
]


@pytest.mark.parametrize(("bad", "field"), BAD_BATCHES)
async def test_bad_batches_are_refused_and_never_reach_kafka(
    ingestion: RunningServer,
    kafka_bootstrap: str,
    ticks_topic: str,
    bad: tick_pb2.TickBatch,
    field: str,
) -> None:
    good = tick_batch("MSFT", prices=(410.0,))
    stub = _stub(ingestion)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.PublishTicks(pb.PublishTicksRequest(batches=[bad, good]), timeout=10)

    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in {path for path, _ in field_violations(refused.value)}
    # The whole request was refused: only a later sentinel reaches the topic.
    sentinel = tick_batch("ZZZ", prices=(1.0,))
    await stub.PublishTicks(pb.PublishTicksRequest(batches=[sentinel]), timeout=10)
    records = read_topic(kafka_bootstrap, ticks_topic, expected=1)
    assert [value for _, _, _, value in records] == [sentinel.SerializeToString()]


async def test_an_invalid_message_ends_the_stream_after_what_was_acknowledged(
    ingestion: RunningServer, kafka_bootstrap: str, ticks_topic: str
) -> None:
    async def requests() -> AsyncIterator[pb.IngestTicksRequest]:
        yield pb.IngestTicksRequest(batches=[tick_batch("AAPL")])
        future = tick_batch("AAPL", trade_id_prefix="f")
        future.event_time_unix_nanos[0] = _now_plus(86_400)
        yield pb.IngestTicksRequest(batches=[future])
        yield pb.IngestTicksRequest(batches=[tick_batch("MSFT")])

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _stub(ingestion).IngestTicks(requests(), timeout=10)

    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(refused.value).metadata["accepted_batches"] == "1"
    records = read_topic(kafka_bootstrap, ticks_topic, expected=1)
    assert [key for _, _, key, _ in records] == [b"AAPL"]


async def test_concurrent_clients_are_all_acknowledged(
    ingestion: RunningServer, kafka_bootstrap: str, ticks_topic: str
) -> None:
    clients, calls = 8, 10

    async def client(number: int) -> int:
        stub = _stub(ingestion)
        trades = 0
        for call in range(calls):
            batch = tick_batch(f"S{number}", prices=(10.0, 10.5), trade_id_prefix=f"{call}-")
            response = await stub.PublishTicks(pb.PublishTicksRequest(batches=[batch]), timeout=10)
            trades += response.accepted_trades
        return trades

    assert await asyncio.gather(*(client(n) for n in range(clients))) == [2 * calls] * clients
    records = read_topic(kafka_bootstrap, ticks_topic, expected=clients * calls)
    assert len(records) == clients * calls


async def test_malformed_bytes_are_a_clean_error(ingestion: RunningServer) -> None:
    publish = ingestion.channel.unary_unary(
        "/financelake.ingestion.v1.IngestionService/PublishTicks",
        request_serializer=lambda raw: raw,
        response_deserializer=lambda raw: raw,
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await publish(b"\xff\xff\xff\xff not a protobuf", timeout=5)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # And the server is still fine.
    health = health_pb2_grpc.HealthStub(ingestion.channel)
    assert (await health.Check(health_pb2.HealthCheckRequest())).status == 1


# ---- a broker of its own, stopped mid-stream --------------------------------------------


@pytest.fixture
def own_broker(tmp_path: Path, kafka_settings: Settings) -> Iterator[LocalBroker]:
    if kafka_settings.uses_external_kafka:
        pytest.skip("stopping the broker needs a local one")  # only with an external broker
    settings = local_broker_settings(tmp_path / "home")
    provision(settings)
    broker = LocalBroker(settings)
    broker.start()
    yield broker
    broker.stop()


async def test_broker_stopped_mid_stream_is_a_clean_bounded_error(
    own_broker: LocalBroker, grpc_server: StartServer, grpc_settings: Settings
) -> None:
    bootstrap = own_broker.address
    topic = create_topic(bootstrap)
    settings = settings_for(grpc_settings, bootstrap, topic, publish_timeout_s=3.0)
    running = await grpc_server(lambda _, health: build_server(settings, health))
    await wait_serving(running.channel)
    sent: list[bytes] = []
    broker_stopped = asyncio.Event()

    async def requests() -> AsyncIterator[pb.IngestTicksRequest]:
        for i in range(10_000):
            batch = tick_batch("AAPL", prices=(100.0, 101.0), trade_id_prefix=f"{i}-")
            sent.append(batch.SerializeToString())
            yield pb.IngestTicksRequest(batches=[batch])
            if i == 20:
                # Stop only once Kafka holds these 21 batches: how far the server got by now
                # depends on the machine's load, and they are what must survive the restart.
                written = await asyncio.to_thread(read_topic, bootstrap, topic, 21, 60)
                assert len(written) >= 21, "the first batches never reached Kafka"
                await asyncio.to_thread(own_broker.stop)
                broker_stopped.set()
            await asyncio.sleep(0.005)

    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await _stub(running).IngestTicks(requests(), timeout=60)
    elapsed = time.monotonic() - started

    assert broker_stopped.is_set()
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE, failed.value.details()
    assert elapsed < 30, f"took {elapsed:.0f}s to fail"
    # Back up: whatever Kafka kept is whole batches that were sent, never a fragment.
    own_broker.start()
    kept = read_topic(bootstrap, topic, expected=21, timeout=60)
    assert len(kept) >= 21
    assert {value for _, _, _, value in kept} <= set(sent)
    for _, _, _, value in kept:
        assert len(tick_pb2.TickBatch.FromString(value).prices) == 2
