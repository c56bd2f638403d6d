"""The newest `gold.features` row of every (symbol, interval), in memory for Predict.

Loaded with one scan of the table's last `lookback_s` (a symbol whose newest bar is older is
not served: a forecast of the "next bar" from a weeks-old bar would mislead), then kept
current per snapshot by reading only the data files newer snapshots add
(`stream.lake.changes`). Each row's model input is computed once, when the row arrives, by
`models.dataset.direction_features`, the function training uses, so serving cannot drift
from training. Amended bars (a row with a later `computed_time`) replace the row they amend.

Plain code over Iceberg, no gRPC: the server refreshes it from a worker thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.expressions import GreaterThanOrEqual, Reference
from pyiceberg.expressions.literals import literal
from pyiceberg.table import Table

from financelake.models.dataset import Float32s, direction_features, latest_rows
from financelake.stream.lake.changes import files_added_since, read_files
from financelake.stream.lake.tables import FEATURES

_COLUMNS = list(FEATURES.schema.as_arrow().names)
_NANOS_PER_MICRO = 1_000


@dataclass(frozen=True, slots=True)
class FeatureRow:
    """A series' newest bar as the models take it."""

    symbol: str
    interval: str
    start_time_ns: int
    """Start of the bar the features describe."""
    computed_time_ns: int
    features: Float32s
    """`models.dataset.DIRECTION_FEATURES` of the bar, float32; NaN while warming up."""

    @property
    def complete(self) -> bool:
        """Whether every feature is finite (no indicator still warming up)."""
        return bool(np.isfinite(self.features).all())


class LatestFeatures:
    """Per (symbol, interval) the newest features row; thread-safe."""

    def __init__(
        self,
        *,
        lookback_s: float,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._lookback_ns = int(lookback_s * 1e9)
        self._clock_ns = clock_ns
        self._lock = threading.Lock()
        self._rows: dict[tuple[str, str], FeatureRow] = {}
        self._snapshot_id: int | None = None
        self._loaded = False

    @property
    def loaded(self) -> bool:
        """Whether the table was read at least once."""
        return self._loaded

    def get(self, symbol: str, interval: str) -> FeatureRow | None:
        """The newest row of the series, if one is held."""
        return self._rows.get((symbol, interval))

    def symbols(self, interval: str) -> list[str]:
        """Symbols with a row at `interval`, sorted."""
        return sorted(symbol for symbol, of in self._rows if of == interval)

    def refresh(self, table: Table) -> None:
        """Bring the rows up to `table`'s current snapshot (`table` is gold.features)."""
        with self._lock:  # one refresh at a time; readers never wait (the dict is swapped)
            snapshot = table.current_snapshot()
            current = None if snapshot is None else snapshot.snapshot_id
            if self._loaded and current == self._snapshot_id:
                return
            added = files_added_since(table, self._snapshot_id) if self._loaded else None
            if added is None:
                since_us = (self._clock_ns() - self._lookback_ns) // _NANOS_PER_MICRO
                rows = table.scan(
                    row_filter=GreaterThanOrEqual(
                        term=Reference("start_time"), value=literal(since_us)
                    ),
                    selected_fields=tuple(_COLUMNS),
                    snapshot_id=current,
                ).to_arrow()
                held: dict[tuple[str, str], FeatureRow] = {}
            else:
                parts = read_files(table, added, _COLUMNS)
                rows = pa.concat_tables(parts) if parts else None
                held = dict(self._rows)
            if rows is not None and rows.num_rows:
                for row in newest_rows(rows):
                    key = (row.symbol, row.interval)
                    old = held.get(key)
                    if old is None or (row.start_time_ns, row.computed_time_ns) > (
                        old.start_time_ns,
                        old.computed_time_ns,
                    ):
                        held[key] = row
            self._rows = held
            self._snapshot_id = current
            self._loaded = True


def newest_rows(rows: pa.Table) -> list[FeatureRow]:
    """The newest row of each (symbol, interval) in `rows` (gold.features columns)."""
    ordered = latest_rows(rows)  # newest computation per bar, sorted by series then time
    symbols = ordered["symbol"]
    intervals = ordered["interval"]
    n = ordered.num_rows
    last = np.ones(n, dtype=np.bool_)
    if n > 1:
        same_next = pc.and_(
            pc.equal(symbols.slice(1), symbols.slice(0, n - 1)),
            pc.equal(intervals.slice(1), intervals.slice(0, n - 1)),
        )
        last[:-1] = ~same_next.to_numpy(zero_copy_only=False)
    newest = ordered.filter(pa.array(last))
    features = direction_features(newest)
    starts = pc.cast(newest["start_time"], pa.int64()).to_numpy() * _NANOS_PER_MICRO
    computed = pc.cast(newest["computed_time"], pa.int64()).to_numpy() * _NANOS_PER_MICRO
    return [
        FeatureRow(symbol, interval, int(start), int(done), features[index])
        for index, (symbol, interval, start, done) in enumerate(
            zip(
                newest["symbol"].to_pylist(),
                newest["interval"].to_pylist(),
                starts.tolist(),
                computed.tolist(),
                strict=True,
            )
        )
    ]
