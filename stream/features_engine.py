"""Domain logic of the stream's features agent: closed bars in, rows of `gold.features` out.

Plain numpy/pyarrow, no Faust/Kafka/protobuf, so the agent stays a thin adapter. One
`IndicatorState` (default `IndicatorConfig`, whose output names are the table's indicator
columns) per (symbol, interval), advanced bar by bar in event-time order; each applied bar
yields one row.

Arrivals (classified by `bar_sequence.BarSequence`):
* a NEW bar is applied, after saving the state as it stood before it;
* an AMENDMENT (higher revision of the last applied bar) restores that saved state and
  applies the corrected bar, and its row is emitted again: the table is append-only, so
  readers take the row with the latest computed_time. Within one call only the final version
  of a bar is emitted, since its versions would share one computed_time;
* a DUPLICATE is ignored (counted in `duplicates`);
* a LATE_AMENDMENT (an older bar) or an OUT_OF_ORDER bar is not applied, since that would
  mean replaying every later bar: counted in `amendments_ignored` / `out_of_order` and logged
  at WARNING once per call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from financelake.stream.bar_sequence import Arrival, BarKey, BarSequence, arrival_order
from financelake.stream.indicators import OHLCV, IndicatorState, StateDict
from financelake.stream.lake.tables import FEATURES

logger = logging.getLogger(__name__)

__all__ = ["FeatureEngine"]

_SCHEMA = FEATURES.schema.as_arrow()
_BAR_COLUMNS = ("symbol", "interval", "start_time", "close", "volume", "computed_time")
_INDICATORS = tuple(name for name in _SCHEMA.names if name not in _BAR_COLUMNS)
_NANOS_PER_MICRO = 1_000


@dataclass(slots=True)
class _KeyState:
    """One key's indicators, and their state before the last applied bar (for amendments)."""

    state: IndicatorState
    before: StateDict
    sequence: BarSequence


class FeatureEngine:
    """Per-(symbol, interval) indicator states fed closed bars; see the module docstring."""

    def __init__(self) -> None:
        self._keys: dict[BarKey, _KeyState] = {}
        self.duplicates = 0
        self.amendments_ignored = 0
        self.out_of_order = 0

    @property
    def key_count(self) -> int:
        """(symbol, interval) keys holding state."""
        return len(self._keys)

    def apply(
        self,
        symbol: npt.ArrayLike,
        interval: npt.ArrayLike,
        start_time_ns: npt.ArrayLike,
        open: npt.ArrayLike,
        high: npt.ArrayLike,
        low: npt.ArrayLike,
        close: npt.ArrayLike,
        volume: npt.ArrayLike,
        revision: npt.ArrayLike,
        now_ns: int,
    ) -> pa.Table:
        """Apply columnar bars (any mix of keys, any order) and return their gold.features rows.

        `interval` holds `Interval` values ("1m"...); `now_ns` becomes computed_time. Rows come
        sorted by (symbol, interval, start_time), in the table's exact Arrow schema.
        """
        start = np.asarray(start_time_ns, dtype=np.int64)
        rev = np.asarray(revision, dtype=np.int64)
        order, keys = arrival_order(symbol, interval, start, rev)
        prices = [np.asarray(c, dtype=np.float64) for c in (open, high, low, close, volume)]
        if any(len(p) != len(start) for p in prices):
            raise ValueError("every bar column must have the same length")
        bars = [OHLCV(*row) for row in zip(*(p.tolist() for p in prices), strict=True)]
        starts = start.tolist()
        revisions = rev.tolist()

        emitted: list[int] = []  # input row of each output row
        values: list[list[float]] = []
        refused: dict[str, int] = {}
        for i in order:
            key = keys[i]
            entry = self._keys.get(key)
            if entry is None:
                fresh = IndicatorState()
                entry = self._keys[key] = _KeyState(fresh, fresh.to_dict(), BarSequence())
            arrival = entry.sequence.admit(starts[i], revisions[i])
            if arrival is Arrival.NEW:
                entry.before = entry.state.to_dict()
            elif arrival is Arrival.AMENDMENT:
                entry.state = IndicatorState.from_dict(entry.before)
                # Rows are in (key, start) order, so an earlier version from this call is last.
                if emitted and keys[emitted[-1]] == key and starts[emitted[-1]] == starts[i]:
                    emitted.pop()
                    values.pop()
            else:
                self._count(arrival, key, refused)
                continue
            out = entry.state.update(bars[i])
            values.append([out[name] for name in _INDICATORS])
            emitted.append(i)

        if refused:
            logger.warning(
                "features: not applied (older than the last applied bar of the key): %s; "
                "totals: %d late amendment(s), %d out-of-order bar(s)",
                refused,
                self.amendments_ignored,
                self.out_of_order,
            )
        return _rows(keys, start, prices[3], prices[4], emitted, values, now_ns)

    def _count(self, arrival: Arrival, key: BarKey, refused: dict[str, int]) -> None:
        if arrival is Arrival.DUPLICATE:
            self.duplicates += 1
            return
        if arrival is Arrival.LATE_AMENDMENT:
            self.amendments_ignored += 1
        else:
            self.out_of_order += 1
        label = f"{key[0]} {key[1]} {arrival.value}"
        refused[label] = refused.get(label, 0) + 1

    def to_dict(self) -> StateDict:
        """A JSON-ready snapshot of every key's state (counters are not part of it)."""
        return {
            "keys": [
                {
                    "symbol": symbol,
                    "interval": interval,
                    "state": entry.state.to_dict(),
                    # Never mutated in place (replaced per bar), so sharing it is safe.
                    "before": entry.before,
                    "sequence": entry.sequence.to_dict(),
                }
                for (symbol, interval), entry in self._keys.items()
            ]
        }

    @classmethod
    def from_dict(cls, data: StateDict) -> FeatureEngine:
        """Rebuild the engine `to_dict` described."""
        engine = cls()
        for item in data["keys"]:
            engine._keys[(str(item["symbol"]), str(item["interval"]))] = _KeyState(
                IndicatorState.from_dict(item["state"]),
                item["before"],
                BarSequence.from_dict(item["sequence"]),
            )
        return engine


def _rows(
    keys: list[BarKey],
    start: npt.NDArray[np.int64],
    close: npt.NDArray[np.float64],
    volume: npt.NDArray[np.float64],
    emitted: list[int],
    values: list[list[float]],
    now_ns: int,
) -> pa.Table:
    """The emitted rows as a table in `gold.features`' Arrow schema."""
    rows = np.asarray(emitted, dtype=np.intp)
    n = len(rows)
    matrix = np.asarray(values, dtype=np.float64).reshape(n, len(_INDICATORS))
    timestamp = _SCHEMA.field("start_time").type
    columns: dict[str, pa.Array] = {
        "symbol": pa.array([keys[i][0] for i in emitted], type=_SCHEMA.field("symbol").type),
        "interval": pa.array([keys[i][1] for i in emitted], type=_SCHEMA.field("interval").type),
        # Iceberg stores microseconds; floor division keeps pre-1970 times in their bar.
        "start_time": pa.array(start[rows] // _NANOS_PER_MICRO, type=timestamp),
        "close": pa.array(close[rows]),
        "volume": pa.array(volume[rows]),
        "computed_time": pa.array(np.full(n, now_ns // _NANOS_PER_MICRO), type=timestamp),
    }
    for j, name in enumerate(_INDICATORS):
        column = matrix[:, j]
        # NaN marks a warming-up indicator; the table says so with null.
        columns[name] = pa.array(column, mask=np.isnan(column))
    return pa.Table.from_arrays([columns[name] for name in _SCHEMA.names], schema=_SCHEMA)
