"""Builds the stream server: StreamService plus health and reflection.

StreamService is SERVING once the lake is open: the catalog from settings, with the lake
tables created if missing (the stream worker writes them; ListTables describes them).
Kafka is not part of readiness: without it only GetPipelineStatus and WatchAlerts fail
(UNAVAILABLE), the lake's RPCs still answer.
"""

from __future__ import annotations

import asyncio
import logging

import grpc

from financelake.gen.common.v1 import alert_pb2
from financelake.gen.stream.v1 import stream_service_pb2_grpc as pb_grpc
from financelake.services import server as plumbing
from financelake.services.feed import TopicFeed
from financelake.services.settings import Settings
from financelake.services.stream.kafka_status import KafkaOffsets
from financelake.services.stream.servicer import SERVICE_NAME, StreamServicer
from financelake.stream.agents import consumed_topics
from financelake.stream.lake.catalog import open_catalog
from financelake.stream.lake.tables import ensure_tables

logger = logging.getLogger(__name__)

_RETRY_DELAY_S = 5.0


class LakeCatalog:
    """Opens the catalog and ensures the tables when the server starts (a dependency)."""

    def __init__(
        self, settings: Settings, servicer: StreamServicer, health: plumbing.ServerHealth
    ) -> None:
        self._settings = settings
        self._servicer = servicer
        self._health = health
        self._retrying: asyncio.Task[None] | None = None

    async def _open(self) -> None:
        # In a thread: a remote catalog (Glue, REST) does network I/O.
        catalog = await asyncio.to_thread(open_catalog, self._settings)
        await asyncio.to_thread(ensure_tables, catalog)
        self._servicer.use_catalog(catalog)
        await self._health.set_serving(SERVICE_NAME)

    async def start(self) -> None:
        """Open the lake now; if it cannot be reached, keep trying in the background."""
        try:
            await self._open()
        except Exception:
            logger.exception("the lake catalog cannot be opened yet; retrying")
            self._retrying = asyncio.create_task(self._retry(), name="lake-catalog")

    async def _retry(self) -> None:
        while True:
            await asyncio.sleep(_RETRY_DELAY_S)
            try:
                await self._open()
                return
            except Exception as exc:  # any catalog failure: log and keep trying
                logger.warning("the lake catalog cannot be opened yet: %s", exc)

    async def stop(self) -> None:
        """Stop retrying; catalog calls hold nothing open."""
        if self._retrying is not None:
            self._retrying.cancel()


def build_server(
    settings: Settings,
    health: plumbing.ServerHealth,
    *,
    alerts: TopicFeed[alert_pb2.Alert] | None = None,
) -> tuple[grpc.aio.Server, int]:
    """The stream server on `settings.servers.stream_port`, not started; WatchAlerts reads
    `alerts` (default: a feed of `settings.topics.alerts`)."""
    if alerts is None:
        alerts = TopicFeed(
            settings.bootstrap_servers, settings.topics.alerts, alert_pb2.Alert.FromString
        )
    servicer = StreamServicer(
        KafkaOffsets(settings.bootstrap_servers),
        alerts,
        topics=consumed_topics(settings.topics.ticks, settings.topics.bars),
        app_id=settings.stream.app_id,
    )
    health.add_dependency(LakeCatalog(settings, servicer, health))
    health.add_dependency(alerts)
    return plumbing.build_server(
        settings,
        settings.servers.stream_port,
        plumbing.ServiceRegistration(
            pb_grpc.add_StreamServiceServicer_to_server,
            servicer,
            SERVICE_NAME,
            ready_on_start=False,  # SERVING once the lake is open
        ),
        health=health,
    )
