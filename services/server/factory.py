"""`build_server`: one `grpc.aio.Server` with FinanceLake's interceptors, health, reflection."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from financelake.services.server.errors import ErrorMappingInterceptor
from financelake.services.server.health import ServerHealth
from financelake.services.server.metrics import RpcMetricsInterceptor
from financelake.services.server.tracing import TracingInterceptor
from financelake.services.server.validation import FastPath, ValidationInterceptor, WirePath
from financelake.services.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServiceRegistration:
    """One service a server hosts.

    Attributes:
        add_to_server: The generated `add_<Service>Servicer_to_server` function.
        servicer: The servicer instance it registers.
        name: The service's full proto name (`financelake.ingestion.v1.IngestionService`),
            used for health and reflection.
        ready_on_start: Whether the service is ready as soon as the server runs; False
            when it waits for its own dependency (a model) and its owner calls
            `ServerHealth.set_serving(name)` once that is ready.
    """

    add_to_server: Callable[[Any, grpc.aio.Server], None]
    servicer: object
    name: str
    ready_on_start: bool = True


def build_server(
    settings: Settings,
    port: int,
    *registrations: ServiceRegistration,
    health: ServerHealth,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    fast_validation: Mapping[str, FastPath] | None = None,
    wire_validation: Mapping[str, WirePath] | None = None,
) -> tuple[grpc.aio.Server, int]:
    """Build a server on `settings.servers.host:port` (0 picks a free port), not started.

    It hosts `registrations`, the grpc.health.v1 service reporting through `health`, and
    server reflection for all of them. Tracing (when on) runs outermost, then RED metrics
    (they see every status),
    then error mapping, then validation, then any extra `interceptors`; `fast_validation`
    maps request types to columnar fast paths of their rules, `wire_validation` to paths
    that prove them from the request bytes without a parse (see `ValidationInterceptor`).
    Returns the server and the port actually bound.
    """
    names = [registration.name for registration in registrations]
    if len(set(names)) != len(names):
        raise ValueError(f"a service is registered twice: {names}")
    options = [
        ("grpc.max_receive_message_length", settings.servers.max_message_bytes),
        ("grpc.max_send_message_length", settings.servers.max_message_bytes),
        # gRPC enables SO_REUSEPORT by default, letting a second server silently share a
        # busy port; a port clash must fail at start instead.
        ("grpc.so_reuseport", 0),
    ]
    # Tracing outermost when on: the RPC's span covers everything the server does for it.
    tracing = (
        [TracingInterceptor(settings.tracing.sample_ratio)] if settings.tracing.enabled else []
    )
    server = grpc.aio.server(
        interceptors=[
            *tracing,
            RpcMetricsInterceptor(),
            ErrorMappingInterceptor(),
            ValidationInterceptor(fast_paths=fast_validation, wire_paths=wire_validation),
            *interceptors,
        ],
        options=options,
    )
    for registration in registrations:
        registration.add_to_server(registration.servicer, server)
        health.track(registration.name, ready_on_start=registration.ready_on_start)
    health_pb2_grpc.add_HealthServicer_to_server(health.servicer, server)
    reflection.enable_server_reflection(
        [
            *names,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ],
        server,
    )
    address = f"{settings.servers.host}:{port}"
    bound = server.add_insecure_port(address)
    logger.info("gRPC server bound", extra={"address": address, "port": bound, "services": names})
    return server, bound
