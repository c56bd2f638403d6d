"""The `financelake` command: bring the local stack up and down, and look at it.

`up` provisions Kafka (unless `FINANCELAKE_KAFKA_BOOTSTRAP` names one), starts the broker,
creates the topics, starts the four gRPC servers and waits until every one is healthy, then the
Envoy gateway (grpc-web and REST on one port), the stream worker (Kafka -> Iceberg) and the demo
feed. Without `--detach` it then stays in the foreground until Ctrl-C or SIGTERM and stops
everything. Settings are read once here and passed down. Tables go to stdout, logs and spinners
to stderr.
"""

from __future__ import annotations

import importlib
import json
import logging
import signal
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from types import FrameType
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from financelake.services.cli_gateway import gateway_app
from financelake.services.cli_ingest import ingest_app
from financelake.services.cli_lake import lake_app
from financelake.services.cli_models import models_app
from financelake.services.processes import ProcessStopError, exited_children
from financelake.services.settings import Settings
from financelake.services.supervisor import ComponentStatus, Supervisor, SupervisorError
from financelake.stream.kafka_dist import BrokerError, provision
from financelake.stream.topics import TopicError, TopicState, ensure_topics

logger = logging.getLogger(__name__)

out = Console()
err = Console(stderr=True)

app = typer.Typer(
    name="financelake",
    help="FinanceLake: the local market-data lakehouse stack.",
    no_args_is_help=True,
    add_completion=False,
)
kafka_app = typer.Typer(help="The local Kafka broker.", no_args_is_help=True)
topics_app = typer.Typer(help="The product topics.", no_args_is_help=True)
app.add_typer(kafka_app, name="kafka")
app.add_typer(gateway_app, name="gateway")
app.add_typer(ingest_app, name="ingest")
app.add_typer(lake_app, name="lake")
app.add_typer(models_app, name="models")
app.add_typer(topics_app, name="topics")
stream_app = typer.Typer(help="The stream processing (Faust) worker.", no_args_is_help=True)
app.add_typer(stream_app, name="stream")

_FAILURES = (BrokerError, TopicError, SupervisorError, ProcessStopError)


@app.callback()
def _root(ctx: typer.Context) -> None:
    """Read the settings once and configure logging for every command."""
    try:
        settings = Settings()
    except ValidationError as exc:
        err.print(f"[red]Invalid FINANCELAKE_* settings:[/red]\n{exc}")
        raise typer.Exit(2) from exc
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(console=err, show_path=False)],
    )
    ctx.obj = settings


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]{message}[/red]", markup=True, highlight=False)
    return typer.Exit(code)


@contextmanager
def _step(message: str) -> Iterator[None]:
    """A spinner on stderr while a slow step (Maven, broker start) runs."""
    started = time.monotonic()
    with err.status(message):
        yield
    err.print(f"[green]✓[/green] {message} [dim]({time.monotonic() - started:.1f}s)[/dim]")


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM takes the same clean-up path as Ctrl-C


def _status_table(rows: Sequence[ComponentStatus]) -> Table:
    table = Table(title="FinanceLake")
    for column in ("component", "address", "pid", "health"):
        table.add_column(column)
    for row in rows:
        health = "[green]healthy[/green]" if row.healthy else f"[red]unhealthy[/red] ({row.detail})"
        if row.not_ready:
            names = ", ".join(service.rsplit(".", 1)[-1] for service in row.not_ready)
            health += f"; [yellow]not ready yet: {names}[/yellow]"
        table.add_row(row.name, row.address, str(row.pid or "-"), health)
    return table


def _topics_table(states: Sequence[TopicState]) -> Table:
    table = Table(title="Topics")
    for column in ("topic", "partitions", "action"):
        table.add_column(column)
    for state in states:
        table.add_row(state.name, str(state.partitions), "created" if state.created else "exists")
    return table


def _start_broker(settings: Settings, supervisor: Supervisor) -> None:
    if settings.uses_external_kafka:
        with _step(f"Checking the external broker {settings.bootstrap_servers}"):
            supervisor.broker.start()
        return
    with _step(f"Provisioning Kafka {settings.broker.kafka_version} from Maven Central"):
        provision(settings)
    with _step(f"Starting Kafka on {settings.bootstrap_servers}"):
        supervisor.broker.start()


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
# How a component stopped by SIGTERM exits: Python servers 0, the JVM 128 + 15.
_CLEAN_EXITS = {0, -signal.SIGTERM, 128 + signal.SIGTERM}


def _run_until_stopped(settings: Settings) -> int:
    """Stay in the foreground until Ctrl-C/SIGTERM, or until a component exits: stopped from
    another terminal (`financelake down`) or crashed. Returns the command's exit code.

    Signals stay masked afterwards so a second Ctrl-C cannot cut the stop short.
    """
    watched = _STOP_SIGNALS | {signal.SIGCHLD}
    signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    while True:
        # Checked before each wait: a child that died before the mask sent no pending SIGCHLD.
        exited = exited_children()
        crashed = {pid: code for pid, code in exited.items() if code not in _CLEAN_EXITS}
        for pid, code in crashed.items():
            err.print(f"[red]pid {pid} exited with code {code}[/red]")
        if crashed:
            err.print(f"Logs are in {settings.home / 'logs'}; stopping the rest")
            return 1
        if exited:
            err.print("Stopped from elsewhere (financelake down); stopping the rest")
            return 0
        received = signal.sigwait(watched)
        if received != signal.SIGCHLD:
            err.print(f"{signal.Signals(received).name} received, stopping")
            return 0


def _stop_everything(supervisor: Supervisor) -> list[str]:
    """Stop all with SIGINT/SIGTERM masked: an impatient second Ctrl-C must not orphan a child."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    return supervisor.stop_all()


@app.command()
def up(
    ctx: typer.Context,
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Return once healthy, leave it running.")
    ] = False,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the servers to be healthy.")
    ] = 60.0,
) -> None:
    """Start Kafka, the topics and the four gRPC servers; wait until all are healthy."""
    settings: Settings = ctx.obj
    supervisor = Supervisor(settings)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        _start_broker(settings, supervisor)
        with _step("Creating topics"):
            ensure_topics(settings)
        if supervisor.runs_jaeger:
            with _step(f"Starting Jaeger (traces) at {settings.tracing.jaeger_query_url}"):
                supervisor.start_jaeger(timeout)
        with _step("Starting the gRPC servers"):
            supervisor.start_servers(timeout)
        if settings.gateway.enabled:
            with _step(f"Starting the Envoy gateway on port {settings.gateway.port}"):
                supervisor.start_gateway(timeout)
        with _step("Starting the stream worker (Kafka -> Iceberg)"):
            supervisor.start_stream_worker()
        if settings.demo.enabled:
            with _step("Starting the demo market feed (history, then live trades)"):
                supervisor.start_demo_feed()
    except _FAILURES as exc:
        logger.error("Start failed: %s", exc)
        _stop_everything(supervisor)
        raise _fail("financelake up failed; everything was stopped") from exc
    except KeyboardInterrupt as exc:
        _stop_everything(supervisor)
        raise _fail("Interrupted; everything was stopped", 130) from exc
    rows = supervisor.status()
    out.print(_status_table(rows))
    if not all(row.healthy for row in rows):
        _stop_everything(supervisor)
        raise _fail("Something became unhealthy right after start; everything was stopped")
    if detach:
        err.print("Running in the background; `financelake down` stops it.")
        return
    err.print("Running; Ctrl-C or `financelake down` stops everything.")
    code = _run_until_stopped(settings)
    stopped = _stop_everything(supervisor)
    err.print(f"Stopped: {', '.join(stopped) or 'nothing was running'}")
    if code:
        raise typer.Exit(code)


@app.command()
def down(ctx: typer.Context) -> None:
    """Stop the four servers, then the local broker (by their pid files)."""
    try:
        stopped = Supervisor(ctx.obj).stop_all()
    except ProcessStopError as exc:
        raise _fail(str(exc)) from exc
    err.print(f"Stopped: {', '.join(stopped) or 'nothing was running'}")


@app.command()
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Broker and servers: address, pid, health. Exit 1 if anything is unhealthy."""
    rows = Supervisor(ctx.obj).status()
    if as_json:
        out.print(json.dumps([row.as_dict() for row in rows]), soft_wrap=True, markup=False)
    else:
        out.print(_status_table(rows))
    if not all(row.healthy for row in rows):
        raise typer.Exit(1)


@kafka_app.command("provision")
def kafka_provision(ctx: typer.Context) -> None:
    """Resolve the pinned Kafka release from Maven Central into the cache."""
    settings: Settings = ctx.obj
    try:
        with _step(f"Provisioning Kafka {settings.broker.kafka_version} from Maven Central"):
            dist = provision(settings)
    except BrokerError as exc:
        raise _fail(str(exc)) from exc
    jars = len(list(dist.libs.glob("*.jar")))
    out.print(f"Kafka {dist.version} (Scala {dist.scala_version}): {jars} jars in {dist.libs}")


@kafka_app.command("start")
def kafka_start(ctx: typer.Context) -> None:
    """Start the local broker (or check the external one) and wait until it is ready."""
    settings: Settings = ctx.obj
    supervisor = Supervisor(settings)
    try:
        _start_broker(settings, supervisor)
    except BrokerError as exc:
        raise _fail(str(exc)) from exc
    out.print(_status_table([supervisor.broker_status()]))


@kafka_app.command("stop")
def kafka_stop(ctx: typer.Context) -> None:
    """Stop the local broker by its pid file (SIGTERM, then SIGKILL as a last resort)."""
    broker = Supervisor(ctx.obj).broker
    try:
        pid = broker.stop()
    except ProcessStopError as exc:
        raise _fail(str(exc)) from exc
    err.print(f"Stopped Kafka (pid {pid})" if pid else "Kafka was not running")


@kafka_app.command("status")
def kafka_status(ctx: typer.Context) -> None:
    """Whether the broker answers; exit 1 if not."""
    row = Supervisor(ctx.obj).broker_status()
    out.print(_status_table([row]))
    if not row.healthy:
        raise typer.Exit(1)


@topics_app.command("create")
def topics_create(ctx: typer.Context) -> None:
    """Create the missing product topics with the configured partitions."""
    try:
        states = ensure_topics(ctx.obj)
    except TopicError as exc:
        raise _fail(str(exc)) from exc
    out.print(_topics_table(states))


class Server(StrEnum):
    """The gRPC servers `serve` runs."""

    INGESTION = "ingestion"
    MARKETDATA = "marketdata"
    STREAM = "stream"
    PREDICTION = "prediction"


@app.command()
def serve(ctx: typer.Context, server: Server) -> None:
    """Run one gRPC server in the foreground until SIGTERM/SIGINT: the container image's
    server roles (`up` runs all four itself)."""
    # Imported here: each server pulls in only its own dependencies.
    from financelake.services.server import run_server

    module = importlib.import_module(f"financelake.services.{server.value}.server")
    run_server(ctx.obj, server.value, module.build_server)


@stream_app.command("worker")
def stream_worker(ctx: typer.Context) -> None:
    """Run the stream worker in the foreground until Ctrl-C/SIGTERM (`up` runs one itself)."""
    # Imported here: Faust and its agents are heavy and only this command needs them.
    from financelake.stream.worker import run_worker

    run_worker(ctx.obj)


def main() -> None:
    """Console-script entry point (`financelake`)."""
    app()


if __name__ == "__main__":
    main()
