"""Plumbing every FinanceLake gRPC server shares.

`build_server` assembles a `grpc.aio.Server` with the two cross-cutting interceptors
(error mapping, protovalidate validation), the library health servicer and server
reflection; `serve` runs it until SIGTERM/SIGINT and stops it gracefully.
"""

from __future__ import annotations

from financelake.services.server.errors import ErrorMappingInterceptor, status_for
from financelake.services.server.factory import ServiceRegistration, build_server
from financelake.services.server.health import Dependency, ServerHealth
from financelake.services.server.lifecycle import (
    ServerBuilder,
    run_process,
    run_server,
    serve,
    start,
    stop,
    wait_for_termination,
)
from financelake.services.server.logs import configure_logging
from financelake.services.server.validation import ValidationInterceptor

__all__ = [
    "Dependency",
    "ErrorMappingInterceptor",
    "ServerBuilder",
    "ServerHealth",
    "ServiceRegistration",
    "ValidationInterceptor",
    "build_server",
    "configure_logging",
    "run_process",
    "run_server",
    "serve",
    "start",
    "status_for",
    "stop",
    "wait_for_termination",
]
