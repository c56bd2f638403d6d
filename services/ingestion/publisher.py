"""The Kafka side of ingestion: an idempotent, acks=all producer that answers only once Kafka
has durably written a call's records.

One Kafka record per batch (key = symbol, so a symbol's batches stay ordered in one
partition). A call waits for every acknowledgement of its own records; if Kafka cannot take
them within the call's time it fails with UNAVAILABLE, and when too many bytes already wait
for Kafka it fails at once with RESOURCE_EXHAUSTED: memory stays bounded and nothing is
dropped silently. The producer connects in the background, so the server starts even when
Kafka is down and reports NOT_SERVING until Kafka answers.

A traced call gets a PRODUCER span from hand-over to acknowledgement, and its records carry
that span's context in their headers, where the stream worker picks the trace up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import RecordMetadata
from opentelemetry.trace import Span, StatusCode

from financelake.observability.tracing import producer_span, recording
from financelake.services.errors import Overloaded, Unavailable
from financelake.services.kafka_security import aiokafka_options, describe
from financelake.services.server.health import ServerHealth
from financelake.services.settings import Settings

logger = logging.getLogger(__name__)

_RECONNECT_DELAYS_S = (0.5, 1.0, 2.0, 5.0)
Headers = list[tuple[str, bytes]] | None


@dataclass(frozen=True)
class WrittenRange:
    """Offsets a call wrote to one partition (inclusive)."""

    topic: str
    partition: int
    first_offset: int
    last_offset: int


def merge_ranges(ranges: Iterable[WrittenRange]) -> list[WrittenRange]:
    """One range per partition covering all of `ranges`, ordered by topic and partition."""
    bounds: dict[tuple[str, int], tuple[int, int]] = {}
    for r in ranges:
        key = (r.topic, r.partition)
        low, high = bounds.get(key, (r.first_offset, r.last_offset))
        bounds[key] = (min(low, r.first_offset), max(high, r.last_offset))
    return [WrittenRange(t, p, low, high) for (t, p), (low, high) in sorted(bounds.items())]


def written_ranges(acknowledged: Sequence[RecordMetadata]) -> list[WrittenRange]:
    """Collapse per-record acknowledgements into one range per partition."""
    return merge_ranges(
        WrittenRange(r.topic, r.partition, r.offset, r.offset) for r in acknowledged
    )


def producer_config(settings: Settings) -> dict[str, Any]:
    """The `AIOKafkaProducer` keyword arguments ingestion publishes with (public so that the
    ingest benchmark measures a bare producer with exactly the same settings)."""
    ingestion = settings.ingestion
    return {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": "financelake-ingestion",
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": ingestion.linger_ms,
        # A TickBatch of 1,000 trades is ~28-50 KiB: batch many per request.
        "max_batch_size": ingestion.max_request_bytes,
        "max_request_size": ingestion.max_request_bytes,
        "request_timeout_ms": int(ingestion.publish_timeout_s * 1000),
        **aiokafka_options(settings.kafka),
    }


class _ByteBudget:
    """Bytes awaiting Kafka's acknowledgement, across all calls; refuses beyond the limit."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._used = 0

    def take(self, size: int) -> None:
        # A single call larger than the whole budget may still go alone.
        if self._used and self._used + size > self._limit:
            raise Overloaded(
                f"{self._used} bytes already await Kafka's acknowledgement "
                f"(limit {self._limit}); retry with backoff",
                metadata={"in_flight_bytes": str(self._used)},
            )
        self._used += size

    def give_back(self, size: int) -> None:
        self._used -= size


class KafkaPublisher:
    """Publishes keyed records and waits for Kafka's acknowledgement (a server dependency)."""

    def __init__(self, settings: Settings, health: ServerHealth, service: str) -> None:
        self._settings = settings
        self._health = health
        self._service = service
        self._producer: AIOKafkaProducer | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._budget = _ByteBudget(settings.ingestion.max_in_flight_bytes)
        self._serving = False

    async def _report(self, serving: bool) -> None:
        # Only on change: publish() runs a thousand times a second.
        if serving != self._serving:
            self._serving = serving
            if serving:
                await self._health.set_serving(self._service)
            else:
                await self._health.set_not_serving(self._service)

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(**producer_config(self._settings))

    async def start(self) -> None:
        """Begin connecting in the background; SERVING once Kafka answers."""
        self._connecting = asyncio.create_task(self._connect(), name="kafka-connect")

    async def _connect(self) -> None:
        attempt = 0
        while True:
            producer = self._new_producer()
            try:
                await producer.start()
            except KafkaError as exc:
                await producer.stop()
                delay = _RECONNECT_DELAYS_S[min(attempt, len(_RECONNECT_DELAYS_S) - 1)]
                logger.warning(
                    "Kafka not reachable over %s (%s); retrying in %.1fs",
                    describe(self._settings.kafka),
                    exc,
                    delay,
                )
                attempt += 1
                await asyncio.sleep(delay)
                continue
            self._producer = producer
            logger.info("Kafka producer connected to %s", self._settings.bootstrap_servers)
            await self._report(serving=True)
            return

    async def stop(self) -> None:
        """Flush what is in flight and close the producer."""
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connecting
        if self._producer is not None:
            producer, self._producer = self._producer, None
            timeout = self._settings.ingestion.publish_timeout_s
            try:
                # Bounded: with Kafka gone, flushing would wait forever. Whatever is left
                # was never acknowledged, so its callers already got an error.
                await asyncio.wait_for(producer.stop(), timeout=timeout)
            except TimeoutError:
                logger.error("Kafka producer did not flush within %.1fs; closed anyway", timeout)

    async def publish(
        self, topic: str, records: Sequence[tuple[bytes, bytes]], timeout_s: float
    ) -> list[WrittenRange]:
        """Write `(key, value)` records and wait until Kafka acknowledged every one."""
        acknowledged = await self.enqueue(topic, records, timeout_s)
        return await acknowledged

    async def enqueue(
        self, topic: str, records: Sequence[tuple[bytes, bytes]], timeout_s: float
    ) -> asyncio.Task[list[WrittenRange]]:
        """Hand `(key, value)` records to the producer, in order; the returned task ends when
        Kafka acknowledged every one (acks=all), within `timeout_s` of this call.

        Awaiting `enqueue` calls one after another keeps a key's records in call order.
        Raises (or the task raises) Unavailable when Kafka is unreachable or does not
        acknowledge in time (records of a failed call may still be written: callers retry,
        and the lake deduplicates on (symbol, trade id)), and Overloaded at once when too
        many bytes already wait for Kafka.
        """
        producer = self._producer
        if producer is None:
            raise Unavailable(f"Kafka at {self._settings.bootstrap_servers} is not reachable yet")
        size = sum(len(key) + len(value) for key, value in records)
        self._budget.take(size)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        span, headers = _publish_span(topic, len(records))
        try:
            # send() only enqueues, waiting while the producer's buffer is full.
            pending = await asyncio.wait_for(
                _send_each(producer, topic, records, headers), timeout=timeout_s
            )
        except BaseException as exc:
            self._budget.give_back(size)
            _end(span, exc)
            if isinstance(exc, TimeoutError | KafkaError):
                raise await self._unavailable(exc, timeout_s) from exc
            raise
        return asyncio.create_task(self._acknowledged(pending, size, deadline - loop.time(), span))

    async def _acknowledged(
        self,
        pending: Sequence[asyncio.Future[RecordMetadata]],
        size: int,
        timeout_s: float,
        span: Span | None,
    ) -> list[WrittenRange]:
        try:
            acknowledged = await asyncio.wait_for(asyncio.gather(*pending), timeout=timeout_s)
        except (TimeoutError, KafkaError) as exc:
            _end(span, exc)
            raise await self._unavailable(exc, timeout_s) from exc
        finally:
            self._budget.give_back(size)
        await self._report(serving=True)
        written = written_ranges(acknowledged)
        if span is not None:
            first = written[0]
            span.set_attribute("messaging.destination.partition.id", str(first.partition))
            span.set_attribute("messaging.kafka.offset", first.first_offset)
            _end(span, None)
        return written

    async def _unavailable(self, cause: BaseException, timeout_s: float) -> Unavailable:
        await self._report(serving=False)
        return Unavailable(
            f"Kafka did not acknowledge within {timeout_s:.1f}s: {cause or 'timed out'}"
        )


def _publish_span(topic: str, count: int) -> tuple[Span | None, Headers]:
    """For a traced call: its PRODUCER span and the record headers carrying it."""
    if not recording():
        return None, None
    return producer_span(topic, count)


def _end(span: Span | None, error: BaseException | None) -> None:
    if span is None:
        return
    if error is not None:
        span.record_exception(error)
        span.set_status(StatusCode.ERROR, str(error) or type(error).__name__)
    span.end()


async def _send_each(
    producer: AIOKafkaProducer,
    topic: str,
    records: Sequence[tuple[bytes, bytes]],
    headers: Headers,
) -> list[asyncio.Future[RecordMetadata]]:
    return [
        await producer.send(topic, value=value, key=key, headers=headers) for key, value in records
    ]
