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
import pyarrow.parquet as pq
from pyiceberg.manifest import ManifestEntryStatus
from pyiceberg.table import Table
from pyiceberg.table.snapshots import ancestors_of

from financelake.services.ingestion.records import Interval

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
        added = None if cached is None else self._added_since(table, cached[0])
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

    @staticmethod
    def _added_since(table: Table, since: int | None) -> list[str] | None:
        """Data files added by the snapshots after `since` (None: reload the series)."""
        metadata = table.metadata
        new: set[int] = set()
        for snapshot in ancestors_of(metadata.current_snapshot(), metadata):
            if snapshot.snapshot_id == since:
                break
            new.add(snapshot.snapshot_id)
        else:
            if since is not None:
                return None  # not an ancestor: history was rewritten
        paths: list[str] = []
        current = metadata.current_snapshot()
        if current is None:
            return paths
        for manifest in current.manifests(table.io):
            if manifest.added_snapshot_id not in new:
                continue
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
                if entry.status == ManifestEntryStatus.ADDED and entry.snapshot_id in new:
                    paths.append(entry.data_file.file_path)
        return paths

    def _read_files(
        self, table: Table, paths: list[str], symbol: str, interval: Interval
    ) -> pa.Table:
        parts = []
        for path in paths:
            with table.io.new_input(path).open() as stream:
                rows = pq.read_table(stream, columns=["symbol", "interval", *self._columns])
            mask = pc.and_(
                pc.equal(rows["symbol"], symbol), pc.equal(rows["interval"], interval.value)
            )
            parts.append(rows.filter(mask).select(list(self._columns)))
        if not parts:
            return pa.table({name: [] for name in self._columns})
        return pa.concat_tables(parts)
