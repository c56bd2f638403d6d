"""Builds the ingestion server: IngestionService plus health and reflection."""

from __future__ import annotations

import grpc

from financelake.gen.ingestion.v1 import ingestion_service_pb2_grpc as pb_grpc
from financelake.services import server as plumbing
from financelake.services.ingestion.servicer import SERVICE_NAME, IngestionServicer
from financelake.services.settings import Settings


def build_server(settings: Settings, health: plumbing.ServerHealth) -> tuple[grpc.aio.Server, int]:
    """The ingestion server on `settings.servers.ingestion_port`, not started."""
    return plumbing.build_server(
        settings,
        settings.servers.ingestion_port,
        plumbing.ServiceRegistration(
            pb_grpc.add_IngestionServiceServicer_to_server, IngestionServicer(), SERVICE_NAME
        ),
        health=health,
    )
