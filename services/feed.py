"""A live Kafka topic fanned out to many in-process subscribers (WatchAlerts; WatchBars next).

One consumer per topic and server process, however many subscribers: it reads every
partition without a consumer group (nothing is committed, every server process sees every
record), starting at the end when the first subscriber arrives, and decodes each record once.
Every subscriber has its own bounded buffer and an optional filter. When a buffer is full its
oldest item is dropped and the next item delivered to that subscriber says how many were
skipped: a slow subscriber loses part of its own backlog, and never slows the consumer or the
other subscribers. The consumer stops with the server (`TopicFeed` is a server dependency).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from financelake.services.errors import Overloaded, Unavailable
from financelake.services.kafka_security import aiokafka_options
from financelake.services.settings import KafkaClientSettings

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_BUFFER_SIZE = 256
DEFAULT_MAX_SUBSCRIBERS = 1024
DEFAULT_START_TIMEOUT_S = 10.0
# How long one fetch waits for records; it bounds nothing a subscriber sees (records are
# handed over as soon as they arrive), only how often the loop wakes when the topic is quiet.
_POLL_MS = 1000


def _everything(_: object) -> bool:
    return True


@dataclass(frozen=True)
class Delivery(Generic[T]):
    """One item for one subscriber.

    Attributes:
        item: The decoded record.
        skipped: Items this subscriber missed just before this one because its buffer was
            full (0 when none).
    """

    item: T
    skipped: int


class Subscription(Generic[T]):
    """One subscriber's bounded buffer; `async for delivery in subscription` reads it."""

    def __init__(self, accept: Callable[[T], bool], size: int) -> None:
        self._accept = accept
        # deque(maxlen) drops the oldest item itself when a new one arrives.
        self._items: deque[T] = deque(maxlen=size)
        self._skipped = 0
        self._ready = asyncio.Event()
        self._error: Exception | None = None

    def offer(self, item: T) -> bool:
        """Buffer `item` if this subscriber wants it; True when that dropped the oldest."""
        if not self._accept(item):
            return False
        dropped = len(self._items) == self._items.maxlen
        if dropped:
            self._skipped += 1
        self._items.append(item)
        self._ready.set()
        return dropped

    def end(self, error: Exception) -> None:
        """End the subscription: what is buffered is still delivered, then `error` raised."""
        self._error = error
        self._ready.set()

    def __aiter__(self) -> Subscription[T]:
        return self

    async def __anext__(self) -> Delivery[T]:
        while not self._items:
            if self._error is not None:
                raise self._error
            self._ready.clear()
            await self._ready.wait()
        skipped, self._skipped = self._skipped, 0
        return Delivery(self._items.popleft(), skipped)


class FanOut(Generic[T]):
    """Offers every published item to every subscriber; never waits on any of them."""

    def __init__(self, buffer_size: int, max_subscribers: int) -> None:
        if buffer_size < 1:
            raise ValueError("buffer_size must be at least 1")
        self._buffer_size = buffer_size
        self._max_subscribers = max_subscribers
        self._subscribers: set[Subscription[T]] = set()
        self.dropped = 0
        """Items dropped from full buffers, over all subscribers, since the start."""

    @property
    def subscribers(self) -> int:
        """Subscribers now."""
        return len(self._subscribers)

    def add(self, accept: Callable[[T], bool] = _everything) -> Subscription[T]:
        """A new subscriber receiving the items `accept` keeps, from now on."""
        if len(self._subscribers) >= self._max_subscribers:
            raise Overloaded(
                f"{len(self._subscribers)} subscribers already watch this feed; retry later",
                metadata={"max_subscribers": str(self._max_subscribers)},
            )
        subscription = Subscription(accept, self._buffer_size)
        self._subscribers.add(subscription)
        return subscription

    def remove(self, subscription: Subscription[T]) -> None:
        """Stop offering items to `subscription`."""
        self._subscribers.discard(subscription)

    def publish(self, item: T) -> None:
        """Offer `item` to every subscriber."""
        for subscription in self._subscribers:
            if subscription.offer(item):
                self.dropped += 1

    def end_all(self, reason: str) -> None:
        """End every subscription with Unavailable(`reason`) and forget them."""
        for subscription in self._subscribers:
            subscription.end(Unavailable(reason))
        self._subscribers.clear()


class TopicFeed(Generic[T]):
    """The records of one topic, decoded with `decode`, for any number of subscribers.

    A server dependency: `start` does nothing (the consumer starts with the first
    subscriber, so a server nobody watches does not read the topic), `stop` closes the
    consumer and ends the subscriptions left. `kafka` is how the consumer reaches the brokers
    (PLAINTEXT or TLS).
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        decode: Callable[[bytes], T],
        *,
        kafka: KafkaClientSettings,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        max_subscribers: int = DEFAULT_MAX_SUBSCRIBERS,
        start_timeout_s: float = DEFAULT_START_TIMEOUT_S,
    ) -> None:
        self._bootstrap = bootstrap_servers
        self._kafka = kafka
        self._topic = topic
        self._decode = decode
        self._start_timeout_s = start_timeout_s
        self._hub: FanOut[T] = FanOut(buffer_size, max_subscribers)
        self._starting: asyncio.Task[None] | None = None
        self._pump: asyncio.Task[None] | None = None
        self._stopped = False

    @property
    def subscribers(self) -> int:
        """Subscribers now."""
        return self._hub.subscribers

    @property
    def dropped(self) -> int:
        """Items dropped from full subscriber buffers since the start."""
        return self._hub.dropped

    async def start(self) -> None:
        """Nothing to do before the first subscriber."""

    async def stop(self) -> None:
        """Close the consumer and end the subscriptions left with Unavailable."""
        self._stopped = True
        tasks = [task for task in (self._starting, self._pump) if task is not None]
        self._pump = None
        for task in tasks:
            task.cancel()
            # Its outcome is known: cancelled, or a start failure its waiters were told of.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._hub.end_all("the server is stopping")

    @contextlib.asynccontextmanager
    async def subscribe(
        self, accept: Callable[[T], bool] = _everything
    ) -> AsyncIterator[Subscription[T]]:
        """A subscription to the records `accept` keeps, from the moment this returns.

        Raises Unavailable when Kafka cannot be read, Overloaded when too many subscribers
        already watch. Leaving the context (including by cancellation) unsubscribes.
        """
        await self._ensure_running()
        if self._pump is None:
            # The consumer failed between starting and now; its error is in the log.
            raise Unavailable(f"reading {self._topic} from Kafka failed; retry")
        subscription = self._hub.add(accept)
        try:
            yield subscription
        finally:
            self._hub.remove(subscription)

    async def _ensure_running(self) -> None:
        if self._stopped:
            raise Unavailable("the server is stopping")
        if self._pump is not None:
            return
        if self._starting is None:
            # One start for all the subscribers arriving while the consumer connects.
            self._starting = asyncio.create_task(self._start(), name=f"feed-{self._topic}")
            self._starting.add_done_callback(self._start_done)
        # Shielded: a subscriber giving up must not cancel the start the others wait for.
        await asyncio.shield(self._starting)

    def _start_done(self, task: asyncio.Task[None]) -> None:
        self._starting = None
        if not task.cancelled():
            task.exception()  # every waiter re-raised it; this marks it as retrieved

    async def _start(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            client_id=f"financelake-feed-{self._topic}",
            group_id=None,
            enable_auto_commit=False,
            # Where to go when there is no position: retention deleted records under it, or the
            # topic gained partitions (all are reassigned then). The end, never a replay of
            # the whole topic to every subscriber.
            auto_offset_reset="latest",
            **aiokafka_options(self._kafka),
        )
        # Without a group, subscribing assigns every partition (and any added later).
        consumer.subscribe([self._topic])
        try:
            await asyncio.wait_for(self._position(consumer), timeout=self._start_timeout_s)
        except BaseException as exc:
            await consumer.stop()
            if isinstance(exc, KafkaError | TimeoutError):
                raise Unavailable(
                    f"cannot read {self._topic} from Kafka at {self._bootstrap}: "
                    f"{str(exc) or 'timed out'}"
                ) from exc
            raise
        self._pump = asyncio.create_task(self._run(consumer), name=f"feed-{self._topic}")

    async def _position(self, consumer: AIOKafkaConsumer) -> None:
        # Returns with every partition assigned; fails (or times out) if the topic is missing.
        await consumer.start()
        partitions = list(consumer.assignment())
        # Explicit end offsets rather than the lazy reset: every record produced after
        # subscribe() returns is then certain to be read.
        for partition, offset in (await consumer.end_offsets(partitions)).items():
            consumer.seek(partition, offset)
        logger.info(
            "reading %s from its end (%d partitions) for live subscribers",
            self._topic,
            len(partitions),
        )

    async def _run(self, consumer: AIOKafkaConsumer) -> None:
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=_POLL_MS)
                for records in batches.values():
                    for record in records:
                        self._publish(record.value, record.partition, record.offset)
        except Exception:
            # Whatever stopped the loop, subscribers must hear of it rather than wait forever;
            # the next subscriber starts a new consumer.
            logger.exception("reading %s stopped", self._topic)
            self._pump = None
            self._hub.end_all(f"reading {self._topic} from Kafka failed; retry")
        finally:
            await consumer.stop()

    def _publish(self, value: bytes | None, partition: int, offset: int) -> None:
        if value is None:
            return  # a tombstone carries nothing to deliver
        try:
            item = self._decode(value)
        except Exception as exc:  # any decoder's error: one bad record must cost only itself
            logger.warning(
                "skipping an undecodable record of %s at %d:%d: %s",
                self._topic,
                partition,
                offset,
                exc,
            )
            return
        self._hub.publish(item)
