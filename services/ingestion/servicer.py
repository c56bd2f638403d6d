"""The gRPC adapter of `financelake.ingestion.v1.IngestionService`.

Requests arrive validated against the contract (the validation interceptor); here they get
the clock check, go to Kafka as one record per batch (key = symbol, value = the batch's
protobuf bytes: sliced from the request's own bytes, else re-encoded by upb, never a
per-trade Python object; a request proven valid from its bytes is not even parsed), and are
answered once Kafka acknowledged them. ImportHistory pulls chunks from a source (synthetic,
csv, yahoo, alphavantage) and publishes bars to the bars topic (one record per bar),
simulated trades to the ticks topic and the dividends and splits a source reports to the
actions topic, reporting progress as it goes.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import grpc

from financelake.gen.ingestion.v1 import import_pb2
from financelake.gen.ingestion.v1 import ingestion_service_pb2 as pb
from financelake.gen.ingestion.v1 import ingestion_service_pb2_grpc as pb_grpc
from financelake.services.errors import InvalidInput
from financelake.services.ingestion import convert
from financelake.services.ingestion.checks import future_trade_violations
from financelake.services.ingestion.fast_validation import (
    WireBatch,
    latest_event_time,
    latest_time,
    request_batches,
)
from financelake.services.ingestion.imports import import_chunks
from financelake.services.ingestion.publisher import KafkaPublisher, WrittenRange, merge_ranges
from financelake.services.ingestion.records import Bars, BarSource, Trades
from financelake.services.ingestion.sources import SourceError
from financelake.services.ingestion.sources.corporate_actions import CorporateActions
from financelake.services.server.validation import REQUEST_BYTES, REQUEST_WIRE
from financelake.services.settings import Settings

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["IngestionService"].full_name

# Calls of a client stream awaiting Kafka at once: enough to keep the producer's batches
# full, few enough that a stalled Kafka stops the stream (gRPC flow control) quickly.
_STREAM_WINDOW = 16
# Imported bars are one Kafka record each; this many go per acknowledged publish.
_BARS_PER_CALL = 2_000


def _offsets(ranges: Sequence[WrittenRange]) -> list[pb.OffsetRange]:
    return [
        pb.OffsetRange(
            topic=r.topic,
            partition=r.partition,
            first_offset=r.first_offset,
            last_offset=r.last_offset,
        )
        for r in ranges
    ]


@dataclass(frozen=True, slots=True)
class _Outgoing:
    """One batch of a request on its way to Kafka."""

    key: bytes
    """The batch's symbol."""
    payload: bytes
    rows: int
    latest_ns: int | None
    """Its latest trade time, when read off the wire."""


def _outgoing(request: pb.PublishTicksRequest | pb.IngestTicksRequest) -> list[_Outgoing]:
    """The request's batches as Kafka records. Read off the wire where the validation
    interceptor proved them there (the request is then never parsed); else sliced from the
    request bytes it kept; else encoded again."""
    wire: list[WireBatch] | None = REQUEST_WIRE.get()
    if wire is not None:
        return [
            _Outgoing(b.symbol.encode(), bytes(b.raw), b.rows, latest_time(b.times, b.rows))
            for b in wire
        ]
    batches = request.batches
    raw = REQUEST_BYTES.get()
    entries = None if raw is None else request_batches(raw)
    if entries is None or len(entries) != len(batches):
        return [
            _Outgoing(b.symbol.encode(), b.SerializeToString(), len(b.prices), None)
            for b in batches
        ]
    return [
        _Outgoing(
            b.symbol.encode(),
            bytes(entry),
            len(b.prices),
            latest_event_time(entry, len(b.event_time_unix_nanos)),
        )
        for b, entry in zip(batches, entries, strict=True)
    ]


class IngestionServicer(pb_grpc.IngestionServiceServicer):
    """Serves IngestionService over gRPC."""

    def __init__(self, settings: Settings, publisher: KafkaPublisher) -> None:
        self._settings = settings
        self._publisher = publisher
        self._topic = settings.topics.ticks
        self._skew_ns = int(settings.ingestion.max_future_skew_s * 1e9)

    def _check(
        self,
        request: pb.PublishTicksRequest | pb.IngestTicksRequest,
        outgoing: Sequence[_Outgoing],
        **metadata: str,
    ) -> None:
        now = time.time_ns()
        limit = now + self._skew_ns
        if all(o.latest_ns is not None and o.latest_ns <= limit for o in outgoing):
            return  # the request is not parsed for this
        violations = future_trade_violations(
            request.batches,
            now,
            self._skew_ns,
            prefix="batches",
            latest_ns=[o.latest_ns for o in outgoing],
        )
        if violations:
            raise InvalidInput(
                f"{len(violations)} trade(s) stamped in the future, first {violations[0].field}",
                violations=violations,
                metadata=metadata,
            )

    def _timeout(self, context: grpc.aio.ServicerContext) -> float:
        """The publish timeout, shortened to the caller's deadline."""
        remaining = context.time_remaining()
        timeout = self._settings.ingestion.publish_timeout_s
        return timeout if remaining is None else min(timeout, remaining)

    async def _enqueue(
        self, records: Sequence[tuple[bytes, bytes]], context: grpc.aio.ServicerContext
    ) -> asyncio.Task[list[WrittenRange]]:
        """Hand (key, payload) records to Kafka; the task ends once they are acknowledged."""
        return await self._publisher.enqueue(self._topic, records, self._timeout(context))

    async def PublishTicks(
        self, request: pb.PublishTicksRequest, context: grpc.aio.ServicerContext
    ) -> pb.PublishTicksResponse:
        """Write the request's batches to Kafka, all or none, and answer once acknowledged."""
        outgoing = _outgoing(request)
        self._check(request, outgoing)
        written = await (await self._enqueue([(o.key, o.payload) for o in outgoing], context))
        return pb.PublishTicksResponse(
            accepted_trades=sum(o.rows for o in outgoing),
            accepted_batches=len(outgoing),
            offsets=_offsets(written),
        )

    async def IngestTicks(
        self,
        request_iterator: AsyncIterator[pb.IngestTicksRequest],
        context: grpc.aio.ServicerContext,
    ) -> pb.IngestTicksResponse:
        """Write each streamed message's batches to Kafka; answer once all are acknowledged.

        Up to `_STREAM_WINDOW` messages await Kafka at once; beyond that the stream is not
        read, so a slow Kafka slows the client through gRPC flow control, in bounded memory.
        """
        in_flight: deque[asyncio.Task[list[WrittenRange]]] = deque()
        written: list[WrittenRange] = []
        trades = batches = 0
        try:
            async for request in request_iterator:
                outgoing = _outgoing(request)
                self._check(
                    request,
                    outgoing,
                    accepted_batches=str(batches),
                    accepted_trades=str(trades),
                )
                if len(in_flight) >= _STREAM_WINDOW:
                    written.extend(await in_flight.popleft())
                records = [(o.key, o.payload) for o in outgoing]
                in_flight.append(await self._enqueue(records, context))
                batches += len(outgoing)
                trades += sum(o.rows for o in outgoing)
            while in_flight:
                written.extend(await in_flight.popleft())
        finally:
            # On an error, what was handed to Kafka settles before the caller hears of it.
            await asyncio.gather(*in_flight, return_exceptions=True)
        return pb.IngestTicksResponse(
            accepted_trades=trades,
            accepted_batches=batches,
            offsets=_offsets(merge_ranges(written)),
        )

    async def ImportHistory(
        self, request: pb.ImportHistoryRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ImportHistoryResponse]:
        """Import from a source into the bars (or ticks) topic, one progress message per
        chunk; a failing source ends the stream with state FAILED and its reason."""
        chunks = import_chunks(convert.import_request(request), self._settings)
        progress = pb.ImportHistoryResponse(state=import_pb2.IMPORT_STATE_RUNNING)
        yield progress
        try:
            # Sources block (HTTP, rate limits, files): each chunk is pulled in a thread.
            while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
                progress.current_symbol = chunk.symbol
                progress.rows_fetched += chunk.rows_fetched
                if chunk.data is not None:
                    progress.rows_published += await self._publish_chunk(chunk.data, context)
                    if chunk.actions is not None and len(chunk.actions):
                        progress.actions_published += await self._publish_actions(
                            chunk.actions, chunk.data, context
                        )
                del progress.row_errors[:]
                progress.row_errors.extend(convert.row_errors(chunk.problems))
                yield progress
        except SourceError as exc:
            yield pb.ImportHistoryResponse(
                state=import_pb2.IMPORT_STATE_FAILED,
                current_symbol=progress.current_symbol,
                rows_fetched=progress.rows_fetched,
                rows_published=progress.rows_published,
                actions_published=progress.actions_published,
                message=str(exc),
            )
            return
        yield pb.ImportHistoryResponse(
            state=import_pb2.IMPORT_STATE_DONE,
            rows_fetched=progress.rows_fetched,
            rows_published=progress.rows_published,
            actions_published=progress.actions_published,
        )

    async def _publish_actions(
        self, actions: CorporateActions, bars: Bars | Trades, context: grpc.aio.ServicerContext
    ) -> int:
        """Publish a source's dividends and splits; how many."""
        source = bars.source if isinstance(bars, Bars) else BarSource.TRADES
        records = [
            (actions.symbol.encode(), message.SerializeToString())
            for message in convert.corporate_actions(actions, source)
        ]
        await self._publisher.publish(
            self._settings.topics.actions, records, self._timeout(context)
        )
        return len(records)

    async def _publish_chunk(self, data: Bars | Trades, context: grpc.aio.ServicerContext) -> int:
        """Publish one chunk (a TickBatch, or a record per bar); the rows published."""
        if isinstance(data, Trades):
            batch = convert.tick_batch(data)
            await (
                await self._enqueue([(batch.symbol.encode(), batch.SerializeToString())], context)
            )
            return len(data)
        topic = self._settings.topics.bars
        key = data.symbol.encode()
        messages = convert.bar_messages(data)
        for first in range(0, len(messages), _BARS_PER_CALL):
            records = [
                (key, m.SerializeToString()) for m in messages[first : first + _BARS_PER_CALL]
            ]
            await self._publisher.publish(topic, records, self._timeout(context))
        return len(messages)
