"""The gRPC adapter of `financelake.stream.v1.StreamService`.

ListTables describes the lake's Iceberg tables from the catalog and ListAlerts reads
gold.alerts. GetPipelineStatus combines Kafka's offsets with the lake's snapshot log (the
definitions are in `pipeline`); WatchAlerts streams the alerts topic through the process's
one `TopicFeed`.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from pyiceberg.catalog import Catalog

from financelake.gen.common.v1 import alert_pb2, bar_pb2
from financelake.gen.stream.v1 import pipeline_pb2
from financelake.gen.stream.v1 import stream_service_pb2 as pb
from financelake.gen.stream.v1 import stream_service_pb2_grpc as pb_grpc
from financelake.services.errors import FieldViolation, InvalidInput, Unavailable
from financelake.services.feed import TopicFeed
from financelake.services.ingestion.convert import INTERVALS
from financelake.services.stream.convert import alert_filter, pipeline_status
from financelake.services.stream.kafka_status import KafkaOffsets
from financelake.services.stream.lake_status import LakeStatus, read_lake_status
from financelake.services.stream.pipeline import PartitionOffsets
from financelake.stream.lake.alerts import AlertCursor, read_alerts
from financelake.stream.lake.describe import TableInfo, describe, table_identifiers
from financelake.stream.lake.tables import ALERTS

logger = logging.getLogger(__name__)

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["StreamService"].full_name
DEFAULT_PAGE_SIZE = 50


_KIND_NAMES = {
    alert_pb2.ALERT_KIND_PRICE_MOVE: "price_move",
    alert_pb2.ALERT_KIND_VOLUME_SPIKE: "volume_spike",
    alert_pb2.ALERT_KIND_ANOMALY: "anomaly",
}
_KINDS = {name: kind for kind, name in _KIND_NAMES.items()}
_SEVERITIES = {
    "info": alert_pb2.ALERT_SEVERITY_INFO,
    "warning": alert_pb2.ALERT_SEVERITY_WARNING,
    "critical": alert_pb2.ALERT_SEVERITY_CRITICAL,
}
_INTERVALS = {interval.value: number for number, interval in INTERVALS.items()}


def _micros(stamp: Timestamp) -> int:
    return stamp.seconds * 1_000_000 + stamp.nanos // 1_000


def _alert(row: dict[str, Any]) -> alert_pb2.Alert:
    """A gold.alerts row as the contract's Alert."""
    event, detected = Timestamp(), Timestamp()
    event.FromDatetime(row["event_time"])
    detected.FromDatetime(row["detected_time"])
    return alert_pb2.Alert(
        alert_id=row["alert_id"],
        symbol=row["symbol"],
        interval=_INTERVALS.get(row["interval"], bar_pb2.INTERVAL_UNSPECIFIED),
        kind=_KINDS.get(row["kind"], alert_pb2.ALERT_KIND_UNSPECIFIED),
        severity=_SEVERITIES.get(row["severity"], alert_pb2.ALERT_SEVERITY_UNSPECIFIED),
        event_time=event,
        detected_time=detected,
        value=row["value"],
        score=row["score"],
        threshold=row["threshold"],
        message=row["message"],
    )


def _encode_cursor(cursor: AlertCursor) -> str:
    return _encode_token(f"{cursor.event_time_us}:{cursor.alert_id}")


def _decode_cursor(token: str) -> AlertCursor | None:
    text = _decode_token(token)
    if not text:
        return None
    time_text, _, alert_id = text.partition(":")
    if not time_text.lstrip("-").isdigit():
        raise InvalidInput(
            "page_token is not one this server issued",
            violations=[FieldViolation("page_token", "not a token from a previous page")],
        )
    return AlertCursor(int(time_text), alert_id)


def _encode_token(identifier: str) -> str:
    return base64.urlsafe_b64encode(identifier.encode()).decode()


def _decode_token(token: str) -> str:
    """The identifier a page token continues after ("" for the first page)."""
    if not token:
        return ""
    try:
        return base64.b64decode(token.encode(), altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            "page_token is not one this server issued",
            violations=[FieldViolation("page_token", "not a token from a previous page")],
        ) from exc


def _timestamp(millis: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMilliseconds(millis)
    return stamp


def _table(info: TableInfo) -> pipeline_pb2.Table:
    return pipeline_pb2.Table(
        table=info.identifier,
        location=info.location,
        fields=[
            pipeline_pb2.TableField(
                field_id=c.field_id, name=c.name, type=c.type, required=c.required, doc=c.doc
            )
            for c in info.columns
        ],
        partition_fields=info.partition_fields,
        total_rows=info.total_rows,
        total_files=info.total_files,
        total_bytes=info.total_bytes,
        snapshots=[
            pipeline_pb2.Snapshot(
                snapshot_id=s.snapshot_id,
                parent_snapshot_id=s.parent_snapshot_id,
                commit_time=_timestamp(s.commit_time_ms),
                operation=s.operation,
                summary=s.summary,
            )
            for s in info.snapshots
        ],
    )


class StreamServicer(pb_grpc.StreamServiceServicer):
    """Serves StreamService over gRPC.

    `offsets` reads the Kafka side of the pipeline status for the stream app `app_id`
    (its consumer group) on `topics`; `alerts` is the live alerts topic.
    """

    def __init__(
        self,
        offsets: KafkaOffsets,
        alerts: TopicFeed[alert_pb2.Alert],
        *,
        topics: Sequence[str],
        app_id: str,
        catalog: Catalog | None = None,
    ) -> None:
        self._offsets = offsets
        self._alerts = alerts
        self._topics = tuple(topics)
        self._app_id = app_id
        self._catalog = catalog

    def use_catalog(self, catalog: Catalog) -> None:
        """Serve ListTables from `catalog` (set once the lake is open)."""
        self._catalog = catalog

    async def GetPipelineStatus(
        self, request: pb.GetPipelineStatusRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetPipelineStatusResponse:
        """Consumer lag per partition, throughput per agent and last commit per table."""
        partitions, lake = await self.pipeline_state()
        return pipeline_status(partitions, lake, self._app_id)

    async def pipeline_state(self) -> tuple[list[PartitionOffsets], LakeStatus]:
        """Kafka's offsets of the consumed topics and the lake's commits, read now (for
        GetPipelineStatus and the metrics endpoint)."""
        if self._catalog is None:
            raise Unavailable("the lake catalog is not open yet")
        now_ms = time.time_ns() // 1_000_000
        partitions, lake = await asyncio.gather(
            self._offsets.read(self._topics, self._app_id),
            asyncio.to_thread(read_lake_status, self._catalog, self._app_id, now_ms),
        )
        return partitions, lake

    async def ListTables(
        self, request: pb.ListTablesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListTablesResponse:
        """The lake's tables (optionally one namespace), ordered by name, paged."""
        if self._catalog is None:
            raise Unavailable("the lake catalog is not open yet")
        size = request.page_size or DEFAULT_PAGE_SIZE
        after = _decode_token(request.page_token)
        identifiers = await asyncio.to_thread(table_identifiers, self._catalog, request.namespace)
        remaining = [name for name in identifiers if name > after]
        page = remaining[:size]
        tables = await asyncio.to_thread(self._describe, page)
        token = _encode_token(page[-1]) if len(remaining) > size else ""
        return pb.ListTablesResponse(tables=[_table(t) for t in tables], next_page_token=token)

    def _describe(self, identifiers: list[str]) -> list[TableInfo]:
        assert self._catalog is not None
        return [describe(self._catalog.load_table(name), name) for name in identifiers]

    async def ListAlerts(
        self, request: pb.ListAlertsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListAlertsResponse:
        """Past alerts from gold.alerts, filtered, newest first, paged."""
        if self._catalog is None:
            raise Unavailable("the lake catalog is not open yet")
        cursor = _decode_cursor(request.page_token)
        table = await asyncio.to_thread(self._catalog.load_table, ALERTS.identifier)
        rows, following = await asyncio.to_thread(
            read_alerts,
            table,
            symbols=list(request.symbols),
            kinds=[_KIND_NAMES[kind] for kind in request.kinds],
            start_us=_micros(request.start_time) if request.HasField("start_time") else None,
            end_us=_micros(request.end_time) if request.HasField("end_time") else None,
            limit=request.page_size or DEFAULT_PAGE_SIZE,
            after=cursor,
        )
        return pb.ListAlertsResponse(
            alerts=[_alert(row) for row in rows.to_pylist()],
            next_page_token=_encode_cursor(following) if following else "",
        )

    async def WatchAlerts(
        self, request: pb.WatchAlertsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WatchAlertsResponse]:
        """The alerts raised from the moment the response headers are sent, filtered."""
        async with self._alerts.subscribe(alert_filter(request)) as subscription:
            # Headers now (not with the first alert) tell the client it is subscribed.
            await context.send_initial_metadata(())
            async for delivery in subscription:
                if delivery.skipped:
                    # WatchAlertsResponse has no field to mark a gap: the log records it.
                    logger.warning(
                        "a WatchAlerts client fell behind; %d alerts skipped",
                        delivery.skipped,
                        extra={"peer": context.peer(), "skipped": delivery.skipped},
                    )
                yield pb.WatchAlertsResponse(alert=delivery.item)
