"""Builds the stream server: StreamService plus health and reflection.

StreamService is SERVING once the lake is open: the catalog from settings, with the lake
tables created if missing (the stream worker writes them; ListTables describes them).
Kafka is not part of readiness: without it only GetPipelineStatus and WatchAlerts fail
(UNAVAILABLE), the lake's RPCs still answer.
"""

from __future__ import annotations

import grpc
from pyiceberg.catalog import Catalog

from financelake.gen.common.v1 import alert_pb2
from financelake.gen.stream.v1 import stream_service_pb2_grpc as pb_grpc
from financelake.services import server as plumbing
from financelake.services.feed import TopicFeed
from financelake.services.lake import LakeOpener
from financelake.services.settings import Settings
from financelake.services.stream.kafka_status import KafkaOffsets
from financelake.services.stream.metrics import PIPELINE
from financelake.services.stream.servicer import SERVICE_NAME, StreamServicer
from financelake.stream.agents import consumed_topics


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
            settings.bootstrap_servers,
            settings.topics.alerts,
            alert_pb2.Alert.FromString,
            kafka=settings.kafka,
        )
    servicer = StreamServicer(
        KafkaOffsets(settings.bootstrap_servers, kafka=settings.kafka),
        alerts,
        topics=consumed_topics(settings.topics.ticks, settings.topics.bars),
        app_id=settings.stream.app_id,
    )

    async def serve_lake(catalog: Catalog) -> None:
        servicer.use_catalog(catalog)
        PIPELINE.attach(servicer.pipeline_state, settings.stream.app_id)
        await health.set_serving(SERVICE_NAME)

    health.add_dependency(LakeOpener(settings, serve_lake))
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
