"""`financelake lake ...`: maintenance of the Iceberg lake tables.

`compact` rewrites small data files into fewer large ones; `expire-snapshots` removes old
snapshots from the table metadata. Both keep the stream's exactly-once positions (see
`financelake.stream.lake.maintenance`) and may run while the stream writes: a commit that
loses a race is retried on the new state. Each prints a table of what it did to stdout; a
table that could not be maintained is reported on stderr and makes the exit code 1.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, TypeVar

import typer
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException, NoSuchTableError
from pyiceberg.expressions.parser import parse
from pyiceberg.table import Table
from pyparsing import ParseException
from rich.console import Console
from rich.table import Table as RichTable

from financelake.services.settings import Settings
from financelake.stream.lake.catalog import open_catalog
from financelake.stream.lake.maintenance import (
    DEFAULT_TARGET_FILE_BYTES,
    CompactionResult,
    ExpireResult,
    compact,
    expire_snapshots,
)
from financelake.stream.lake.tables import TABLES

lake_app = typer.Typer(help="Maintain the Iceberg lake tables.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)

_MIB = 1024 * 1024
Result = TypeVar("Result")

TablesOption = Annotated[
    list[str] | None,
    typer.Option(
        "--table",
        help="A table to maintain, e.g. bronze.ticks (repeatable). Default: every lake table "
        "that exists.",
    ),
]


def _tables(catalog: Catalog, names: list[str] | None) -> list[Table]:
    if not names:
        return [
            catalog.load_table(definition.identifier)
            for definition in TABLES
            if catalog.table_exists(definition.identifier)
        ]
    try:
        return [catalog.load_table(name) for name in names]
    except NoSuchTableError as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(1) from exc


def _each(tables: list[Table], action: Callable[[Table], Result]) -> tuple[list[Result], bool]:
    """Run `action` on every table; a table that fails is reported and does not stop the rest."""
    results: list[Result] = []
    failed = False
    for table in tables:
        try:
            results.append(action(table))
        except (CommitFailedException, ValueError) as exc:
            err.print(f"[red]{'.'.join(table.name())}: {exc}[/red]", highlight=False)
            failed = True
    return results, failed


def _compaction_table(results: list[CompactionResult]) -> RichTable:
    table = RichTable(title="Compaction")
    table.add_column("table")
    numbers = ("partitions", "files before", "files after", "rows", "bytes before", "bytes after")
    for column in (*numbers, "snapshot"):
        table.add_column(column, justify="right")
    for r in results:
        if r.snapshot_id is None:
            table.add_row(r.table, "0", "-", "-", "-", "-", "-", "nothing to compact")
            continue
        table.add_row(
            r.table,
            str(r.partitions),
            str(r.files_before),
            str(r.files_after),
            f"{r.rows:,}",
            f"{r.bytes_before:,}",
            f"{r.bytes_after:,}",
            str(r.snapshot_id),
        )
    return table


def _expiry_table(results: list[ExpireResult]) -> RichTable:
    table = RichTable(title="Expired snapshots")
    table.add_column("table")
    for column in ("snapshots before", "removed", "remaining"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(
            r.table, str(len(r.expired) + r.remaining), str(len(r.expired)), str(r.remaining)
        )
    return table


@lake_app.command("compact")
def compact_command(
    ctx: typer.Context,
    tables: TablesOption = None,
    target_file_mb: Annotated[
        int, typer.Option(min=1, help="Target data file size in MiB; smaller files are merged.")
    ] = DEFAULT_TARGET_FILE_BYTES // _MIB,
    where: Annotated[
        str,
        typer.Option(
            help="Only compact files that may hold rows matching this filter, e.g. "
            "\"event_time < '2026-01-05T00:00:00+00:00'\" to leave today's partitions alone.",
        ),
    ] = "True",
) -> None:
    """Merge each partition's small data files into fewer files, in one commit per table.

    Rows are unchanged. The replaced files stay in storage: older snapshots still reference
    them, and expire-snapshots does not delete files.
    """
    try:
        row_filter = parse(where)
    except ParseException as exc:
        raise typer.BadParameter(str(exc), param_hint="--where") from exc
    settings: Settings = ctx.obj
    chosen = _tables(open_catalog(settings), tables)
    results, failed = _each(
        chosen,
        lambda table: compact(table, target_file_bytes=target_file_mb * _MIB, where=row_filter),
    )
    out.print(_compaction_table(results))
    if failed:
        raise typer.Exit(1)


@lake_app.command("expire-snapshots")
def expire_snapshots_command(
    ctx: typer.Context,
    tables: TablesOption = None,
    older_than_hours: Annotated[
        float, typer.Option(min=0, help="Remove snapshots committed more than this long ago.")
    ] = 120.0,
    retain_last: Annotated[
        int, typer.Option(min=1, help="Always keep this many of the newest snapshots.")
    ] = 1,
) -> None:
    """Remove old snapshots from the table metadata (time travel to them ends).

    The current snapshot and every snapshot the stream needs to resume exactly once are
    kept. Data and manifest files no longer referenced are NOT deleted from storage.
    """
    settings: Settings = ctx.obj
    chosen = _tables(open_catalog(settings), tables)
    cutoff = datetime.now(UTC) - timedelta(hours=older_than_hours)
    results, failed = _each(
        chosen,
        lambda table: expire_snapshots(table, older_than=cutoff, retain_last=retain_last),
    )
    out.print(_expiry_table(results))
    if failed:
        raise typer.Exit(1)
