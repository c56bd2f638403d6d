"""Whole bar series kept in memory, so paging through a symbol-year does not re-scan the lake.

A series is every stored bar of one (symbol, interval) in `silver.bars`, latest revision per
start time, sorted. It is read once with one scan; when the table gains snapshots, only the
data files those snapshots added are read and merged in (the lake is append-only apart from
compaction, whose rewritten files merge in as the same rows). A snapshot the cached one is
not an ancestor of (a rollback, expired history) reloads the series. The cache holds the
`max_series` most recently used series.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.table import Table

from financelake.services.ingestion.records import Interval
from financelake.stream.lake.changes import files_added_since, read_files

DEFAULT_MAX_SERIES = 32

Loader = Callable[[Table, str, Interval], pa.Table]
"""Reads a whole series from the table (served columns, latest revision, sorted)."""
Merger = Callable[[pa.Table, pa.Table], pa.Table]
"""Merges new rows into a series (latest revision per start time wins), sorted."""


class SeriesCache:
    """The most recently used whole series, brought up to date per snapshot."""

    def __init__(
        self, load: Loader, merge: Merger, columns: tuple[str, ...], max_series: int
    ) -> None:
        self._load = load
        self._merge = merge
        self._columns = columns
        self._max_series = max_series
        self._lock = threading.Lock()
        self._series: OrderedDict[tuple[str, str], tuple[int | None, pa.Table]] = OrderedDict()

    def get(self, table: Table, symbol: str, interval: Interval) -> pa.Table:
        """The series of (symbol, interval) as of `table`'s current snapshot."""
        key = (symbol, interval.value)
        current = table.current_snapshot()
        current_id = None if current is None else current.snapshot_id
        with self._lock:
            cached = self._series.get(key)
            if cached is not None:
                self._series.move_to_end(key)
        if cached is not None and cached[0] == current_id:
            return cached[1]
        added = None if cached is None else files_added_since(table, cached[0])
        if cached is not None and added is not None:
            rows = self._read_files(table, added, symbol, interval)
            series = cached[1] if rows.num_rows == 0 else self._merge(cached[1], rows)
        else:
            series = self._load(table, symbol, interval)
        with self._lock:
            self._series[key] = (current_id, series)
            self._series.move_to_end(key)
            while len(self._series) > self._max_series:
                self._series.popitem(last=False)
        return series

    def _read_files(
        self, table: Table, paths: list[str], symbol: str, interval: Interval
    ) -> pa.Table:
        parts = []
        for rows in read_files(table, paths, ["symbol", "interval", *self._columns]):
            mask = pc.and_(
                pc.equal(rows["symbol"], symbol), pc.equal(rows["interval"], interval.value)
            )
            parts.append(rows.filter(mask).select(list(self._columns)))
        if not parts:
            return pa.table({name: [] for name in self._columns})
        return pa.concat_tables(parts)
