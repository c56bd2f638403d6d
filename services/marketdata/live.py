"""What the market-data service keeps in memory from the live topics: per symbol the latest
trade, the 1-minute bar in progress, and the last closed bar per interval.

Plain Python and numpy, no Kafka: the server feeds it decoded records (`TickColumns` from the
ticks topic, bar columns from the bars topic), and quotes and live bars are answered from it
without touching the lake.

The bar in progress follows the stream's bar definition (`stream.bars`): the window of the
newest trade's minute; a trade for an older minute (late, or out of order across batches) does
not reopen it — the stream's own bar, with its lateness policy, arrives on the bars topic.
Within the minute: open = the first trade by event time, close = the last, high/low/volume/
trade count as usual, VWAP = sum(price x size) / volume (the mean price when volume is 0).

Coarser live bars combine 1-minute bars. The closed minutes of the last two hours are held
one by one (late trades can still amend them); a daily or weekly window is longer, so its
older part is one "settled" bar per (symbol, interval): seeded from the lake by the server
(the window's minutes before the held ones) and extended with each minute as it leaves the
held two hours, so a day or week costs O(1) memory per symbol whatever its length.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from financelake.services.ingestion.records import NANOS_PER_SECOND, Interval
from financelake.services.marketdata.windows import window_start, window_width_ns
from financelake.stream.tick_columns import TickColumns

MINUTE_NS = 60 * NANOS_PER_SECOND
#: Intervals whose windows outlast the held minutes: their older part is a settled bar.
LONG_INTERVALS = (Interval.D1, Interval.WK1)
# Closed 1-minute bars kept per symbol: the current and the previous hour, the most an
# intraday live interval needs (a window and the one that just closed).
_RECENT_MINUTES = 2 * 60


@dataclass(frozen=True, slots=True)
class LiveBar:
    """A bar as the live view holds it (in progress or closed)."""

    symbol: str
    interval: Interval
    start_time_ns: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    vwap: float
    trade_count: int
    first_time_ns: int
    """Event time of the trade that set `open` (in-progress bars)."""
    last_time_ns: int
    """Event time of the trade that set `close` (in-progress bars)."""
    source: str = "trades"
    adjusted: bool = False
    revision: int = 0


@dataclass(frozen=True, slots=True)
class LastTrade:
    """The newest trade of a symbol by event time."""

    price: float
    size: float
    time_ns: int


@dataclass(frozen=True, slots=True)
class LiveQuote:
    """GetQuote's answer: the latest trade, the bar in progress, how old the trade is."""

    symbol: str
    trade: LastTrade
    current_bar: LiveBar | None
    staleness_ns: int


@dataclass(slots=True)
class _Settled:
    """The part of a daily or weekly window older than the held minutes: `bar` combines the
    window's minutes that start before `covered_until_ns` (None: there were none)."""

    window_start_ns: int
    covered_until_ns: int
    bar: LiveBar | None


class LiveMarket:
    """Latest trades, bars in progress and last closed bars of every symbol seen."""

    def __init__(self) -> None:
        self._trades: dict[str, LastTrade] = {}
        self._current: dict[str, LiveBar] = {}
        self._closed: dict[tuple[str, Interval], LiveBar] = {}
        self._recent: dict[str, dict[int, LiveBar]] = {}
        self._settled: dict[tuple[str, Interval], _Settled] = {}

    @property
    def symbols(self) -> list[str]:
        """Every symbol with a live trade, sorted."""
        return sorted(self._trades)

    def on_trades(self, batch: TickColumns) -> LiveBar | None:
        """Apply one record's trades; the symbol's bar in progress if they changed it."""
        if not len(batch):
            return None
        times = batch.event_time_ns
        newest = int(times.max())
        symbol = batch.symbol
        last = self._trades.get(symbol)
        if last is None or newest >= last.time_ns:
            # Ties on time: the later position in the batch is the later trade.
            at = len(times) - 1 - int(np.argmax(times[::-1]))
            self._trades[symbol] = LastTrade(float(batch.price[at]), float(batch.size[at]), newest)
        window = newest - newest % MINUTE_NS
        current = self._current.get(symbol)
        if current is not None and current.start_time_ns > window:
            return None  # the whole batch is older than the bar in progress
        in_window = times >= window
        if current is not None and current.start_time_ns < window:
            current = None  # a new minute started
        updated = _merge(
            symbol, window, current, times[in_window], batch.price[in_window], batch.size[in_window]
        )
        self._current[symbol] = updated
        return updated

    def on_bar(self, bar: LiveBar) -> None:
        """Remember a closed bar (from the bars topic) if it is the newest of its series."""
        key = (bar.symbol, bar.interval)
        held = self._closed.get(key)
        if held is None or (bar.start_time_ns, bar.revision) >= (
            held.start_time_ns,
            held.revision,
        ):
            self._closed[key] = bar
        if bar.interval is Interval.M1 and bar.source == "trades":
            recent = self._recent.setdefault(bar.symbol, {})
            kept = recent.get(bar.start_time_ns)
            if kept is None or bar.revision >= kept.revision:
                recent[bar.start_time_ns] = bar
            horizon = max(recent) - _RECENT_MINUTES * MINUTE_NS
            for start in sorted(s for s in recent if s <= horizon):
                self._settle(recent.pop(start))

    def _settle(self, minute: LiveBar) -> None:
        """Fold a minute leaving the held ones into the settled part of its long windows
        (in time order: minutes leave oldest first). A minute of a later window starts
        that window: the live feed has seen all of it since the previous one was seeded."""
        for interval in LONG_INTERVALS:
            settled = self._settled.get((minute.symbol, interval))
            if settled is None:
                continue  # nobody watches it: a watcher seeds it from the lake
            window = window_start(minute.start_time_ns, interval)
            if window > settled.window_start_ns:
                settled = _Settled(window, window, None)
                self._settled[(minute.symbol, interval)] = settled
            if window < settled.window_start_ns or minute.start_time_ns < settled.covered_until_ns:
                continue
            parts = [minute] if settled.bar is None else [settled.bar, minute]
            settled.bar = combine(parts, interval, window)
            settled.covered_until_ns = minute.start_time_ns + MINUTE_NS

    def held_since(self, symbol: str) -> int | None:
        """Start of the oldest closed minute held for `symbol`; None when none is."""
        recent = self._recent.get(symbol)
        return min(recent) if recent else None

    def newest_minute(self, symbol: str) -> int | None:
        """Start of the symbol's newest minute seen live (in progress or closed)."""
        starts = [
            bar.start_time_ns
            for bar in (self._current.get(symbol), self._closed.get((symbol, Interval.M1)))
            if bar is not None
        ]
        return max(starts) if starts else None

    def seeded_window(self, symbol: str, interval: Interval) -> int | None:
        """Start of the long window whose settled part is held for (symbol, interval)."""
        settled = self._settled.get((symbol, interval))
        return None if settled is None else settled.window_start_ns

    def seed(
        self,
        symbol: str,
        interval: Interval,
        window_start_ns: int,
        lake_bar: LiveBar | None,
        covered_until_ns: int,
    ) -> bool:
        """Set the settled part of a long window: `lake_bar` combines its minutes before
        `covered_until_ns`, read from the lake. False (nothing set) when minutes after that
        have left the held ones meanwhile, so the read has a gap: read again."""
        held = self.held_since(symbol)
        if held is not None and held > covered_until_ns:
            return False
        current = self._settled.get((symbol, interval))
        if current is None or current.window_start_ns < window_start_ns:
            self._settled[(symbol, interval)] = _Settled(
                window_start_ns, covered_until_ns, lake_bar
            )
        return True

    def window_bar(
        self, symbol: str, interval: Interval, window_start_ns: int, *, with_current: bool
    ) -> LiveBar | None:
        """The bar of one window of a live interval, from the settled part of a long window,
        the closed 1-minute bars held (and the bar in progress when `with_current`); None if
        none of them falls in it."""
        end = window_start_ns + window_width_ns(interval)
        parts: list[LiveBar] = []
        since = window_start_ns
        settled = self._settled.get((symbol, interval))
        if settled is not None and settled.window_start_ns == window_start_ns:
            since = settled.covered_until_ns
            if settled.bar is not None:
                parts.append(settled.bar)
        held = [
            bar
            for start, bar in sorted(self._recent.get(symbol, {}).items())
            if since <= start < end
        ]
        parts += held
        current = self._current.get(symbol)
        closed_starts = {bar.start_time_ns for bar in held}
        if (
            with_current
            and current is not None
            and since <= current.start_time_ns < end
            and current.start_time_ns not in closed_starts  # its closed bar supersedes it
        ):
            parts.append(current)
        if not parts:
            return None
        return combine(parts, interval, window_start_ns)

    def last_closed(self, symbol: str, interval: Interval) -> LiveBar | None:
        """The newest closed bar of a series, if one was seen."""
        return self._closed.get((symbol, interval))

    def quote(self, symbol: str, now_ns: int) -> LiveQuote | None:
        """The symbol's quote, or None if no live trade was seen."""
        trade = self._trades.get(symbol)
        if trade is None:
            return None
        return LiveQuote(
            symbol=symbol,
            trade=trade,
            current_bar=self._current.get(symbol),
            staleness_ns=max(0, now_ns - trade.time_ns),
        )


def _merge(
    symbol: str,
    window: int,
    current: LiveBar | None,
    times: np.ndarray,
    prices: np.ndarray,
    sizes: np.ndarray,
) -> LiveBar:
    """The bar in progress after adding trades of its own minute (vectorised)."""
    first = int(np.argmin(times))  # first occurrence: the earlier trade wins ties
    last = len(times) - 1 - int(np.argmax(times[::-1]))
    volume = float(sizes.sum())
    notional = float((prices * sizes).sum())
    price_sum = float(prices.sum())
    count = len(times)
    batch = LiveBar(
        symbol=symbol,
        interval=Interval.M1,
        start_time_ns=window,
        open=float(prices[first]),
        high=float(prices.max()),
        low=float(prices.min()),
        close=float(prices[last]),
        volume=volume,
        vwap=notional / volume if volume > 0 else price_sum / count,
        trade_count=count,
        first_time_ns=int(times[first]),
        last_time_ns=int(times[last]),
    )
    if current is None:
        return batch
    total_volume = current.volume + volume
    if total_volume > 0:
        vwap = (current.vwap * current.volume + notional) / total_volume
    else:
        vwap = (current.vwap * current.trade_count + price_sum) / (current.trade_count + count)
    earlier = batch.first_time_ns < current.first_time_ns
    later = batch.last_time_ns >= current.last_time_ns
    return replace(
        current,
        open=batch.open if earlier else current.open,
        first_time_ns=batch.first_time_ns if earlier else current.first_time_ns,
        high=max(current.high, batch.high),
        low=min(current.low, batch.low),
        close=batch.close if later else current.close,
        last_time_ns=batch.last_time_ns if later else current.last_time_ns,
        volume=total_volume,
        vwap=vwap,
        trade_count=current.trade_count + count,
    )


def combine(parts: list[LiveBar], interval: Interval, start_ns: int) -> LiveBar:
    """One bar of `interval` from consecutive finer bars in time order (the resampling rules
    of GetBars: first open, max high, min low, last close, summed volume and count,
    volume-weighted VWAP, the mean VWAP when there is no volume)."""
    volume = sum(p.volume for p in parts)
    vwap = (
        sum(p.vwap * p.volume for p in parts) / volume
        if volume > 0
        else sum(p.vwap for p in parts) / len(parts)
    )
    return LiveBar(
        symbol=parts[0].symbol,
        interval=interval,
        start_time_ns=start_ns,
        open=parts[0].open,
        high=max(p.high for p in parts),
        low=min(p.low for p in parts),
        close=parts[-1].close,
        volume=volume,
        vwap=vwap,
        trade_count=sum(p.trade_count for p in parts),
        first_time_ns=parts[0].first_time_ns,
        last_time_ns=parts[-1].last_time_ns,
        revision=max(p.revision for p in parts),
    )


class WindowTracker:
    """One watcher's view of a coarser live interval: 1-minute updates in, updates of the
    interval's bars out. A window is in progress while its minutes are; it closes when its
    last minute's bar closes, or when a closed minute of a later window shows that its last
    minute had no trades; a late trade amending one of its minutes re-emits it closed with
    revision + 1."""

    def __init__(self, market: LiveMarket, interval: Interval) -> None:
        self._market = market
        self._interval = interval
        self._width = window_width_ns(interval)
        self._open: dict[str, set[int]] = {}
        self._closed: dict[str, dict[int, int]] = {}
        """Per symbol, the revision last emitted for each recently closed window."""

    def on_minute(self, bar: LiveBar, closed: bool) -> list[tuple[LiveBar, bool]]:
        """The interval's updates caused by one 1-minute update (in progress or closed)."""
        symbol, window = bar.symbol, window_start(bar.start_time_ns, self._interval)
        opened = self._open.setdefault(symbol, set())
        done = self._closed.setdefault(symbol, {})
        out: list[tuple[LiveBar, bool]] = []
        if not closed:
            if window not in done:
                opened.add(window)
                self._emit(out, symbol, window, closed=False, revision=0)
            return out
        for earlier in sorted(w for w in opened if w < window):
            self._close(out, symbol, earlier)
        if window in done:
            self._close(out, symbol, window)  # an amendment
        elif bar.start_time_ns + MINUTE_NS == window + self._width:
            self._close(out, symbol, window)
        else:
            opened.add(window)
            self._emit(out, symbol, window, closed=False, revision=0)
        return out

    def _close(self, out: list[tuple[LiveBar, bool]], symbol: str, window: int) -> None:
        self._open[symbol].discard(window)
        done = self._closed[symbol]
        revision = done[window] + 1 if window in done else 0
        done[window] = revision
        for old in [w for w in done if w < window - self._width]:
            del done[old]  # amendments reach back one window at most (60 s retention)
        self._emit(out, symbol, window, closed=True, revision=revision)

    def _emit(
        self,
        out: list[tuple[LiveBar, bool]],
        symbol: str,
        window: int,
        *,
        closed: bool,
        revision: int,
    ) -> None:
        bar = self._market.window_bar(symbol, self._interval, window, with_current=not closed)
        if bar is not None:
            out.append((replace(bar, revision=revision), closed))
