"""The market-data live feed on the session broker: warm-up from the recent past, then live
trades and closed bars reach the live view and the bar-update subscribers."""

from __future__ import annotations

import asyncio
import time

from confluent_kafka import Producer

from financelake.gen.common.v1 import bar_pb2, tick_pb2
from financelake.services.ingestion.records import Interval
from financelake.services.marketdata.live import MINUTE_NS, LiveMarket
from financelake.services.marketdata.live_feed import BarUpdate, LiveFeed
from financelake.services.settings import KafkaClientSettings
from tests.fixtures.ingestion import create_topic

NOW = time.time_ns() // MINUTE_NS * MINUTE_NS


def _batch(symbol: str, at: int, price: float) -> bytes:
    return tick_pb2.TickBatch(
        symbol=symbol,
        event_time_unix_nanos=[at, at + 1],
        prices=[price - 1, price],
        sizes=[5, 7],
        trade_ids=[f"{symbol}{at}a", f"{symbol}{at}b"],
    ).SerializeToString()


def _produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for key, value in records:
        producer.produce(topic, value, key)
    assert producer.flush(10) == 0


async def test_quotes_after_warm_up_and_live_updates(kafka_bootstrap: str) -> None:
    ticks, bars = (
        create_topic(kafka_bootstrap, "live-ticks"),
        create_topic(kafka_bootstrap, "live-bars"),
    )
    _produce(kafka_bootstrap, ticks, [(b"AAPL", _batch("AAPL", NOW + 1_000, 190.0))])
    feed = LiveFeed(
        kafka_bootstrap,
        ticks,
        bars,
        LiveMarket(),
        kafka=KafkaClientSettings(),
        warmup_records=10,
        buffer_size=8,
    )
    await feed.start()
    try:
        async with asyncio.timeout(20):
            await feed.wait_ready()
        quote = feed.market.quote("AAPL", now_ns=NOW + 2_001)
        assert quote is not None  # known from the warm-up, before any new trade
        assert (quote.trade.price, quote.trade.size, quote.staleness_ns) == (190.0, 7.0, 1_000)

        updates: list[BarUpdate] = []
        subscription = feed.updates.add()

        async def collect() -> None:
            async for delivery in subscription:
                updates.append(delivery.item)
                if len(updates) == 2:
                    return

        collecting = asyncio.create_task(collect())
        _produce(kafka_bootstrap, ticks, [(b"AAPL", _batch("AAPL", NOW + 5_000, 191.0))])
        closed = bar_pb2.Bar(
            symbol="AAPL",
            interval=bar_pb2.INTERVAL_1M,
            open=1,
            high=2,
            low=0.5,
            close=1.5,
            volume=10,
            vwap=1.2,
            trade_count=3,
            source=bar_pb2.BAR_SOURCE_TRADES,
        )
        closed.start_time.FromNanoseconds(NOW - MINUTE_NS)
        _produce(kafka_bootstrap, bars, [(b"AAPL", closed.SerializeToString())])
        await asyncio.wait_for(collecting, 20)
        feed.updates.remove(subscription)

        live = next(u for u in updates if not u.closed)
        assert (live.bar.start_time_ns, live.bar.trade_count, live.bar.close) == (NOW, 4, 191.0)
        done = next(u for u in updates if u.closed)
        assert (done.bar.start_time_ns, done.bar.close) == (NOW - MINUTE_NS, 1.5)
        assert feed.market.last_closed("AAPL", Interval.M1) == done.bar
    finally:
        await feed.stop()
