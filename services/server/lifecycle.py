"""Start a built server, wait for SIGTERM/SIGINT, drain it, stop it; the process entry point."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

import grpc
from pydantic import ValidationError

from financelake.observability.metrics import serve_metrics
from financelake.observability.tracing import configure_tracing
from financelake.services.server.health import ServerHealth
from financelake.services.server.logs import configure_logging
from financelake.services.settings import Settings

logger = logging.getLogger(__name__)
T = TypeVar("T")

TERMINATION_SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def start(server: grpc.aio.Server, health: ServerHealth) -> None:
    """Start serving, then report SERVING (never before the server accepts calls)."""
    await server.start()
    await health.mark_started()


async def stop(server: grpc.aio.Server, health: ServerHealth, grace: float) -> None:
    """Report NOT_SERVING first so balancers move away, then drain for up to `grace` s."""
    await health.shutdown()
    await server.stop(grace)
    await health.stop_dependencies()


async def wait_for_termination(
    signals: Iterable[signal.Signals] = TERMINATION_SIGNALS,
) -> signal.Signals:
    """Return the first of `signals` the process receives (handlers removed afterwards)."""
    loop = asyncio.get_running_loop()
    received: asyncio.Future[signal.Signals] = loop.create_future()
    wanted = tuple(signals)

    def on_signal(signum: signal.Signals) -> None:
        if not received.done():
            received.set_result(signum)

    for signum in wanted:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        return await received
    finally:
        # A second Ctrl-C during the drain then interrupts as usual.
        for signum in wanted:
            loop.remove_signal_handler(signum)


async def serve(server: grpc.aio.Server, health: ServerHealth, grace: float) -> None:
    """Run `server` until SIGTERM/SIGINT (or until it terminates), then stop gracefully."""
    await start(server, health)
    logger.info("gRPC server started; SIGTERM or SIGINT stops it")
    signal_wait = asyncio.create_task(wait_for_termination())
    terminated = asyncio.create_task(server.wait_for_termination())
    try:
        done, _ = await asyncio.wait({signal_wait, terminated}, return_when=asyncio.FIRST_COMPLETED)
        if signal_wait in done:
            logger.info("received %s, draining for up to %.1fs", signal_wait.result().name, grace)
        else:
            logger.warning("server terminated without a signal")
    finally:
        signal_wait.cancel()
        await stop(server, health, grace)
        terminated.cancel()
    logger.info("server stopped")


#: What each service's `server.build_server` looks like.
ServerBuilder = Callable[[Settings, ServerHealth], tuple[grpc.aio.Server, int]]


async def _run(settings: Settings, build: ServerBuilder, name: str) -> None:
    if settings.metrics.enabled:
        serve_metrics(settings.metrics.host, settings.metrics.port_of(name))
    configure_tracing(settings.tracing, name)
    health = ServerHealth()
    server, port = build(settings, health)
    logger.info("%s server built", name, extra={"host": settings.servers.host, "port": port})
    await serve(server, health, settings.servers.grace_period_s)


def run_server(settings: Settings, name: str, build: ServerBuilder) -> None:
    """Configure logging, then serve until SIGTERM/SIGINT (`financelake serve <name>`), on
    uvloop where it exists (not on Windows)."""
    configure_logging(settings.log_level)
    run_event_loop(_run(settings, build, name))


def run_event_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` to completion on uvloop, or on asyncio's loop where uvloop is missing."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def run_process(name: str, build: ServerBuilder) -> None:
    """Entry point of `python -m financelake.services.<name>`: settings, logging, serve."""
    try:
        settings = Settings()  # the one read of the environment in this process
    except ValidationError as exc:
        # Before logging exists: exit with the readable list of bad FINANCELAKE_* values.
        sys.exit(f"invalid FINANCELAKE_* settings for the {name} server:\n{exc}")
    run_server(settings, name, build)
