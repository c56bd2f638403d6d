"""Builds the stream server: StreamService plus health and reflection."""

from __future__ import annotations

import grpc

from financelake.gen.stream.v1 import stream_service_pb2_grpc as pb_grpc
from financelake.services import server as plumbing
from financelake.services.settings import Settings
from financelake.services.stream.servicer import SERVICE_NAME, StreamServicer


def build_server(settings: Settings, health: plumbing.ServerHealth) -> tuple[grpc.aio.Server, int]:
    """The stream server on `settings.servers.stream_port`, not started."""
    return plumbing.build_server(
        settings,
        settings.servers.stream_port,
        plumbing.ServiceRegistration(
            pb_grpc.add_StreamServiceServicer_to_server, StreamServicer(), SERVICE_NAME
        ),
        health=health,
    )
