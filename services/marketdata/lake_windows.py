"""The lake's part of live daily and weekly bars, read through the `BarStore` (GetBars' rows
and resampling, so a live day is the day GetBars serves once it is stored).

A watcher of a long interval starts with the last closed window (GetBars' bar of the window
before) and needs the current window's minutes that the live view does not hold: those
before its oldest held minute, or all stored ones when it holds none.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from financelake.services.ingestion.records import Interval
from financelake.services.marketdata.bar_store import (
    NANOS_PER_MICRO,
    BarStore,
    UnknownSymbol,
    resampled,
)
from financelake.services.marketdata.live import MINUTE_NS, LiveBar
from financelake.services.marketdata.windows import window_width_ns

# Windows looked back through for the last closed one (a long weekend, a holiday week).
_LOOK_BACK_WINDOWS = 8


def settled_part(
    store: BarStore, symbol: str, interval: Interval, window_ns: int, held_since_ns: int | None
) -> tuple[LiveBar | None, int]:
    """(the bar combining the stored minutes of the window that starts at `window_ns` which
    start before the live view's oldest held minute `held_since_ns`, the time it covers
    until). With no held minute, every stored minute of the window counts."""
    end = window_ns + window_width_ns(interval)
    until = end if held_since_ns is None else min(max(held_since_ns, window_ns), end)
    try:
        minutes = store.bars(symbol, Interval.M1, window_ns, until)
    except UnknownSymbol:
        return None, window_ns
    if minutes.num_rows == 0:
        return None, window_ns if held_since_ns is None else until
    bar = _last_live_bar(resampled(minutes, interval, Interval.M1), symbol, interval)
    last_minute = _start_ns(minutes.slice(minutes.num_rows - 1))
    return bar, until if held_since_ns is not None else last_minute + MINUTE_NS


def last_closed(store: BarStore, symbol: str, interval: Interval, window_ns: int) -> LiveBar | None:
    """The stored bar of the last window before `window_ns` that has one, if recent."""
    since = window_ns - _LOOK_BACK_WINDOWS * window_width_ns(interval)
    try:
        bars = store.bars(symbol, interval, since, window_ns)
    except UnknownSymbol:
        return None
    if bars.num_rows == 0:
        return None
    return _last_live_bar(bars, symbol, interval)


def _start_ns(rows: pa.Table) -> int:
    return int(pc.cast(rows["start_time"], pa.int64())[0].as_py()) * NANOS_PER_MICRO


def _last_live_bar(bars: pa.Table, symbol: str, interval: Interval) -> LiveBar:
    """The last of `bars` (`bar_store.SERVED_COLUMNS`) as a LiveBar."""
    last = bars.slice(bars.num_rows - 1)
    row = last.to_pylist()[0]
    start = _start_ns(last)
    return LiveBar(
        symbol=symbol,
        interval=interval,
        start_time_ns=start,
        open=row["open"],
        high=row["high"],
        low=row["low"],
        close=row["close"],
        volume=row["volume"],
        vwap=row["vwap"],
        trade_count=row["trade_count"],
        first_time_ns=start,
        last_time_ns=start,
        source=row["source"],
        adjusted=row["adjusted"],
        revision=row["revision"],
    )
