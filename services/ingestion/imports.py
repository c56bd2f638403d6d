"""ImportHistory's domain side: from an import request to the chunks a source yields.

Each chunk is one symbol's `Bars` or `Trades`, with the rows the source refused. Sources
block (HTTP, rate limits, file reads), so the service pulls chunks from a worker thread.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from financelake.services.errors import FailedPrecondition, FieldViolation, InvalidInput
from financelake.services.ingestion.records import Bars, Interval, Trades
from financelake.services.ingestion.sources import RowProblem
from financelake.services.ingestion.sources.corporate_actions import CorporateActions
from financelake.services.ingestion.sources.synthetic import simulate_bars, simulate_trades
from financelake.services.ingestion.sources.synthetic_model import SyntheticOptions
from financelake.services.settings import Settings


class ImportSource(enum.Enum):
    """Where an import reads."""

    YAHOO = "yahoo"
    ALPHAVANTAGE = "alphavantage"
    SYNTHETIC = "synthetic"
    CSV = "csv"


@dataclass(frozen=True)
class CsvInput:
    """A CSV import's content (a server-side path or the bytes) and how to read it."""

    path: str | None
    data: bytes | None
    column_mapping: dict[str, str] = field(default_factory=dict)
    default_symbol: str = ""


@dataclass(frozen=True)
class ImportRequest:
    """What to import; times are nanoseconds since the epoch, UTC, end exclusive."""

    source: ImportSource
    symbols: tuple[str, ...]
    interval: Interval | None
    start_ns: int | None
    end_ns: int
    adjusted: bool = False
    csv: CsvInput | None = None
    synthetic: SyntheticOptions = field(default_factory=SyntheticOptions)
    synthetic_trades: bool = False


@dataclass(frozen=True)
class Chunk:
    """One step of an import: a symbol's rows, and the rows the source refused."""

    symbol: str
    data: Bars | Trades | None
    rows_fetched: int
    problems: tuple[RowProblem, ...] = ()
    actions: CorporateActions | None = None
    """Dividends and splits the source reported beside the bars."""


def _required_start(request: ImportRequest) -> int:
    if request.start_ns is None:
        raise InvalidInput(
            f"start_time is required for {request.source.value} imports",
            violations=[FieldViolation("start_time", "required for this source", "REQUIRED")],
        )
    return request.start_ns


def _datetime(time_ns: int) -> datetime:
    return datetime.fromtimestamp(time_ns / 1e9, tz=UTC)


def _csv_source(csv: CsvInput, import_dir: Path | None) -> bytes | Path:
    if csv.data is not None:
        return csv.data
    if import_dir is None:
        raise FailedPrecondition(
            "this server reads no CSV paths: send the file's bytes (csv.data), or set "
            "FINANCELAKE_INGESTION__CSV_IMPORT_DIR to a folder it may read from"
        )
    root = import_dir.expanduser().resolve()
    path = (root / str(csv.path)).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        # One message for both: whether a file exists outside the folder is not the
        # caller's business.
        raise InvalidInput(
            f"no CSV file {csv.path!r} in the import folder",
            violations=[FieldViolation("csv.path", "not a file in the import folder", "NOT_FOUND")],
        )
    return path


def import_chunks(request: ImportRequest, settings: Settings) -> Iterator[Chunk]:
    """The chunks of `request`, in order; raises SourceError when a source fails."""
    if request.source is ImportSource.SYNTHETIC:
        start = _required_start(request)
        if request.synthetic_trades:
            trades = simulate_trades(request.symbols, start, request.end_ns, request.synthetic)
            yield from (Chunk(t.symbol, t, len(t)) for t in trades)
            return
        assert request.interval is not None  # convert.import_request guarantees it
        bars = simulate_bars(
            request.symbols, request.interval, start, request.end_ns, request.synthetic
        )
        yield from (Chunk(b.symbol, b, len(b)) for b in bars)
    elif request.source is ImportSource.CSV:
        from financelake.services.ingestion.sources.csv_bars import read_csv_bars

        assert request.csv is not None
        assert request.interval is not None
        read = read_csv_bars(
            _csv_source(request.csv, settings.ingestion.csv_import_dir),
            interval=request.interval,
            column_mapping=request.csv.column_mapping,
            default_symbol=request.csv.default_symbol,
            symbols=request.symbols,
            adjusted=request.adjusted,
        )
        if not read.bars:
            yield Chunk("", None, read.rows_read, tuple(read.problems))
        for index, symbol_bars in enumerate(read.bars):
            # Rows fetched and refused are reported once, with the first symbol.
            first = index == 0
            yield Chunk(
                symbol_bars.symbol,
                symbol_bars,
                read.rows_read if first else 0,
                tuple(read.problems) if first else (),
            )
    else:
        yield from _remote_chunks(request, settings)


def _remote_chunks(request: ImportRequest, settings: Settings) -> Iterator[Chunk]:
    # Imported on use: yfinance and pandas take a second to import, needed by few.
    from financelake.services.ingestion.sources.alphavantage import AlphaVantageClient
    from financelake.services.ingestion.sources.yahoo import YahooClient

    start = _datetime(_required_start(request))
    end = _datetime(request.end_ns)
    assert request.interval is not None
    client: YahooClient | AlphaVantageClient
    if request.source is ImportSource.YAHOO:
        client = YahooClient(
            timeout_s=settings.sources.http_timeout_s, cache_dir=settings.cache_dir / "yfinance"
        )
    else:
        client = AlphaVantageClient(settings.sources)
    for symbol in request.symbols:
        history = client.history(
            symbol, interval=request.interval, start=start, end=end, adjusted=request.adjusted
        )
        yield Chunk(
            symbol,
            history.bars,
            len(history.bars) + len(history.problems),
            tuple(history.problems),
            history.actions,
        )
