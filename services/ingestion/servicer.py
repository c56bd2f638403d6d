"""The gRPC adapter of `financelake.ingestion.v1.IngestionService`.

Requests arrive validated against the contract (the validation interceptor); here they get
the clock check, go to Kafka as one record per batch (key = symbol, value = the batch's
protobuf bytes, re-encoded by upb without per-trade Python objects), and are answered once
Kafka acknowledged them. ImportHistory is not served yet and answers UNIMPLEMENTED.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence

import grpc

from financelake.gen.common.v1 import tick_pb2
from financelake.gen.ingestion.v1 import ingestion_service_pb2 as pb
from financelake.gen.ingestion.v1 import ingestion_service_pb2_grpc as pb_grpc
from financelake.services.errors import InvalidInput, Unimplemented
from financelake.services.ingestion.checks import future_trade_violations
from financelake.services.ingestion.publisher import KafkaPublisher, WrittenRange
from financelake.services.settings import Settings

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["IngestionService"].full_name

# Calls of a client stream awaiting Kafka at once: enough to keep the producer's batches
# full, few enough that a stalled Kafka stops the stream (gRPC flow control) quickly.
_STREAM_WINDOW = 16


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


def _merge(ranges: Sequence[WrittenRange]) -> list[WrittenRange]:
    merged: dict[tuple[str, int], WrittenRange] = {}
    for r in ranges:
        seen = merged.get((r.topic, r.partition))
        if seen is not None:
            r = WrittenRange(
                r.topic,
                r.partition,
                min(seen.first_offset, r.first_offset),
                max(seen.last_offset, r.last_offset),
            )
        merged[(r.topic, r.partition)] = r
    return [merged[key] for key in sorted(merged)]


class IngestionServicer(pb_grpc.IngestionServiceServicer):
    """Serves IngestionService over gRPC."""

    def __init__(self, settings: Settings, publisher: KafkaPublisher) -> None:
        self._settings = settings
        self._publisher = publisher
        self._topic = settings.topics.ticks
        self._skew_ns = int(settings.ingestion.max_future_skew_s * 1e9)

    def _check(self, batches: Sequence[tick_pb2.TickBatch], **metadata: str) -> None:
        violations = future_trade_violations(
            batches, time.time_ns(), self._skew_ns, prefix="batches"
        )
        if violations:
            raise InvalidInput(
                f"{len(violations)} trade(s) stamped in the future, first {violations[0].field}",
                violations=violations,
                metadata=metadata,
            )

    async def _enqueue(
        self, batches: Sequence[tick_pb2.TickBatch], context: grpc.aio.ServicerContext
    ) -> asyncio.Task[list[WrittenRange]]:
        records = [(batch.symbol.encode(), batch.SerializeToString()) for batch in batches]
        remaining = context.time_remaining()
        timeout = self._settings.ingestion.publish_timeout_s
        if remaining is not None:
            timeout = min(timeout, remaining)
        return await self._publisher.enqueue(self._topic, records, timeout)

    async def PublishTicks(
        self, request: pb.PublishTicksRequest, context: grpc.aio.ServicerContext
    ) -> pb.PublishTicksResponse:
        """Write the request's batches to Kafka, all or none, and answer once acknowledged."""
        self._check(request.batches)
        written = await (await self._enqueue(request.batches, context))
        return pb.PublishTicksResponse(
            accepted_trades=sum(len(batch.prices) for batch in request.batches),
            accepted_batches=len(request.batches),
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
                self._check(
                    request.batches, accepted_batches=str(batches), accepted_trades=str(trades)
                )
                if len(in_flight) >= _STREAM_WINDOW:
                    written.extend(await in_flight.popleft())
                in_flight.append(await self._enqueue(request.batches, context))
                batches += len(request.batches)
                trades += sum(len(batch.prices) for batch in request.batches)
            while in_flight:
                written.extend(await in_flight.popleft())
        finally:
            # On an error, what was handed to Kafka settles before the caller hears of it.
            await asyncio.gather(*in_flight, return_exceptions=True)
        return pb.IngestTicksResponse(
            accepted_trades=trades, accepted_batches=batches, offsets=_offsets(_merge(written))
        )

    async def ImportHistory(
        self, request: pb.ImportHistoryRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ImportHistoryResponse]:
        """Import bars from a source, streaming progress (an async generator once served)."""
        raise Unimplemented(f"{SERVICE_NAME}/ImportHistory")
