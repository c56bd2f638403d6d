"""Builds the ingestion server: IngestionService plus health and reflection.

IngestionService is SERVING once the Kafka producer is connected (the publisher reports it),
so a server started before Kafka says NOT_SERVING instead of failing calls it cannot serve.
Trade batches are validated by a columnar fast path first (fast_validation.py), on the request
bytes alone when their layout allows, so that most requests are never parsed.
"""

from __future__ import annotations

import grpc

from financelake.gen.ingestion.v1 import ingestion_service_pb2 as pb
from financelake.gen.ingestion.v1 import ingestion_service_pb2_grpc as pb_grpc
from financelake.services import server as plumbing
from financelake.services.ingestion.fast_validation import (
    tick_request_is_valid,
    valid_request_batches,
)
from financelake.services.ingestion.publisher import KafkaPublisher
from financelake.services.ingestion.servicer import SERVICE_NAME, IngestionServicer
from financelake.services.settings import Settings

TICK_REQUESTS = (
    pb.PublishTicksRequest.DESCRIPTOR.full_name,
    pb.IngestTicksRequest.DESCRIPTOR.full_name,
)


def build_server(settings: Settings, health: plumbing.ServerHealth) -> tuple[grpc.aio.Server, int]:
    """The ingestion server on `settings.servers.ingestion_port`, not started."""
    publisher = KafkaPublisher(settings, health, SERVICE_NAME)
    health.add_dependency(publisher)
    return plumbing.build_server(
        settings,
        settings.servers.ingestion_port,
        plumbing.ServiceRegistration(
            pb_grpc.add_IngestionServiceServicer_to_server,
            IngestionServicer(settings, publisher),
            SERVICE_NAME,
            ready_on_start=False,  # SERVING once Kafka answers
        ),
        health=health,
        fast_validation=dict.fromkeys(TICK_REQUESTS, tick_request_is_valid),
        # Most requests are proven valid from their bytes, and forwarded unparsed.
        wire_validation=dict.fromkeys(TICK_REQUESTS, valid_request_batches),
    )
