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
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from financelake.services.ingestion.records import NANOS_PER_SECOND, Interval
from financelake.stream.tick_columns import TickColumns

MINUTE_NS = 60 * NANOS_PER_SECOND


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


class LiveMarket:
    """Latest trades, bars in progress and last closed bars of every symbol seen."""

    def __init__(self) -> None:
        self._trades: dict[str, LastTrade] = {}
        self._current: dict[str, LiveBar] = {}
        self._closed: dict[tuple[str, Interval], LiveBar] = {}

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
