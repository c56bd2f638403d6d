"""`financelake ingest ...`: import history through the running IngestionService.

Each command sends one ImportHistory request to the ingestion server of the settings and
shows its progress; refused rows are listed at the end. Exit code 1 when the import failed.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import grpc
import typer
from google.protobuf.timestamp_pb2 import Timestamp
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from financelake.gen.common.v1 import bar_pb2
from financelake.gen.ingestion.v1 import import_pb2
from financelake.gen.ingestion.v1 import ingestion_service_pb2 as pb
from financelake.gen.ingestion.v1 import ingestion_service_pb2_grpc as pb_grpc
from financelake.observability.tracing import client_interceptors, configure_tracing
from financelake.services.ingestion.convert import INTERVALS, timestamp
from financelake.services.ingestion.records import Interval
from financelake.services.settings import Settings

ingest_app = typer.Typer(help="Import market data through the ingestion service.")
err = Console(stderr=True)

# The largest CSV sent inline (the contract's csv.data limit).
_MAX_INLINE_CSV = 64 * 1024 * 1024
_INTERVAL_NUMBERS = {interval.value: number for number, interval in INTERVALS.items()}
_ROW_ERRORS_SHOWN = 50

IntervalOption = Annotated[
    str,
    typer.Option(help=f"Bar width: {', '.join(i.value for i in Interval)}."),
]
StartOption = Annotated[
    datetime | None, typer.Option(help="Start (UTC), e.g. 2024-01-02. Default: --days ago.")
]
EndOption = Annotated[datetime | None, typer.Option(help="End (UTC, exclusive). Default: now.")]
DaysOption = Annotated[float, typer.Option(help="History length when --start is not given.")]


def _interval(value: str) -> bar_pb2.Interval:
    try:
        return _INTERVAL_NUMBERS[value]
    except KeyError:
        raise typer.BadParameter(f"not one of {', '.join(_INTERVAL_NUMBERS)}") from None


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _range(
    start: datetime | None, end: datetime | None, days: float
) -> tuple[Timestamp, Timestamp]:
    """[start, end) as Timestamps: end defaults to now, start to `days` before end."""
    finish = _utc(end) if end else datetime.now(UTC)
    begin = _utc(start) if start else finish - timedelta(days=days)
    return timestamp(int(begin.timestamp() * 1e9)), timestamp(int(finish.timestamp() * 1e9))


async def _import(settings: Settings, request: pb.ImportHistoryRequest) -> pb.ImportHistoryResponse:
    address = f"{settings.servers.host}:{settings.servers.ingestion_port}"
    refused: list[import_pb2.RowError] = []
    last = pb.ImportHistoryResponse()
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[published]:,} published, {task.fields[fetched]:,} read"),
        TimeElapsedColumn(),
    )
    interceptors = client_interceptors(settings.tracing)
    async with grpc.aio.insecure_channel(address, interceptors=interceptors) as channel:
        stub = pb_grpc.IngestionServiceStub(channel)  # type: ignore[no-untyped-call]
        with Progress(*columns, console=err, transient=False) as progress:
            task = progress.add_task("starting", total=None, published=0, fetched=0)
            async for last in stub.ImportHistory(request):
                refused.extend(last.row_errors)
                progress.update(
                    task,
                    description=last.current_symbol or "importing",
                    published=last.rows_published,
                    fetched=last.rows_fetched,
                )
    if refused:
        table = Table(title=f"{len(refused)} refused row(s)")
        for column in ("line", "field", "reason"):
            table.add_column(column)
        for row in refused[:_ROW_ERRORS_SHOWN]:
            table.add_row(str(row.line), row.field, row.reason)
        err.print(table)
    return last


def _run(ctx: typer.Context, request: pb.ImportHistoryRequest) -> None:
    settings: Settings = ctx.obj
    # An import from the command line is a trace of its own (when tracing is on); the
    # provider flushes its spans when the command exits.
    configure_tracing(settings.tracing, "cli")
    try:
        done = asyncio.run(_import(settings, request))
    except grpc.aio.AioRpcError as exc:
        err.print(f"[red]{exc.code().name}[/red]: {exc.details()}")
        raise typer.Exit(1) from exc
    if done.state != import_pb2.IMPORT_STATE_DONE:
        err.print(f"[red]Import failed[/red]: {done.message}")
        raise typer.Exit(1)
    note = f" ({done.message})" if done.message else ""
    err.print(f"Imported {done.rows_published:,} of {done.rows_fetched:,} rows{note}")


@ingest_app.command()
def synthetic(
    ctx: typer.Context,
    symbols: Annotated[list[str], typer.Argument(help="Symbols to simulate.")],
    interval: IntervalOption = "1m",
    start: StartOption = None,
    end: EndOption = None,
    days: DaysOption = 5.0,
    seed: Annotated[int, typer.Option(help="Same seed, same market.")] = 42,
    calendar: Annotated[str, typer.Option(help="Exchange calendar, or 24x7.")] = "XNYS",
    trades: Annotated[bool, typer.Option("--trades", help="Trades instead of bars.")] = False,
) -> None:
    """Simulate a market (seeded GBM with jumps on exchange hours) into Kafka."""
    output = import_pb2.SYNTHETIC_OUTPUT_TRADES if trades else import_pb2.SYNTHETIC_OUTPUT_BARS
    start_time, end_time = _range(start, end, days)
    request = pb.ImportHistoryRequest(
        source=import_pb2.IMPORT_SOURCE_SYNTHETIC,
        symbols=symbols,
        interval=None if trades else _interval(interval),
        start_time=start_time,
        end_time=end_time,
        synthetic=import_pb2.SyntheticOptions(seed=seed, calendar=calendar, output=output),
    )
    _run(ctx, request)


@ingest_app.command()
def csv(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV file (sent to the server as bytes).")],
    interval: IntervalOption = "1d",
    mapping: Annotated[
        list[str] | None, typer.Option("--map", help="Header mapping, e.g. --map Date=time.")
    ] = None,
    symbol: Annotated[str, typer.Option(help="Symbol of every row, if no symbol column.")] = "",
    server_path: Annotated[
        bool, typer.Option(help="Send FILE as a path inside the server's CSV import folder.")
    ] = False,
) -> None:
    """Import bars from a CSV file (columns: symbol, time, open, high, low, close, volume,
    optional vwap and trade_count; see --map)."""
    pairs = dict(item.split("=", 1) for item in mapping or [] if "=" in item)
    options = import_pb2.CsvOptions(column_mapping=pairs, default_symbol=symbol)
    if server_path:
        options.path = str(file)
    else:
        if file.stat().st_size > _MAX_INLINE_CSV:
            raise typer.BadParameter(
                "larger than 64 MiB: put it in the server's FINANCELAKE_INGESTION__CSV_IMPORT_DIR "
                "and use --server-path"
            )
        options.data = file.read_bytes()
    request = pb.ImportHistoryRequest(
        source=import_pb2.IMPORT_SOURCE_CSV, interval=_interval(interval), csv=options
    )
    _run(ctx, request)


def _remote(
    ctx: typer.Context,
    source: import_pb2.ImportSource,
    symbols: list[str],
    interval: str,
    start: datetime | None,
    end: datetime | None,
    days: float,
    unadjusted: bool,
) -> None:
    start_time, end_time = _range(start, end, days)
    request = pb.ImportHistoryRequest(
        source=source,
        symbols=symbols,
        interval=_interval(interval),
        start_time=start_time,
        end_time=end_time,
        adjusted=not unadjusted,
    )
    _run(ctx, request)


UnadjustedOption = Annotated[
    bool, typer.Option("--unadjusted", help="Raw prices instead of split/dividend adjusted.")
]


@ingest_app.command()
def yahoo(
    ctx: typer.Context,
    symbols: Annotated[list[str], typer.Argument(help="Yahoo Finance symbols.")],
    interval: IntervalOption = "1d",
    start: StartOption = None,
    end: EndOption = None,
    days: DaysOption = 365.0,
    unadjusted: UnadjustedOption = False,
) -> None:
    """Import bars from Yahoo Finance (the server needs internet)."""
    _remote(ctx, import_pb2.IMPORT_SOURCE_YAHOO, symbols, interval, start, end, days, unadjusted)


@ingest_app.command()
def alphavantage(
    ctx: typer.Context,
    symbols: Annotated[list[str], typer.Argument(help="Alpha Vantage symbols.")],
    interval: IntervalOption = "1d",
    start: StartOption = None,
    end: EndOption = None,
    days: DaysOption = 365.0,
    unadjusted: UnadjustedOption = False,
) -> None:
    """Import bars from Alpha Vantage (the server needs internet and
    FINANCELAKE_SOURCES__ALPHAVANTAGE_API_KEY)."""
    source = import_pb2.IMPORT_SOURCE_ALPHAVANTAGE
    _remote(ctx, source, symbols, interval, start, end, days, unadjusted)
