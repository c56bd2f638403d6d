"""Reading `silver.bars` back for the market-data service: one symbol's bars over a time
range (native or resampled), a page at a time, and the list of symbols with their day change.

Plain code over the Iceberg catalog (no gRPC, no protobuf): the servicer runs it in a thread.

Which rows are served (the rules `GetBars` and `ListSymbols` document):

* Revisions: the stream appends a bar again, with `revision` + 1, when late trades amend it.
  Of the rows of one (symbol, interval, start_time, source) only the highest revision counts.
* Sources: one start can hold bars from several sources (the stream's `trades` bars and an
  import of the same minutes). `trades` wins, since it is built from the trades this lake
  holds; among imported sources the first by name wins, so the choice is deterministic.
  Both rules are one vectorised sort + "first of each key" mask (`latest_bars`).
* Intervals: when the requested interval has bars of its own for the symbol in the range
  (imported 1d bars, say), those are served as they are. Otherwise the bars are resampled
  (`resample.resample_bars`, UTC windows) from the finest interval that has bars in the
  range, 1m usually; the finer range read is widened to whole target windows so the edge
  windows are complete. The choice is made once per request range, so every page of a
  request comes from the same interval.
* A resampled bar's `source` is its inputs' preferred source, `adjusted` is true only when
  every input is, and `revision` is the highest input revision (it changes whenever an
  input was amended).

Reads are pruned: every scan filters on interval (identity partition), symbol (bucket) and
the start_time range (day partition) and selects only the columns it needs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import (
    And,
    BooleanExpression,
    EqualTo,
    GreaterThanOrEqual,
    LessThan,
    Reference,
)
from pyiceberg.expressions.literals import literal
from pyiceberg.table import Table

from financelake.services.errors import NotFound
from financelake.services.ingestion.records import Int64s, Interval
from financelake.services.marketdata.resample import BAR_COLUMNS, resample_bars
from financelake.services.marketdata.series_cache import DEFAULT_MAX_SERIES, SeriesCache
from financelake.services.marketdata.windows import window_end, window_keys, window_start
from financelake.stream.lake.tables import BARS

logger = logging.getLogger(__name__)

TRADES_SOURCE = "trades"
"""`source` of the bars the stream builds from trades: preferred over imported bars."""

SERVED_COLUMNS: tuple[str, ...] = (*BAR_COLUMNS, "source", "adjusted", "revision")
"""Columns of the tables `bars` and `page` return, in this order."""

DEFAULT_REFRESH_INTERVAL_S = 0.5
"""How often, at most, the table's metadata is re-read from the catalog."""

NANOS_PER_MICRO = 1_000
NANOS_PER_SECOND = 1_000_000_000
_DAY_NS = 86_400 * NANOS_PER_SECOND
# Finest first: the order in which a resampling source is looked for.
_INTERVALS: tuple[Interval, ...] = tuple(sorted(Interval, key=lambda i: i.seconds))
_RANK = "_rank"
_START_TYPE = pa.timestamp("us", tz="UTC")


class UnknownSymbol(NotFound):
    """The lake holds no bar at all of the symbol."""

    default_reason = "SYMBOL_NOT_FOUND"


@dataclass(frozen=True)
class SymbolSummary:
    """One symbol as the symbol list shows it, from its finest interval's bars.

    Attributes:
        symbol: The instrument.
        last_price: Close of the latest bar.
        previous_close: Close of the last bar of the UTC day before the latest bar's day;
            0 when there is none.
        change: last_price - previous_close; 0 when previous_close is unknown.
        change_percent: change / previous_close * 100; 0 when previous_close is unknown.
        volume_today: Volume of the bars of the latest bar's UTC day.
        first_data_ns: Start time of the symbol's first bar, any interval (ns since epoch).
        last_data_ns: Start time of the symbol's latest bar, any interval (ns since epoch).
    """

    symbol: str
    last_price: float
    previous_close: float
    change: float
    change_percent: float
    volume_today: float
    first_data_ns: int
    last_data_ns: int


@dataclass(frozen=True)
class BarPage:
    """One page of bars and where the next one starts.

    Attributes:
        bars: Up to the page's limit of bars, `SERVED_COLUMNS`, oldest first.
        next_start_ns: Start time of the first bar of the next page; None on the last page.
    """

    bars: pa.Table
    next_start_ns: int | None


def _micros_ceil(time_ns: int) -> int:
    # start_time is stored in µs: t_us * 1000 >= x  <=>  t_us >= ceil(x / 1000).
    return -(-time_ns // NANOS_PER_MICRO)


def _int64s(column: pa.ChunkedArray | pa.Array) -> Int64s:
    values: Int64s = pc.cast(column, pa.int64()).to_numpy()
    return values


def latest_bars(rows: pa.Table, keys: Sequence[str]) -> pa.Table:
    """One row per `keys`: the highest revision of the preferred source (`trades`, then
    imported sources by name), sorted by `keys`. Vectorised: one sort, then a mask keeping
    the first row of each key."""
    if rows.num_rows == 0:
        return rows
    rank = pc.cast(pc.not_equal(rows["source"], TRADES_SOURCE), pa.int8())
    ranked = rows.append_column(_RANK, rank)
    ranked = ranked.sort_by(
        [(key, "ascending") for key in keys]
        + [(_RANK, "ascending"), ("source", "ascending"), ("revision", "descending")]
    ).combine_chunks()
    count = ranked.num_rows
    same = np.ones(count - 1, dtype=bool)
    for key in keys:
        column = ranked[key]
        equal = pc.equal(column.slice(1), column.slice(0, count - 1))
        same &= equal.to_numpy(zero_copy_only=False)
    first = np.concatenate(([True], ~same))
    return ranked.filter(pa.array(first)).drop_columns([_RANK])


def _range_filter(symbol: str, interval: Interval, start_ns: int, end_ns: int) -> BooleanExpression:
    # Interval and symbol equalities prune on the identity and bucket partitions, the
    # start_time bounds on the day partition (and on the files' column statistics).
    return And(
        EqualTo(term=Reference("interval"), value=literal(interval.value)),
        EqualTo(term=Reference("symbol"), value=literal(symbol)),
        GreaterThanOrEqual(term=Reference("start_time"), value=literal(_micros_ceil(start_ns))),
        LessThan(term=Reference("start_time"), value=literal(_micros_ceil(end_ns))),
    )


_SERVED_SCHEMA = pa.schema(
    [
        BARS.schema.as_arrow().field(name).remove_metadata().with_nullable(False)
        for name in SERVED_COLUMNS
    ]
)


def _served(rows: pa.Table) -> pa.Table:
    """`rows` with exactly the `SERVED_COLUMNS`, typed as the table reads them."""
    return rows.select(list(SERVED_COLUMNS)).cast(_SERVED_SCHEMA)


def _empty_bars() -> pa.Table:
    return _SERVED_SCHEMA.empty_table()


def resampled(rows: pa.Table, target: Interval, source: Interval) -> pa.Table:
    """`rows` (the latest bars of one symbol at `source` width, sorted) as `target` bars,
    with source, adjusted and revision per window (see the module docstring)."""
    bars = resample_bars(rows, target, source=source)
    keys = window_keys(_int64s(rows["start_time"]) * NANOS_PER_MICRO, target)
    first = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    if len(first) != bars.num_rows:  # resample_bars emits one bar per window with input
        raise AssertionError("resampled windows do not match their inputs")
    names: list[str] = rows["source"].to_pylist()
    order = sorted(set(names), key=lambda name: (name != TRADES_SOURCE, name))
    codes = np.array([order.index(name) for name in names], dtype=np.int64)
    chosen = [order[code] for code in np.minimum.reduceat(codes, first).tolist()]
    adjusted = np.logical_and.reduceat(rows["adjusted"].to_numpy(zero_copy_only=False), first)
    revision = np.maximum.reduceat(rows["revision"].to_numpy(zero_copy_only=False), first)
    return (
        bars.append_column("source", pa.array(chosen, type=pa.string()))
        .append_column("adjusted", pa.array(adjusted, type=pa.bool_()))
        .append_column("revision", pa.array(revision, type=pa.int32()))
    )


class BarStore:
    """`silver.bars` as the market-data service reads it.

    Thread-safe: the servicer calls it from worker threads. The Table object is loaded once
    and its metadata re-read from the catalog at most every `refresh_interval_s`: each read
    costs a catalog round trip plus the metadata JSON (which grows with the snapshot log),
    and a client paging through bars or a UI polling the symbol list would otherwise pay it
    on every call; half a second is well under the stream's commit interval (seconds), so
    the data served is at most that much older than the lake. The symbol list is cached
    per snapshot id and recomputed only when a new snapshot exists.
    """

    def __init__(
        self,
        catalog: Catalog,
        *,
        refresh_interval_s: float = DEFAULT_REFRESH_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        max_series: int = DEFAULT_MAX_SERIES,
    ) -> None:
        self._catalog = catalog
        self._refresh_interval_s = refresh_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._table: Table | None = None
        self._checked_at = 0.0
        self._summaries: tuple[int | None, list[SymbolSummary]] | None = None
        self._cache = SeriesCache(
            _load_series, _merge_series, SERVED_COLUMNS, max_series=max_series
        )

    def table(self) -> Table:
        """silver.bars with metadata at most `refresh_interval_s` old."""
        with self._lock:
            now = self._clock()
            if self._table is None or now - self._checked_at >= self._refresh_interval_s:
                # A fresh object swapped in (what `Table.refresh()` does, without mutating
                # the object other threads' scans may be planning from).
                fresh = self._catalog.load_table(BARS.identifier)
                if self._table is None or _snapshot_id(fresh) != _snapshot_id(self._table):
                    self._table = fresh
                self._checked_at = now
            return self._table

    def snapshot_id(self) -> int | None:
        """The current snapshot of silver.bars as this store sees it; None when empty."""
        return _snapshot_id(self.table())

    def has_symbol(self, symbol: str) -> bool:
        """Whether the lake holds any bar of `symbol`."""
        scan = self.table().scan(
            row_filter=EqualTo(term=Reference("symbol"), value=literal(symbol)),
            selected_fields=("symbol",),
            limit=1,
        )
        found: int = scan.to_arrow().num_rows
        return found > 0

    def bars(self, symbol: str, interval: Interval, start_ns: int, end_ns: int) -> pa.Table:
        """Every bar of `symbol` at `interval` starting in [start_ns, end_ns), oldest first,
        `SERVED_COLUMNS`. Raises `UnknownSymbol` when the lake holds no bar of it."""
        return self.page(symbol, interval, start_ns, end_ns, limit=None).bars

    def page(
        self,
        symbol: str,
        interval: Interval,
        start_ns: int,
        end_ns: int,
        limit: int | None,
        *,
        from_ns: int | None = None,
    ) -> BarPage:
        """The first `limit` bars (all when None) of `bars(symbol, interval, start_ns,
        end_ns)` starting at or after `from_ns` (default `start_ns`: the first page), and
        the start of the next one. The source interval is chosen over the whole
        [start_ns, end_ns), so every page of a range comes from the same interval.

        Reads grow in time chunks from `start_ns` (first enough for `limit` + 1 dense bars,
        then 4 times wider each round) until `limit` + 1 bars are found, so a page of a long
        range reads about a page of data. Chunk ends are target window boundaries, so no
        resampled window is split.
        """
        table = self.table()
        source = self._source_interval(table, symbol, interval, start_ns, end_ns)
        if source is None:
            if not self.has_symbol(symbol):
                raise UnknownSymbol(f"no bars of {symbol} in the lake", metadata={"symbol": symbol})
            return BarPage(_empty_bars(), None)
        wanted = None if limit is None else limit + 1
        chunks: list[pa.Table] = []
        found = 0
        cursor = start_ns if from_ns is None else max(start_ns, from_ns)
        span = end_ns - start_ns if wanted is None else wanted * interval.seconds * NANOS_PER_SECOND
        while cursor < end_ns and (wanted is None or found < wanted):
            chunk_end = min(end_ns, window_end(cursor + span, interval))
            chunk = self._read_bars(table, symbol, interval, source, cursor, chunk_end)
            chunks.append(chunk)
            found += chunk.num_rows
            cursor = chunk_end
            span *= 4
        rows = pa.concat_tables(chunks) if chunks else _empty_bars()
        if wanted is None or rows.num_rows < wanted:
            return BarPage(rows, None)
        assert limit is not None
        next_start = int(_int64s(rows["start_time"].slice(limit, 1))[0]) * NANOS_PER_MICRO
        return BarPage(rows.slice(0, limit), next_start)

    def _source_interval(
        self, table: Table, symbol: str, interval: Interval, start_ns: int, end_ns: int
    ) -> Interval | None:
        """The interval the range is served from: `interval` itself when it has bars of its
        own in the range, else the finest finer interval with bars in the widened range."""
        if self._any(table, symbol, interval, start_ns, end_ns):
            return interval
        low, high = window_start(start_ns, interval), window_end(end_ns, interval)
        for finer in _INTERVALS:
            if finer.seconds >= interval.seconds:
                break
            if self._any(table, symbol, finer, low, high):
                return finer
        return None

    def _any(
        self, table: Table, symbol: str, interval: Interval, start_ns: int, end_ns: int
    ) -> bool:
        return bool(self._slice(table, symbol, interval, start_ns, end_ns).num_rows > 0)

    def _slice(
        self, table: Table, symbol: str, interval: Interval, start_ns: int, end_ns: int
    ) -> pa.Table:
        """The stored bars of [start_ns, end_ns), from the series cache (sorted)."""
        series = self._cache.get(table, symbol, interval)
        starts = _int64s(series["start_time"])
        lo, hi = np.searchsorted(starts, [_micros_ceil(start_ns), _micros_ceil(end_ns)])
        return series.slice(int(lo), int(hi - lo))

    def _read_bars(
        self,
        table: Table,
        symbol: str,
        interval: Interval,
        source: Interval,
        start_ns: int,
        end_ns: int,
    ) -> pa.Table:
        """Bars of [start_ns, end_ns) at `interval`, read at `source` width."""
        if source is interval:
            return self._slice(table, symbol, interval, start_ns, end_ns)
        low, high = window_start(start_ns, interval), window_end(end_ns, interval)
        rows = self._slice(table, symbol, source, low, high)
        if rows.num_rows == 0:
            return _empty_bars()
        bars = resampled(rows, interval, source)
        starts = pc.cast(bars["start_time"], pa.int64())
        inside = pc.and_(
            pc.greater_equal(starts, _micros_ceil(start_ns)),
            pc.less(starts, _micros_ceil(end_ns)),
        )
        return _served(bars.filter(inside))

    def symbols(self) -> list[SymbolSummary]:
        """Every symbol with bars, by name, with its prices and day (see `SymbolSummary`);
        computed from one scan of the needed columns per snapshot, cached."""
        table = self.table()
        snapshot = _snapshot_id(table)
        cached = self._summaries
        if cached is not None and cached[0] == snapshot:
            return cached[1]
        rows = table.scan(
            selected_fields=(
                "symbol",
                "interval",
                "start_time",
                "close",
                "volume",
                "source",
                "revision",
            )
        ).to_arrow()
        summaries = summarize(rows)
        if not summaries:
            logger.info(
                "silver.bars holds no bars yet: ListSymbols answers an empty list until the "
                "stream or an import writes some"
            )
        self._summaries = (snapshot, summaries)
        return summaries


def _load_series(table: Table, symbol: str, interval: Interval) -> pa.Table:
    """Every stored bar of (symbol, interval): one scan pruned to its partitions."""
    scan = table.scan(
        row_filter=And(
            EqualTo(term=Reference("interval"), value=literal(interval.value)),
            EqualTo(term=Reference("symbol"), value=literal(symbol)),
        ),
        selected_fields=SERVED_COLUMNS,
    )
    return _served(latest_bars(scan.to_arrow(), ["start_time"]))


def _merge_series(series: pa.Table, rows: pa.Table) -> pa.Table:
    return _served(latest_bars(pa.concat_tables([series, _served(rows)]), ["start_time"]))


def _snapshot_id(table: Table) -> int | None:
    snapshot = table.current_snapshot()
    return None if snapshot is None else snapshot.snapshot_id


def summarize(rows: pa.Table) -> list[SymbolSummary]:
    """`SymbolSummary` of every symbol in `rows` (silver.bars rows with at least symbol,
    interval, start_time, close, volume, source, revision), by symbol. Vectorised."""
    if rows.num_rows == 0:
        return []
    latest = latest_bars(rows, ["symbol", "interval", "start_time"])
    # Times over every interval; prices from each symbol's finest interval.
    spans = (
        latest.group_by("symbol")
        .aggregate([("start_time", "min"), ("start_time", "max")])
        .sort_by("symbol")
    )
    widths = pc.index_in(latest["interval"], pa.array([i.value for i in _INTERVALS]))
    latest = latest.append_column(_RANK, pc.cast(widths, pa.int32()))
    finest = latest.group_by("symbol").aggregate([(_RANK, "min")])
    finest = finest.rename_columns(["symbol", "_finest"])
    native = latest.join(finest, "symbol")
    native = native.filter(pc.equal(native[_RANK], native["_finest"]))
    native = native.sort_by([("symbol", "ascending"), ("start_time", "ascending")])

    symbols = native["symbol"].to_numpy(zero_copy_only=False)
    starts = _int64s(native["start_time"]) * NANOS_PER_MICRO
    close = native["close"].to_numpy()
    volume = native["volume"].to_numpy()
    count = len(symbols)
    first = np.flatnonzero(np.concatenate(([True], symbols[1:] != symbols[:-1])))
    last = np.concatenate((first[1:], [count])) - 1
    day = starts // _DAY_NS
    group = np.repeat(np.arange(len(first)), np.diff(np.concatenate((first, [count]))))
    today = day == day[last][group]
    volume_today = np.add.reduceat(np.where(today, volume, 0.0), first)
    # Each group is sorted, so its today rows are a suffix; the row before it is the
    # previous day's last bar when it belongs to the group.
    before_today = last - np.add.reduceat(today.astype(np.int64), first)
    known = before_today >= first
    previous = np.where(known, close[np.maximum(before_today, 0)], 0.0)
    last_price = close[last]
    change = np.where(known, last_price - previous, 0.0)
    percent = np.divide(
        change * 100.0, previous, out=np.zeros_like(change), where=known & (previous != 0)
    )
    first_ns = _int64s(spans["start_time_min"]) * NANOS_PER_MICRO
    last_ns = _int64s(spans["start_time_max"]) * NANOS_PER_MICRO
    return [
        SymbolSummary(
            symbol=str(symbol),
            last_price=float(price),
            previous_close=float(prev),
            change=float(delta),
            change_percent=float(pct),
            volume_today=float(vol),
            first_data_ns=int(first_time),
            last_data_ns=int(last_time),
        )
        for symbol, price, prev, delta, pct, vol, first_time, last_time in zip(
            symbols[first].tolist(),
            last_price.tolist(),
            previous.tolist(),
            change.tolist(),
            percent.tolist(),
            volume_today.tolist(),
            first_ns.tolist(),
            last_ns.tolist(),
            strict=True,
        )
    ]


def search(summaries: Sequence[SymbolSummary], query: str) -> list[SymbolSummary]:
    """The summaries whose symbol contains `query` (case-insensitive): prefix matches
    first, each group by symbol; all of them, by symbol, when `query` is empty."""
    needle = query.upper()
    matching = [s for s in summaries if needle in s.symbol.upper()]
    return sorted(matching, key=lambda s: search_key(s.symbol, query))


def search_key(symbol: str, query: str) -> tuple[int, str]:
    """Where `symbol` sorts in a search for `query`: (0 prefix / 1 other match, symbol)."""
    return (0 if symbol.upper().startswith(query.upper()) else 1, symbol)
