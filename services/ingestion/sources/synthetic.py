"""The seeded synthetic market: FinanceLake's demo data and test data, trades and bars.

Prices follow `synthetic_model` (GBM with Merton jumps in trading time, overnight gaps, a
U-shaped intraday curve). Everything is a pure function of (options, symbol, time), so:

- asking for more or fewer symbols, or chunking differently, never changes a symbol's data;
- simulating [a, c) equals simulating [a, b) then [b, c), for trades and for bars; the live
  demo continues history with `TradeTrickle`, which is exactly that.

Trades: Poisson arrivals per minute (rate x smile), spread uniformly inside the minute,
priced on the minute's path (linear between its open and close plus a little noise, kept
inside the minute's high/low) on a 0.01 tick, sizes mostly lognormal round lots with some
odd lots, venues from a fixed US mix. `trade_id` is `{symbol}-{session YYYYMMDD}-{n}`,
n counting the session's trades from 0.

Bars come from the same minute path without generating trades (years of weekly bars stay
cheap): OHLC are the path's, `trade_count` is the same arrival count the trades use, and
volume and vwap are statistically consistent with the trades rather than their exact sum.
Minutes without trades have no bar. Wider bars aggregate 1m bars, so 5 x 1m == 5m:

- 5m..1h: tumbling windows aligned to the Unix epoch in UTC, like bars built from trades
  (an XNYS 1h bar starting 13:00 UTC holds 09:30-10:00 New York time in summer).
- 1d: starts at the session's open, in UTC (not local midnight), and covers the session.
- 1wk: the sessions of one Monday-to-Sunday week; starts at the first of those opens.

A bar is returned when its start lies in [start_ns, end_ns) and always covers its whole
window, which is what makes bar windows split cleanly.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from financelake.services import errors
from financelake.services.ingestion.records import (
    Bars,
    BarSource,
    Float64s,
    Int64s,
    Interval,
    Trades,
)
from financelake.services.ingestion.sources.synthetic_model import (
    MinutePath,
    SyntheticOptions,
    minute_path,
    trade_stream,
)
from financelake.services.ingestion.sources.trading_calendar import (
    NANOS_PER_MINUTE,
    TradingCalendar,
    trading_calendar,
)

__all__ = [
    "MAX_ROWS_PER_CHUNK",
    "VENUES",
    "InvalidTimeRange",
    "SyntheticOptions",
    "TradeTrickle",
    "simulate_bars",
    "simulate_trades",
]

MAX_ROWS_PER_CHUNK = 10_000
"""Most trades (or bars) of one symbol in one yielded chunk."""
TRADE_BLOCK_MINUTES = 15
"""Trading minutes per seeded block of trades: a short window draws at most two blocks."""
TICK = 0.01
ODD_LOT_SHARE = 0.15
LOT_LOG_SD = 0.8
"""Round-lot count per trade is lognormal(0, LOT_LOG_SD) x the size curve, at least 1."""
PRICE_NOISE = 0.25
"""Trade price noise around the minute's path, in minute sds (bid/ask bounce)."""
VENUES = ("XNAS", "XNYS", "ARCX", "BATS", "EDGX", "MEMX", "IEXG", "BATY", "EDGA", "FINN")
"""Exchange MICs; FINN is the FINRA/Nasdaq TRF, where off-exchange prints are reported."""
VENUE_SHARE = np.array([0.20, 0.12, 0.10, 0.08, 0.07, 0.05, 0.03, 0.03, 0.02, 0.30])
_VENUE_CDF = np.cumsum(VENUE_SHARE / VENUE_SHARE.sum())
_MEAN_ODD_LOT = 50.0


class InvalidTimeRange(errors.InvalidInput):
    """The end of a requested range lies before its start."""

    default_reason = "INVALID_TIME_RANGE"


def simulate_trades(
    symbols: Sequence[str], start_ns: int, end_ns: int, options: SyntheticOptions
) -> Iterator[Trades]:
    """Trades with event time in [start_ns, end_ns), session by session, then symbol by symbol.

    Each chunk holds one symbol's trades of one session, ordered by time, at most
    `MAX_ROWS_PER_CHUNK` rows. Nothing is yielded outside trading hours.
    """
    calendar = _checked(options, start_ns, end_ns)
    for session in calendar.sessions_overlapping(start_ns, end_ns):
        for symbol in symbols:
            trades = _session_trades(options, symbol, calendar, session, start_ns, end_ns)
            yield from _split_trades(trades)


def simulate_bars(
    symbols: Sequence[str],
    interval: Interval,
    start_ns: int,
    end_ns: int,
    options: SyntheticOptions,
) -> Iterator[Bars]:
    """Bars starting in [start_ns, end_ns), symbol by symbol, at most `MAX_ROWS_PER_CHUNK` each."""
    calendar = _checked(options, start_ns, end_ns)
    sessions = _bar_sessions(calendar, interval, start_ns, end_ns)
    for symbol in symbols:
        for batch in _week_batches(calendar, sessions):
            minutes = _minute_bars(options, symbol, calendar, batch)
            bars = _aggregate(symbol, interval, calendar, minutes, start_ns, end_ns)
            yield from _split_bars(bars)


class TradeTrickle:
    """The live demo feed: each `advance(now)` simulates the trades since the previous call.

    Pieces concatenate to exactly one `simulate_trades` call over the whole span, so the
    live feed continues imported history without gaps or duplicates. The caller owns the
    clock and the waiting (an asyncio timer in the server); this class never sleeps.
    """

    def __init__(self, symbols: Sequence[str], options: SyntheticOptions, start_ns: int) -> None:
        self._symbols = tuple(symbols)
        self._options = options
        self._next_ns = start_ns

    @property
    def next_start_ns(self) -> int:
        """Where the next window starts (the end of everything returned so far)."""
        return self._next_ns

    def advance(self, now_ns: int) -> list[Trades]:
        """Trades in [previous now, now_ns); empty when the clock did not move forward."""
        if now_ns <= self._next_ns:
            return []
        chunks = list(simulate_trades(self._symbols, self._next_ns, now_ns, self._options))
        self._next_ns = now_ns
        return chunks


def _checked(options: SyntheticOptions, start_ns: int, end_ns: int) -> TradingCalendar:
    if end_ns < start_ns:
        raise InvalidTimeRange(
            "end time is before start time",
            violations=[errors.FieldViolation("end_time", "must not be before start_time")],
        )
    calendar = trading_calendar(options.calendar)
    calendar.check_covers(start_ns, end_ns)
    return calendar


# ---- trades -------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _TradeDraws:
    """The raw random numbers of some blocks of trades, in draw order."""

    offset_ns: Int64s
    noise: Float64s
    lots: Float64s
    odd_uniform: Float64s
    odd_size: Int64s
    venue_uniform: Float64s


def _session_trades(
    options: SyntheticOptions,
    symbol: str,
    calendar: TradingCalendar,
    session: int,
    start_ns: int,
    end_ns: int,
) -> Trades:
    path = minute_path(options, symbol, session)
    day = int(calendar.day[session])
    first, stop = _minutes_overlapping(path.start_ns, start_ns, end_ns)
    block_first = first // TRADE_BLOCK_MINUTES
    block_stop = -(-stop // TRADE_BLOCK_MINUTES)
    minute_lo = block_first * TRADE_BLOCK_MINUTES
    minute_hi = min(block_stop * TRADE_BLOCK_MINUTES, len(path.start_ns))
    draws = _draw_blocks(options, symbol, day, path.trade_count, range(block_first, block_stop))
    minute = np.repeat(np.arange(minute_lo, minute_hi), path.trade_count[minute_lo:minute_hi])
    # The draws are i.i.d., so sorting the times alone (not the other columns with them)
    # orders the trades without changing their distribution.
    time_ns = np.sort(path.start_ns[minute] + draws.offset_ns)
    sequence = int(path.trade_count[:minute_lo].sum()) + np.arange(len(time_ns))
    keep = (time_ns >= start_ns) & (time_ns < end_ns)
    minute, time_ns, sequence = minute[keep], time_ns[keep], sequence[keep]
    prefix = f"{symbol}-{np.datetime64(day, 'D').astype(object):%Y%m%d}-"
    return Trades(
        symbol=symbol,
        event_time_ns=time_ns,
        price=_trade_prices(path, minute, time_ns, draws.noise[keep]),
        size=_trade_sizes(path, minute, draws, keep),
        trade_id=[f"{prefix}{n}" for n in sequence.tolist()],
        exchange=_venues(draws.venue_uniform[keep]),
    )


def _minutes_overlapping(start: Int64s, start_ns: int, end_ns: int) -> tuple[int, int]:
    first = int(np.searchsorted(start, start_ns - NANOS_PER_MINUTE, side="right"))
    stop = int(np.searchsorted(start, end_ns, side="left"))
    return first, max(first, stop)


def _draw_blocks(
    options: SyntheticOptions, symbol: str, day: int, trade_count: Int64s, blocks: range
) -> _TradeDraws:
    parts: list[tuple[Int64s, Float64s, Float64s, Float64s, Int64s, Float64s]] = []
    for block in blocks:
        size = int(
            trade_count[block * TRADE_BLOCK_MINUTES : (block + 1) * TRADE_BLOCK_MINUTES].sum()
        )
        rng = trade_stream(options, symbol, day, block)
        # Draw order is part of the format: changing it changes every trade.
        parts.append(
            (
                rng.integers(0, NANOS_PER_MINUTE, size, dtype=np.int64),
                rng.standard_normal(size),
                rng.lognormal(0.0, LOT_LOG_SD, size),
                rng.random(size),
                rng.integers(1, 100, size, dtype=np.int64),
                rng.random(size),
            )
        )
    columns = list(zip(*parts, strict=True)) if parts else [()] * 6
    empty_int, empty_float = np.zeros(0, np.int64), np.zeros(0)
    return _TradeDraws(
        offset_ns=np.concatenate((empty_int, *columns[0])),
        noise=np.concatenate((empty_float, *columns[1])),
        lots=np.concatenate((empty_float, *columns[2])),
        odd_uniform=np.concatenate((empty_float, *columns[3])),
        odd_size=np.concatenate((empty_int, *columns[4])),
        venue_uniform=np.concatenate((empty_float, *columns[5])),
    )


def _trade_prices(path: MinutePath, minute: Int64s, time_ns: Int64s, noise: Float64s) -> Float64s:
    fraction = (time_ns - path.start_ns[minute]) / NANOS_PER_MINUTE
    log_open = path.log_open[minute]
    log_price = (
        log_open
        + (path.log_close[minute] - log_open) * fraction
        + noise * PRICE_NOISE * path.sd[minute]
    )
    # Clipping to the minute's rounded high/low keeps every trade inside its 1m bar.
    price = _to_tick(np.exp(log_price))
    clipped: Float64s = np.clip(
        price, _to_tick(np.exp(path.log_low[minute])), _to_tick(np.exp(path.log_high[minute]))
    )
    return clipped


def _trade_sizes(
    path: MinutePath, minute: Int64s, draws: _TradeDraws, keep: npt.NDArray[np.bool_]
) -> Float64s:
    round_lots = np.maximum(1.0, np.round(draws.lots[keep] * path.size_factor[minute])) * 100
    odd = draws.odd_uniform[keep] < ODD_LOT_SHARE
    sizes: Float64s = np.where(odd, draws.odd_size[keep].astype(np.float64), round_lots)
    return sizes


def _venues(uniform: Float64s) -> list[str]:
    index = np.minimum(np.searchsorted(_VENUE_CDF, uniform, side="right"), len(VENUES) - 1)
    # map() over a tuple shares the interned venue strings instead of building new ones.
    return list(map(VENUES.__getitem__, index.tolist()))


def _to_tick(price: Float64s) -> Float64s:
    ticked: Float64s = np.maximum(np.round(price / TICK) * TICK, TICK)
    return ticked


def _split_trades(trades: Trades) -> Iterator[Trades]:
    for lo in range(0, len(trades), MAX_ROWS_PER_CHUNK):
        yield trades.rows(lo, lo + MAX_ROWS_PER_CHUNK)


# ---- bars ---------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _MinuteBars:
    """1m bars of some whole sessions (minutes with trades only), plus each one's session."""

    session: Int64s
    start_ns: Int64s
    open: Float64s
    high: Float64s
    low: Float64s
    close: Float64s
    volume: Float64s
    vwap: Float64s
    trade_count: Int64s


def _expected_trade_size(size_factor: Float64s) -> Float64s:
    round_lot = 100 * np.maximum(1.0, np.exp(LOT_LOG_SD**2 / 2) * size_factor)
    expected: Float64s = ODD_LOT_SHARE * _MEAN_ODD_LOT + (1 - ODD_LOT_SHARE) * round_lot
    return expected


def _session_minute_bars(options: SyntheticOptions, symbol: str, session: int) -> _MinuteBars:
    path = minute_path(options, symbol, session)
    traded = path.trade_count > 0
    count = path.trade_count[traded]
    expected = count * _expected_trade_size(path.size_factor[traded])
    volume = np.maximum(count, np.round(expected * path.volume_noise[traded]))
    high, low = _to_tick(np.exp(path.log_high[traded])), _to_tick(np.exp(path.log_low[traded]))
    open_, close = _to_tick(np.exp(path.log_open[traded])), _to_tick(np.exp(path.log_close[traded]))
    return _MinuteBars(
        session=np.full(len(count), session, dtype=np.int64),
        start_ns=path.start_ns[traded],
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=volume.astype(np.float64),
        # Between low and high by construction; real vwap is unknowable without trades.
        vwap=(open_ + high + low + close) / 4,
        trade_count=count,
    )


def _minute_bars(
    options: SyntheticOptions, symbol: str, calendar: TradingCalendar, sessions: range
) -> _MinuteBars:
    parts = [_session_minute_bars(options, symbol, session) for session in sessions]
    columns = {
        field.name: np.concatenate([getattr(part, field.name) for part in parts])
        for field in fields(_MinuteBars)
    }
    return _MinuteBars(**columns)


def _select(minutes: _MinuteBars, mask: npt.NDArray[np.bool_]) -> _MinuteBars:
    return _MinuteBars(
        **{field.name: getattr(minutes, field.name)[mask] for field in fields(_MinuteBars)}
    )


def _bar_sessions(
    calendar: TradingCalendar, interval: Interval, start_ns: int, end_ns: int
) -> range:
    if interval is Interval.D1:
        return _sessions_opening(calendar.open_ns, start_ns, end_ns)
    if interval is Interval.WK1:
        return _sessions_opening(calendar.open_ns[calendar.week_first], start_ns, end_ns)
    width = interval.seconds * 1_000_000_000
    # Bars starting in [start, end) hold exactly the minutes in [ceil(start), ceil(end)).
    return calendar.sessions_overlapping(-(-start_ns // width) * width, -(-end_ns // width) * width)


def _sessions_opening(bar_start_ns: Int64s, start_ns: int, end_ns: int) -> range:
    first = int(np.searchsorted(bar_start_ns, start_ns, side="left"))
    stop = int(np.searchsorted(bar_start_ns, end_ns, side="left"))
    return range(first, stop)


def _week_batches(calendar: TradingCalendar, sessions: range, size: int = 64) -> Iterator[range]:
    # Batches end on week boundaries so no bar (weekly ones included) spans two batches,
    # which bounds memory when years of bars are asked for.
    lo = sessions.start
    while lo < sessions.stop:
        hi = min(lo + size, sessions.stop)
        while hi < sessions.stop and calendar.week_first[hi] == calendar.week_first[hi - 1]:
            hi += 1
        yield range(lo, hi)
        lo = hi


def _bar_keys(interval: Interval, calendar: TradingCalendar, minutes: _MinuteBars) -> Int64s:
    if interval is Interval.D1:
        return calendar.open_ns[minutes.session]
    if interval is Interval.WK1:
        return calendar.open_ns[calendar.week_first[minutes.session]]
    width = interval.seconds * 1_000_000_000
    keys: Int64s = minutes.start_ns // width * width
    return keys


def _aggregate(
    symbol: str,
    interval: Interval,
    calendar: TradingCalendar,
    minutes: _MinuteBars,
    start_ns: int,
    end_ns: int,
) -> Bars:
    keys = _bar_keys(interval, calendar, minutes)
    wanted = (keys >= start_ns) & (keys < end_ns)
    keys, minutes = keys[wanted], _select(minutes, wanted)
    first = np.flatnonzero(np.diff(keys, prepend=keys[:1] - 1))
    last = np.append(first[1:], len(keys)) - 1
    volume, high, low = (
        _reduce(np.add, minutes.volume, first),
        _reduce(np.maximum, minutes.high, first),
        _reduce(np.minimum, minutes.low, first),
    )
    notional = _reduce(np.add, minutes.volume * minutes.vwap, first)
    return Bars(
        symbol=symbol,
        interval=interval,
        source=BarSource.SYNTHETIC,
        start_time_ns=keys[first],
        open=minutes.open[first],
        high=high,
        low=low,
        close=minutes.close[last],
        volume=volume,
        # Every minute with a bar has volume >= its trade count >= 1. Float rounding may
        # nudge the ratio a hair outside [low, high]; the clip puts it back.
        vwap=np.clip(notional / np.maximum(volume, 1.0), low, high),
        trade_count=np.add.reduceat(minutes.trade_count, first) if len(first) else first,
        adjusted=False,
    )


def _reduce(ufunc: np.ufunc, column: Float64s, first: Int64s) -> Float64s:
    # reduceat refuses empty index arrays; an empty window has no bars.
    reduced: Float64s = ufunc.reduceat(column, first) if len(first) else column[:0]
    return reduced


def _split_bars(bars: Bars) -> Iterator[Bars]:
    for lo in range(0, len(bars), MAX_ROWS_PER_CHUNK):
        yield bars.rows(lo, lo + MAX_ROWS_PER_CHUNK)
