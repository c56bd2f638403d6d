"""Coarser bars from finer ones, exactly: the pure resampling behind `GetBars`.

`resample_bars` turns one symbol's bars of one interval (a pyarrow Table) into bars of a
coarser interval. No gRPC, Kafka or Iceberg here; the caller reads the finer bars, keeps
the latest revision of each, and hands them over sorted.

Aggregation, per target window (only windows holding at least one input bar are output):

- open = first bar's open, close = last bar's close, high = max, low = min;
- volume = sum, trade_count = sum;
- vwap = sum(vwap_i * volume_i) / sum(volume_i). When the window's volume is 0 the
  weights are all 0, so vwap is the plain mean of the input vwaps instead (never NaN,
  never a made-up 0). That fallback is a mean, so it does not compose: resampling a
  zero-volume window in two steps (1m -> 5m -> 1h) averages averages. Windows with
  volume compose exactly up to float rounding of vwap. Sources without a vwap store 0
  (see `records.Bars`); those zeros are averaged like any other value, so a window made
  only of such bars keeps vwap 0, "unknown".

Window alignment (start_time of an output bar is its window's inclusive start):

- 5m, 15m, 30m, 1h (and 1m): UTC, epoch aligned, start = floor(t / width) * width.
  `calendar` is ignored: these windows never depend on the exchange.
- 1d, no calendar: the UTC calendar day, start = 00:00 UTC.
- 1d, with a calendar (`XNYS`, `XLON`, `24x7`...): the exchange session. Sessions tile
  time as [previous session's close, this session's close), so a bar belongs to the
  session in progress at its start_time, and a bar outside every session (pre-market,
  post-market, a holiday) belongs to the NEXT session. Start = that session's open, UTC
  (e.g. 14:30 UTC for a winter XNYS session, 13:30 in summer).
- 1wk, no calendar: weeks from Monday 00:00 UTC.
- 1wk, with a calendar: bars are first mapped to their session as for 1d, then grouped
  by the Monday-to-Sunday week of the session's date. Start = the open of that week's
  first session in the calendar (Tuesday's open after a Monday holiday), whether or not
  that session has bars, so a week's label never depends on which days have data and
  1m -> 1d -> 1wk equals 1m -> 1wk.

Calendars come from `trading_calendar` (loaded lazily and cached per name), which covers
sessions from 2000 to 2040; bars outside it raise `errors.OutOfRange`.

Everything is vectorised: one int64 window key per row, group boundaries where the key
changes (the rows are sorted and every key is monotonic in time), then `reduceat`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from financelake.services import errors
from financelake.services.ingestion.records import Float64s, Int64s, Interval
from financelake.services.ingestion.sources.trading_calendar import (
    CALENDAR_FIRST_DAY,
    CALENDAR_LAST_DAY,
    TradingCalendar,
    trading_calendar,
)

BAR_COLUMNS: tuple[str, ...] = (
    "start_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "vwap",
    "trade_count",
)
"""The columns `resample_bars` reads and returns, in the order it returns them."""

_FLOAT_COLUMNS = ("open", "high", "low", "close", "volume", "vwap")
_TICKS_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_SECONDS_PER_DAY = 86_400
# 1970-01-01 was a Thursday: the Monday before it is 3 days earlier.
_EPOCH_TO_MONDAY_DAYS = 3


def resample_bars(
    bars: pa.Table,
    target: Interval,
    *,
    calendar: str | None = None,
    source: Interval | None = None,
) -> pa.Table:
    """Bars of `target` width built exactly from the finer `bars` of one symbol.

    Args:
        bars: One symbol's bars of one interval, sorted by `start_time`, without duplicate
            start times, with at least the `BAR_COLUMNS` (start_time a timestamp, open to
            vwap float64, trade_count int64) and no nulls in them.
        target: The interval wanted.
        calendar: Exchange calendar name for session-aligned 1d and 1wk bars; None for
            UTC days and Monday-00:00-UTC weeks. Ignored for intraday targets.
        source: The interval of `bars`, when known; validated against `target`.

    Returns:
        A table with exactly the `BAR_COLUMNS`, typed as in `bars` (other columns are
        dropped), one row per target window with input bars, sorted by start_time. When
        `target` equals `source`, the input rows unchanged.

    Raises:
        ValueError: `target` is finer than `source`, or an intraday `target` is not a
            whole multiple of `source`; `bars` lacks a column, has a wrong type, nulls,
            or start times that are not strictly increasing.
        UnknownCalendar: `calendar` names no known calendar.
        errors.OutOfRange: a bar lies outside the sessions the calendar covers.
    """
    _check_intervals(target, source)
    table = _bar_columns(bars)
    # Loaded before the early returns so a bad name fails the same way with or without rows.
    sessions = (
        trading_calendar(calendar)
        if calendar is not None and target.seconds >= _SECONDS_PER_DAY
        else None
    )
    if target is source or len(table) == 0:
        return table
    ticks_per_second = _TICKS_PER_SECOND[table.schema.field("start_time").type.unit]
    start = _int64s(pc.cast(table.column("start_time"), pa.int64()))
    if not bool(np.all(start[1:] > start[:-1])):
        raise ValueError("bars must be sorted by start_time without duplicates")
    key = _window_starts(start, target, sessions, ticks_per_second)
    return _aggregate(table, key)


def _check_intervals(target: Interval, source: Interval | None) -> None:
    if source is None:
        return
    if target.seconds < source.seconds:
        raise ValueError(f"cannot resample {source.value} bars to the finer {target.value}")
    # 1d and 1wk windows are calendar windows: any intraday source tiles them, but an
    # intraday window must be a whole number of source bars.
    if target.seconds < _SECONDS_PER_DAY and target.seconds % source.seconds:
        raise ValueError(
            f"{target.value} is not a whole multiple of {source.value}: windows would split bars"
        )


def _bar_columns(bars: pa.Table) -> pa.Table:
    missing = [name for name in BAR_COLUMNS if name not in bars.column_names]
    if missing:
        raise ValueError(f"bars lack column(s) {', '.join(missing)}")
    table = bars.select(list(BAR_COLUMNS))
    schema = table.schema
    if not pa.types.is_timestamp(schema.field("start_time").type):
        raise ValueError(f"start_time must be a timestamp, not {schema.field('start_time').type}")
    wrong = [name for name in _FLOAT_COLUMNS if schema.field(name).type != pa.float64()]
    if schema.field("trade_count").type != pa.int64():
        wrong.append("trade_count")
    if wrong:
        raise ValueError(f"bars column(s) {', '.join(wrong)} must be float64 (trade_count int64)")
    nulls = [name for name in BAR_COLUMNS if table.column(name).null_count]
    if nulls:
        raise ValueError(f"bars column(s) {', '.join(nulls)} hold nulls")
    return table


def _window_starts(
    start: Int64s, target: Interval, sessions: TradingCalendar | None, ticks_per_second: int
) -> Int64s:
    """The start of each row's target window, in the start_time column's unit."""
    if target.seconds < _SECONDS_PER_DAY:
        width = target.seconds * ticks_per_second
        return start // width * width
    if sessions is None:
        day = _SECONDS_PER_DAY * ticks_per_second
        if target is Interval.D1:
            return start // day * day
        week, shift = 7 * day, _EPOCH_TO_MONDAY_DAYS * day
        return (start + shift) // week * week - shift
    # The calendar is minute aligned, so converting its nanoseconds to a coarser unit is
    # exact.
    nanos_per_tick = 1_000_000_000 // ticks_per_second
    open_ = sessions.open_ns // nanos_per_tick
    close = sessions.close_ns // nanos_per_tick
    # Session i owns [close[i-1], close[i]): the first session closing after the bar starts.
    session = np.searchsorted(close, start, side="right")
    if start[0] < open_[0] or session[-1] == len(close):
        raise errors.OutOfRange(
            f"bars lie outside the {sessions.name} sessions loaded"
            f" ({CALENDAR_FIRST_DAY} to {CALENDAR_LAST_DAY})",
            reason="OUTSIDE_CALENDAR",
            metadata={"calendar": sessions.name},
        )
    if target is Interval.WK1:
        session = sessions.week_first[session]
    window: Int64s = open_[session]
    return window


def _aggregate(table: pa.Table, key: Int64s) -> pa.Table:
    # Keys are non-decreasing, so each window is one run of rows.
    first = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
    last = np.concatenate((first[1:], [len(key)])) - 1
    open_, high, low, close, volume, vwap = (
        _float64s(table.column(name)) for name in _FLOAT_COLUMNS
    )
    trade_count = _int64s(table.column("trade_count"))
    volume_sum = np.add.reduceat(volume, first)
    weighted = np.add.reduceat(vwap * volume, first)
    mean_vwap = np.add.reduceat(vwap, first) / (last - first + 1)
    # Divide only where there is volume, so no 0/0 warning or NaN ever appears.
    window_vwap = np.divide(weighted, volume_sum, out=mean_vwap, where=volume_sum != 0)
    columns: dict[str, npt.NDArray[np.generic]] = {
        "start_time": key[first],
        "open": open_[first],
        "high": np.maximum.reduceat(high, first),
        "low": np.minimum.reduceat(low, first),
        "close": close[last],
        "volume": volume_sum,
        "vwap": window_vwap,
        "trade_count": np.add.reduceat(trade_count, first),
    }
    return pa.Table.from_arrays(
        [pa.array(columns[name], type=table.schema.field(name).type) for name in BAR_COLUMNS],
        schema=table.schema,
    )


def _float64s(column: pa.ChunkedArray) -> Float64s:
    values: Float64s = column.to_numpy()
    return values


def _int64s(column: pa.ChunkedArray | pa.Array) -> Int64s:
    values: npt.NDArray[np.int64] = column.to_numpy()
    return values
