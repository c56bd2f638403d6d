"""The market-data service's live view: quotes and the bar in progress from trade records."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from financelake.services.ingestion.records import Interval
from financelake.services.marketdata.live import (
    MINUTE_NS,
    LiveBar,
    LiveMarket,
    WindowTracker,
    combine,
)
from financelake.stream.bars import aggregate_bars
from financelake.stream.tick_columns import TickColumns

T0 = 1_767_000_000 * 1_000_000_000 // MINUTE_NS * MINUTE_NS


def trades(symbol: str, times: list[int], prices: list[float], sizes: list[float]) -> TickColumns:
    return TickColumns(
        symbol=symbol,
        event_time_ns=np.asarray(times, np.int64),
        price=np.asarray(prices, np.float64),
        size=np.asarray(sizes, np.float64),
        exchanges=[],
        trade_ids=[str(i) for i in range(len(times))],
    )


def test_the_bar_in_progress_equals_the_streams_bar_of_the_same_trades() -> None:
    rng = np.random.default_rng(5)
    times = np.sort(rng.integers(T0, T0 + MINUTE_NS, 300))
    prices = rng.uniform(99, 101, 300)
    sizes = rng.integers(0, 50, 300).astype(np.float64)
    market = LiveMarket()
    order = rng.permutation(300)  # batches arrive in any order within the minute
    for chunk in np.array_split(order, 7):
        market.on_trades(
            trades("AAPL", times[chunk].tolist(), prices[chunk].tolist(), sizes[chunk].tolist())
        )
    quote = market.quote("AAPL", now_ns=int(times.max()) + 5)
    assert quote is not None
    bar = quote.current_bar
    assert bar is not None
    # The stream's definition breaks time ties by arrival; the test's times are distinct.
    reference = aggregate_bars(np.full(300, "AAPL"), times, prices, sizes)
    assert (bar.start_time_ns, bar.trade_count) == (T0, 300)
    assert bar.open == reference.open[0]
    assert bar.close == reference.close[0]
    assert (bar.high, bar.low) == (reference.high[0], reference.low[0])
    assert bar.volume == pytest.approx(reference.volume[0], rel=1e-12)
    assert bar.vwap == pytest.approx(reference.vwap[0], rel=1e-12)
    assert quote.trade.price == prices[np.argmax(times)]
    assert quote.staleness_ns == 5


def test_a_new_minute_starts_a_new_bar_and_late_trades_do_not_reopen_the_old_one() -> None:
    market = LiveMarket()
    market.on_trades(trades("MSFT", [T0 + 1, T0 + 2], [10.0, 11.0], [1.0, 1.0]))
    rolled = market.on_trades(trades("MSFT", [T0 + MINUTE_NS + 3], [12.0], [2.0]))
    assert rolled is not None
    assert (rolled.start_time_ns, rolled.open, rolled.trade_count) == (T0 + MINUTE_NS, 12.0, 1)
    assert market.on_trades(trades("MSFT", [T0 + 10], [1.0], [1.0])) is None
    quote = market.quote("MSFT", now_ns=T0 + MINUTE_NS + 3)
    assert quote is not None
    assert quote.trade.price == 12.0  # the late trade is not the latest
    assert quote.current_bar == rolled


def test_zero_volume_trades_give_the_mean_price_as_vwap() -> None:
    market = LiveMarket()
    bar = market.on_trades(trades("X", [T0, T0 + 1], [10.0, 20.0], [0.0, 0.0]))
    assert bar is not None
    assert bar.vwap == 15.0


def test_unknown_symbols_have_no_quote_and_the_newest_closed_bar_is_kept() -> None:
    market = LiveMarket()
    assert market.quote("NOPE", now_ns=T0) is None

    def closed(start: int, revision: int, close: float) -> LiveBar:
        return LiveBar(
            "SPY", Interval.M1, start, 1, 2, 0.5, close, 10, 1.5, 3, 0, 0, revision=revision
        )

    market.on_bar(closed(T0 + MINUTE_NS, 0, 1.0))
    market.on_bar(closed(T0, 0, 2.0))  # older: ignored
    assert market.last_closed("SPY", Interval.M1) == closed(T0 + MINUTE_NS, 0, 1.0)
    market.on_bar(closed(T0 + MINUTE_NS, 1, 3.0))  # an amendment replaces it
    amended = market.last_closed("SPY", Interval.M1)
    assert amended is not None
    assert amended.close == 3.0


def minute(symbol: str, start: int, close: float, revision: int = 0) -> LiveBar:
    return LiveBar(
        symbol,
        Interval.M1,
        start,
        close - 1,
        close + 1,
        close - 2,
        close,
        10.0,
        close,
        4,
        start,
        start,
        revision=revision,
    )


def test_five_minute_bars_build_from_minutes_and_close_with_their_last_minute() -> None:
    market = LiveMarket()
    tracker = WindowTracker(market, Interval.M5)
    updates: list[tuple[LiveBar, bool]] = []
    for m in range(7):  # minutes 0-6: window 0 complete, window 5 in progress
        current = market.on_trades(trades("SPY", [T0 + m * MINUTE_NS + 1], [100.0 + m], [10.0]))
        assert current is not None
        updates += tracker.on_minute(current, False)
        if m >= 1:  # the previous minute closes after the grace, once this one started
            closed = minute("SPY", T0 + (m - 1) * MINUTE_NS, 100.0 + m - 1)
            market.on_bar(closed)
            updates += tracker.on_minute(closed, True)
    finals = [bar for bar, closed in updates if closed]
    assert [b.start_time_ns for b in finals] == [T0]
    first = finals[0]
    assert (first.interval, first.open, first.close, first.trade_count) == (
        Interval.M5,
        99.0,
        104.0,
        20,
    )
    assert (first.high, first.low, first.volume) == (105.0, 98.0, 50.0)
    in_progress = [bar for bar, closed in updates if not closed]
    assert in_progress[-1].start_time_ns == T0 + 5 * MINUTE_NS
    # Window 5 so far: minute 5 closed, minute 6 in progress (its trade, not a closed bar).
    assert (in_progress[-1].open, in_progress[-1].close, in_progress[-1].trade_count) == (
        104.0,
        106.0,
        5,
    )

    # A late trade amends minute 4: window 0 is emitted closed again, revision 1.
    amended = minute("SPY", T0 + 4 * MINUTE_NS, 150.0, revision=1)
    market.on_bar(amended)
    again = tracker.on_minute(amended, True)
    assert [(b.start_time_ns, closed, b.revision, b.close) for b, closed in again] == [
        (T0, True, 1, 150.0)
    ]


def test_a_window_whose_last_minute_had_no_trades_closes_with_the_next_closed_minute() -> None:
    market = LiveMarket()
    tracker = WindowTracker(market, Interval.M5)
    for m in (0, 1):
        bar = minute("QQQ", T0 + m * MINUTE_NS, 10.0 + m)
        market.on_bar(bar)
        assert all(not closed for _, closed in tracker.on_minute(bar, True))
    later = minute("QQQ", T0 + 6 * MINUTE_NS, 20.0)
    market.on_bar(later)
    out = tracker.on_minute(later, True)
    assert [(b.start_time_ns, closed) for b, closed in out] == [
        (T0, True),
        (T0 + 5 * MINUTE_NS, False),
    ]
    assert out[0][0].close == 11.0


DAY_NS = 86_400 * 10**9


def test_a_live_day_combines_the_lake_part_the_minutes_that_left_and_the_held_ones() -> None:
    day = T0 - T0 % DAY_NS
    minutes = [minute("IBM", day + m * MINUTE_NS, 100.0 + m % 17) for m in range(600)]
    market = LiveMarket()
    # The lake holds the first 300 minutes; the live feed brings the next 300 (10:00-15:00),
    # so 180 of them leave the held two hours and fold into the settled part.
    lake = combine(minutes[:300], Interval.D1, day)
    assert market.seed("IBM", Interval.D1, day, lake, day + 300 * MINUTE_NS)
    for bar in minutes[300:]:
        market.on_bar(bar)

    assert market.held_since("IBM") == day + 480 * MINUTE_NS
    live = market.window_bar("IBM", Interval.D1, day, with_current=False)
    expected = combine(minutes, Interval.D1, day)
    assert live is not None
    assert replace(live, vwap=0.0) == replace(expected, vwap=0.0)
    assert live.vwap == pytest.approx(expected.vwap, rel=1e-12)  # summed in another order
    assert market.seeded_window("IBM", Interval.D1) == day


def test_a_seed_with_a_gap_is_refused_and_a_new_day_starts_from_its_first_minute() -> None:
    day = T0 - T0 % DAY_NS
    market = LiveMarket()
    for m in range(200):
        market.on_bar(minute("IBM", day + m * MINUTE_NS, 50.0))
    # Read when the oldest held minute was 00:00; minutes up to 01:20 have left since.
    assert not market.seed("IBM", Interval.D1, day, None, day)
    assert market.seeded_window("IBM", Interval.D1) is None
    assert market.seed("IBM", Interval.D1, day, None, day + 80 * MINUTE_NS)

    # Past midnight, once the new day's minutes leave the held ones, they settle in it.
    late = [minute("IBM", day + DAY_NS + m * MINUTE_NS, 60.0 + m) for m in range(130)]
    for bar in late:
        market.on_bar(bar)
    assert market.seeded_window("IBM", Interval.D1) == day + DAY_NS
    assert market.window_bar("IBM", Interval.D1, day + DAY_NS, with_current=False) == combine(
        late, Interval.D1, day + DAY_NS
    )
