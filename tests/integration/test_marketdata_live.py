"""GetQuote and WatchBars on a real server reading real topics (the session broker)."""

from __future__ import annotations

import asyncio
import time

import grpc
import pyarrow as pa
import pytest

from financelake.gen.common.v1 import bar_pb2, tick_pb2
from financelake.gen.marketdata.v1 import marketdata_service_pb2 as pb
from financelake.gen.marketdata.v1 import marketdata_service_pb2_grpc as pb_grpc
from financelake.services.marketdata.live import MINUTE_NS
from financelake.services.marketdata.server import build_server
from financelake.services.settings import Settings
from financelake.stream.lake import BARS, ensure_tables
from financelake.stream.lake.catalog import open_catalog
from tests.fixtures.grpc import RunningServer, StartServer, field_violations, stub_for
from tests.fixtures.ingestion import closed_bar, create_topic, produce

NOW = time.time_ns() // MINUTE_NS * MINUTE_NS


@pytest.fixture
def live_settings(grpc_settings: Settings, kafka_bootstrap: str) -> Settings:
    topics = grpc_settings.topics.model_copy(
        update={
            "ticks": create_topic(kafka_bootstrap, "md-ticks"),
            "bars": create_topic(kafka_bootstrap, "md-bars"),
        }
    )
    return grpc_settings.model_copy(update={"kafka_bootstrap": kafka_bootstrap, "topics": topics})


def trades(symbol: str, at: int, prices: list[float], tag: str) -> tuple[bytes, bytes]:
    batch = tick_pb2.TickBatch(
        symbol=symbol,
        event_time_unix_nanos=[at + i for i in range(len(prices))],
        prices=prices,
        sizes=[10.0] * len(prices),
        trade_ids=[f"{tag}-{i}" for i in range(len(prices))],
    )
    return symbol.encode(), batch.SerializeToString()


async def quote_when_live(stub: pb_grpc.MarketDataServiceStub, symbol: str) -> pb.GetQuoteResponse:
    """GetQuote, retried while the live feed is still connecting (UNAVAILABLE)."""
    async with asyncio.timeout(30):
        while True:
            try:
                response: pb.GetQuoteResponse = await stub.GetQuote(
                    pb.GetQuoteRequest(symbol=symbol), timeout=5
                )
                return response
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
            await asyncio.sleep(0.2)


async def test_quotes_come_from_live_trades_then_from_the_lake_else_not_found(
    grpc_server: StartServer, live_settings: Settings
) -> None:
    produce(
        live_settings.bootstrap_servers,
        live_settings.topics.ticks,
        [trades("AAPL", NOW + 10, [190.0, 190.5], "a")],
    )
    catalog = open_catalog(live_settings)
    ensure_tables(catalog)
    table = catalog.load_table(BARS.identifier)
    table.append(
        pa.Table.from_pylist(
            [
                {
                    "symbol": "MSFT",
                    "interval": "1m",
                    "start_time": (NOW - MINUTE_NS) // 1000,
                    "open": 400.0,
                    "high": 401.0,
                    "low": 399.0,
                    "close": 400.5,
                    "volume": 10.0,
                    "vwap": 400.2,
                    "trade_count": 3,
                    "source": "trades",
                    "adjusted": False,
                    "revision": 0,
                }
            ],
            schema=BARS.schema.as_arrow(),
        )
    )
    running: RunningServer = await grpc_server(
        lambda _, health: build_server(live_settings, health)
    )
    stub = stub_for(pb_grpc.MarketDataServiceStub, running.channel)

    quote = (await quote_when_live(stub, "AAPL")).quote
    assert (quote.last_price, quote.last_size) == (190.5, 10.0)
    assert quote.last_trade_time.ToNanoseconds() == NOW + 11
    assert (quote.current_bar.open, quote.current_bar.close, quote.current_bar.trade_count) == (
        190.0,
        190.5,
        2,
    )
    assert quote.current_bar.start_time.ToNanoseconds() == NOW
    assert quote.staleness.ToNanoseconds() >= 0

    lake_only = (await quote_when_live(stub, "MSFT")).quote
    assert lake_only.last_price == 400.5
    assert not lake_only.HasField("current_bar")

    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await stub.GetQuote(pb.GetQuoteRequest(symbol="NOPE"), timeout=5)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


async def test_watch_bars_starts_with_the_last_closed_bar_and_streams_changes(
    grpc_server: StartServer, live_settings: Settings
) -> None:
    produce(
        live_settings.bootstrap_servers,
        live_settings.topics.bars,
        [closed_bar("AAPL", NOW - MINUTE_NS, 189.0)],
    )
    running = await grpc_server(lambda _, health: build_server(live_settings, health))
    stub = stub_for(pb_grpc.MarketDataServiceStub, running.channel)
    await quote_when_live_or_missing(stub)

    fast = stub.WatchBars(pb.WatchBarsRequest(symbols=["AAPL"], interval=bar_pb2.INTERVAL_1M))
    slow = stub.WatchBars(pb.WatchBarsRequest(symbols=["AAPL"], interval=bar_pb2.INTERVAL_1M))
    first = await asyncio.wait_for(fast.read(), 10)
    assert first.update.closed
    assert first.update.bar.close == 189.0

    # Many changes: the slow watcher (never reading) must not hold the fast one back.
    sent_at = time.monotonic()
    produce(
        live_settings.bootstrap_servers,
        live_settings.topics.ticks,
        [trades("AAPL", NOW + 5_000 + n, [200.0 + n], f"x{n}") for n in range(300)],
    )
    seen: list[pb.WatchBarsResponse] = []
    async with asyncio.timeout(15):
        while not seen or seen[-1].update.bar.trade_count < 300:
            seen.append(await fast.read())
    assert time.monotonic() - sent_at < 10
    assert all(not r.update.closed for r in seen)
    assert seen[-1].update.bar.close == 499.0
    # The slow watcher kept its newest updates, flagged where older ones were dropped.
    async with asyncio.timeout(15):
        backlog = [await slow.read()]
        while backlog[-1].update.bar.trade_count < 300:
            backlog.append(await slow.read())
    assert backlog[0].update.closed  # its start: the last closed bar
    assert any(r.update.dropped_updates for r in backlog[1:])
    assert backlog[-1].update.bar.close == 499.0
    fast.cancel()
    slow.cancel()


async def quote_when_live_or_missing(stub: pb_grpc.MarketDataServiceStub) -> None:
    """Until the live feed reads Kafka: GetQuote stops answering UNAVAILABLE."""
    async with asyncio.timeout(30):
        while True:
            try:
                await stub.GetQuote(pb.GetQuoteRequest(symbol="ZZZZ"), timeout=5)
            except grpc.aio.AioRpcError as error:
                if error.code() == grpc.StatusCode.NOT_FOUND:
                    return
                if error.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
            await asyncio.sleep(0.2)


async def test_watch_bars_builds_five_minute_bars_from_the_minutes(
    grpc_server: StartServer, live_settings: Settings
) -> None:
    running = await grpc_server(lambda _, health: build_server(live_settings, health))
    stub = stub_for(pb_grpc.MarketDataServiceStub, running.channel)
    await quote_when_live_or_missing(stub)
    call = stub.WatchBars(pb.WatchBarsRequest(symbols=["MSFT"], interval=bar_pb2.INTERVAL_5M))
    await asyncio.wait_for(call.wait_for_connection(), 10)
    window = NOW - NOW % (5 * MINUTE_NS) - 5 * MINUTE_NS
    produce(
        live_settings.bootstrap_servers,
        live_settings.topics.bars,
        [closed_bar("MSFT", window + m * MINUTE_NS, 400.0 + m) for m in range(5)],
    )
    async with asyncio.timeout(15):
        updates = [await call.read()]
        while not updates[-1].update.closed:
            updates.append(await call.read())
    bar = updates[-1].update.bar
    assert bar.interval == bar_pb2.INTERVAL_5M
    assert bar.start_time.ToNanoseconds() == window
    assert (bar.open, bar.close, bar.high, bar.low, bar.trade_count) == (400, 404, 404, 400, 5)
    assert all(not u.update.closed for u in updates[:-1])  # the window built up minute by minute
    call.cancel()


MONDAY = 1_772_409_600 * 10**9  # 2026-03-02 00:00 UTC, a Monday
OPEN = MONDAY + (14 * 60 + 30) * MINUTE_NS


def lake_minute(symbol: str, start: int, close: float) -> dict[str, object]:
    return {
        "symbol": symbol,
        "interval": "1m",
        "start_time": start // 1000,
        "open": close,
        "high": close,
        "low": close,
        "close": close,
        "volume": 1.0,
        "vwap": close,
        "trade_count": 1,
        "source": "trades",
        "adjusted": False,
        "revision": 0,
    }


@pytest.mark.parametrize(
    ("interval", "previous_start"),
    [
        (bar_pb2.INTERVAL_1D, MONDAY - 86_400 * 10**9),
        (bar_pb2.INTERVAL_1WK, MONDAY - 7 * 86_400 * 10**9),
    ],
)
async def test_watch_bars_builds_days_and_weeks_from_the_lake_and_the_live_minutes(
    grpc_server: StartServer,
    live_settings: Settings,
    interval: bar_pb2.Interval,
    previous_start: int,
) -> None:
    # The lake: Sunday's three minutes, and Monday's first fifteen (14:30-14:44), of which
    # the live feed also reads the last five from the bars topic: they must count once.
    sunday = [
        lake_minute("IBM", MONDAY - 600 * MINUTE_NS + m * MINUTE_NS, 90.0 + m) for m in range(3)
    ]
    monday = [lake_minute("IBM", OPEN + m * MINUTE_NS, 100.0 + m) for m in range(15)]
    catalog = open_catalog(live_settings)
    ensure_tables(catalog)
    catalog.load_table(BARS.identifier).append(
        pa.Table.from_pylist(sunday + monday, schema=BARS.schema.as_arrow())
    )
    produce(
        live_settings.bootstrap_servers,
        live_settings.topics.bars,
        [closed_bar("IBM", OPEN + m * MINUTE_NS, 100.0 + m) for m in range(10, 15)],
    )
    running = await grpc_server(lambda _, health: build_server(live_settings, health))
    stub = stub_for(pb_grpc.MarketDataServiceStub, running.channel)
    await quote_when_live_or_missing(stub)

    call = stub.WatchBars(pb.WatchBarsRequest(symbols=["IBM"], interval=interval))
    first = (await asyncio.wait_for(call.read(), 10)).update
    assert first.closed
    assert first.bar.start_time.ToNanoseconds() == previous_start
    assert (first.bar.open, first.bar.close, first.bar.trade_count) == (90.0, 92.0, 3)

    # The 14:45 minute starts trading.
    produce(
        live_settings.bootstrap_servers,
        live_settings.topics.ticks,
        [trades("IBM", OPEN + 15 * MINUTE_NS + 10, [120.0, 121.0], "ibm")],
    )
    async with asyncio.timeout(15):
        update = (await call.read()).update
        while update.bar.trade_count < 17:
            update = (await call.read()).update
    bar = update.bar
    assert not update.closed
    assert (bar.interval, bar.start_time.ToNanoseconds()) == (interval, MONDAY)
    assert (bar.open, bar.high, bar.low, bar.close) == (100.0, 121.0, 100.0, 121.0)
    assert (bar.trade_count, bar.volume) == (17, 35.0)
    call.cancel()


async def test_watch_bars_refuses_an_unset_interval(
    grpc_server: StartServer, live_settings: Settings
) -> None:
    running = await grpc_server(lambda _, health: build_server(live_settings, health))
    stub = stub_for(pb_grpc.MarketDataServiceStub, running.channel)
    call = stub.WatchBars(pb.WatchBarsRequest(symbols=["AAPL"]))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call.read()
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(refused.value)[0][0] == "interval"
