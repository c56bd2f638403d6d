"""The market-data server's one reader of the live topics: it keeps `LiveMarket` current and
fans bar updates out to WatchBars subscribers.

One group-less consumer per server process reads every partition of the ticks and bars
topics (nothing is committed: every replica sees everything). It starts a little before the
end of each partition (`warmup_records`), so quotes are answerable right after a restart
instead of only after each symbol's next trade. A server dependency: `start` connects in the
background and never blocks the server; until the feed is reading, `ready` is False and the
RPCs that need it answer UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from google.protobuf.message import DecodeError

from financelake.gen.common.v1 import bar_pb2
from financelake.services.feed import FanOut
from financelake.services.ingestion.convert import INTERVALS, SOURCE_PROTOS
from financelake.services.ingestion.records import NANOS_PER_SECOND
from financelake.services.kafka_security import aiokafka_options
from financelake.services.marketdata.live import LiveBar, LiveMarket
from financelake.services.settings import KafkaClientSettings
from financelake.stream.tick_columns import decode_tick_batch

logger = logging.getLogger(__name__)

_SOURCES = {number: source.value for source, number in SOURCE_PROTOS.items()}
_RETRY_S = 2.0


@dataclass(frozen=True, slots=True)
class BarUpdate:
    """A bar for WatchBars: in progress (from trades) or closed (from the bars topic)."""

    bar: LiveBar
    closed: bool


def live_bar(message: bar_pb2.Bar) -> LiveBar:
    """A bars-topic message as a `LiveBar`."""
    start = message.start_time.seconds * NANOS_PER_SECOND + message.start_time.nanos
    return LiveBar(
        symbol=message.symbol,
        interval=INTERVALS[message.interval],
        start_time_ns=start,
        open=message.open,
        high=message.high,
        low=message.low,
        close=message.close,
        volume=message.volume,
        vwap=message.vwap,
        trade_count=message.trade_count,
        first_time_ns=start,
        last_time_ns=start,
        source=_SOURCES.get(message.source, "trades"),
        adjusted=message.adjusted,
        revision=message.revision,
    )


class LiveFeed:
    """Reads the ticks and bars topics into a `LiveMarket` and a `FanOut` of bar updates;
    `kafka` is how its consumer reaches the brokers (PLAINTEXT or TLS)."""

    def __init__(
        self,
        bootstrap_servers: str,
        ticks_topic: str,
        bars_topic: str,
        market: LiveMarket,
        *,
        kafka: KafkaClientSettings,
        warmup_records: int = 100,
        buffer_size: int = 256,
        max_subscribers: int = 1024,
    ) -> None:
        self._bootstrap = bootstrap_servers
        self._kafka = kafka
        self._ticks = ticks_topic
        self._bars = bars_topic
        self.market = market
        self.updates: FanOut[BarUpdate] = FanOut(buffer_size, max_subscribers)
        self._warmup = warmup_records
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    @property
    def ready(self) -> bool:
        """True once the feed reads the topics (and has replayed its warm-up)."""
        return self._ready.is_set()

    async def wait_ready(self) -> None:
        """Until the feed reads the topics (callers bound the wait with asyncio.timeout)."""
        await self._ready.wait()

    async def start(self) -> None:
        """Connect in the background (retrying while Kafka is away)."""
        self._task = asyncio.create_task(self._run_forever(), name="marketdata-live-feed")

    async def stop(self) -> None:
        """Stop reading and end every subscription."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.updates.end_all("the server is stopping")

    async def _run_forever(self) -> None:
        while True:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap,
                client_id="financelake-marketdata-live",
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="latest",
                **aiokafka_options(self._kafka),
            )
            consumer.subscribe([self._ticks, self._bars])
            try:
                await consumer.start()
                await self._position(consumer)
                await self._pump(consumer)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("reading the live topics failed; retrying in %.0f s", _RETRY_S)
                self._ready.clear()
                self.updates.end_all("the live feed lost Kafka; retry")
            finally:
                await consumer.stop()
            await asyncio.sleep(_RETRY_S)

    async def _position(self, consumer: AIOKafkaConsumer) -> None:
        # Without a group, the subscription (made before start) assigns every partition.
        partitions = sorted(consumer.assignment())
        if {tp.topic for tp in partitions} != {self._ticks, self._bars}:
            raise RuntimeError(f"topics {self._ticks} and {self._bars} are not both readable")
        starts = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        for partition in partitions:
            consumer.seek(partition, max(starts[partition], ends[partition] - self._warmup))
        # Ready once the warm-up records are applied: quotes then reflect the recent past.
        remaining = {tp: end for tp, end in ends.items() if end > starts[tp]}
        while remaining:
            batches = await consumer.getmany(timeout_ms=1000)
            self._apply(batches)
            for tp in list(remaining):
                if await consumer.position(tp) >= remaining[tp]:
                    del remaining[tp]
        self._ready.set()
        logger.info("live feed reading %s and %s", self._ticks, self._bars)

    async def _pump(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            self._apply(await consumer.getmany(timeout_ms=1000))

    def _apply(self, batches: dict[TopicPartition, list[object]]) -> None:
        for tp, records in batches.items():
            for record in records:
                value = getattr(record, "value", None)
                if value is None:
                    continue
                try:
                    if tp.topic == self._ticks:
                        bar = self.market.on_trades(decode_tick_batch(value))
                        if bar is not None:
                            self.updates.publish(BarUpdate(bar, closed=False))
                    else:
                        closed = live_bar(bar_pb2.Bar.FromString(value))
                        self.market.on_bar(closed)
                        self.updates.publish(BarUpdate(closed, closed=True))
                except (DecodeError, ValueError, KeyError) as exc:
                    logger.warning(
                        "skipping an undecodable record of %s at %d:%d: %s",
                        tp.topic,
                        tp.partition,
                        getattr(record, "offset", -1),
                        exc,
                    )
