"""The seeded synthetic market: determinism, trading hours, bar consistency, statistics."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable

import numpy as np
import pandas as pd
import pytest

from financelake.services import errors
from financelake.services.ingestion.records import Bars, BarSource, Interval, Trades
from financelake.services.ingestion.sources.synthetic import (
    MAX_ROWS_PER_CHUNK,
    VENUES,
    InvalidTimeRange,
    SyntheticOptions,
    TradeTrickle,
    simulate_bars,
    simulate_trades,
)
from financelake.services.ingestion.sources.trading_calendar import (
    OutsideCalendar,
    UnknownCalendar,
)

pytestmark = pytest.mark.unit

OPTIONS = SyntheticOptions(seed=42)
NEW_YORK = "America/New_York"


def ns(text: str, tz: str = "UTC") -> int:
    return int(pd.Timestamp(text, tz=tz).value)


def joined_trades(chunks: Iterable[Trades], symbol: str) -> dict[str, list[object]]:
    """One symbol's chunks as plain columns, for exact comparison."""
    mine = [chunk for chunk in chunks if chunk.symbol == symbol]
    return {
        "time": [t for c in mine for t in c.event_time_ns.tolist()],
        "price": [p for c in mine for p in c.price.tolist()],
        "size": [s for c in mine for s in c.size.tolist()],
        "id": [i for c in mine for i in c.trade_id],
        "exchange": [e for c in mine for e in c.exchange],
    }


def joined_bars(chunks: Iterable[Bars], symbol: str = "AAPL") -> pd.DataFrame:
    columns = ["start_time_ns", "open", "high", "low", "close", "volume", "vwap", "trade_count"]
    frames = [
        pd.DataFrame({name: getattr(chunk, name) for name in columns})
        for chunk in chunks
        if chunk.symbol == symbol
    ]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def trades_of(symbol: str, start: int, end: int, options: SyntheticOptions = OPTIONS) -> Trades:
    columns = joined_trades(simulate_trades([symbol], start, end, options), symbol)
    return Trades(
        symbol=symbol,
        event_time_ns=np.array(columns["time"], dtype=np.int64),
        price=np.array(columns["price"], dtype=np.float64),
        size=np.array(columns["size"], dtype=np.float64),
        trade_id=[str(i) for i in columns["id"]],
        exchange=[str(e) for e in columns["exchange"]],
    )


def bars_of(
    interval: Interval, start: int, end: int, options: SyntheticOptions = OPTIONS
) -> pd.DataFrame:
    return joined_bars(simulate_bars(["AAPL"], interval, start, end, options))


def local(times: np.ndarray, tz: str = NEW_YORK) -> pd.DatetimeIndex:
    return pd.to_datetime(times, utc=True).tz_convert(tz)


# ---- determinism --------------------------------------------------------------------------

MONDAY_OPEN = ns("2025-03-03 09:30", NEW_YORK)
MONDAY_CLOSE = ns("2025-03-03 16:00", NEW_YORK)


def test_same_inputs_give_identical_trades():
    first = joined_trades(simulate_trades(["AAPL"], MONDAY_OPEN, MONDAY_CLOSE, OPTIONS), "AAPL")
    again = joined_trades(simulate_trades(["AAPL"], MONDAY_OPEN, MONDAY_CLOSE, OPTIONS), "AAPL")
    assert first == again
    assert len(first["time"]) > 10_000


def test_other_symbols_do_not_change_a_symbol():
    alone = joined_trades(simulate_trades(["AAPL"], MONDAY_OPEN, MONDAY_CLOSE, OPTIONS), "AAPL")
    crowd = simulate_trades(["MSFT", "AAPL", "SPY"], MONDAY_OPEN, MONDAY_CLOSE, OPTIONS)
    assert joined_trades(crowd, "AAPL") == alone


def test_symbols_and_seeds_give_different_paths():
    aapl = trades_of("AAPL", MONDAY_OPEN, MONDAY_OPEN + 60 * 10**9)
    msft = trades_of("MSFT", MONDAY_OPEN, MONDAY_OPEN + 60 * 10**9)
    reseeded = trades_of(
        "AAPL", MONDAY_OPEN, MONDAY_OPEN + 60 * 10**9, dataclasses.replace(OPTIONS, seed=43)
    )
    assert aapl.price.tolist() != msft.price.tolist()
    assert aapl.price.tolist() != reseeded.price.tolist()


def test_chunks_are_bounded_and_ordered():
    chunks = list(simulate_trades(["AAPL"], MONDAY_OPEN, MONDAY_CLOSE, OPTIONS))
    assert all(0 < len(chunk) <= MAX_ROWS_PER_CHUNK for chunk in chunks)
    times = np.concatenate([chunk.event_time_ns for chunk in chunks])
    assert np.all(np.diff(times) >= 0)


@pytest.mark.parametrize(
    "split",
    [
        ns("2025-03-03 11:47:13.123456789", NEW_YORK),  # mid-minute, mid-block
        ns("2025-03-03 12:00", NEW_YORK),  # a minute boundary
        ns("2025-03-04 03:00", NEW_YORK),  # overnight
    ],
)
def test_trades_split_anywhere_equal_one_call(split: int):
    start, end = MONDAY_OPEN + 10**9, ns("2025-03-04 10:30", NEW_YORK)
    whole = joined_trades(simulate_trades(["AAPL"], start, end, OPTIONS), "AAPL")
    parts = [
        *simulate_trades(["AAPL"], start, split, OPTIONS),
        *simulate_trades(["AAPL"], split, end, OPTIONS),
    ]
    assert joined_trades(parts, "AAPL") == whole


def test_trickle_continues_history_exactly():
    start = ns("2025-03-03 15:55", NEW_YORK)
    end = ns("2025-03-04 09:45", NEW_YORK)
    trickle = TradeTrickle(["AAPL", "MSFT"], OPTIONS, start)
    pieces: list[Trades] = []
    for now in np.linspace(start, end, 97).astype(np.int64)[1:]:
        pieces.extend(trickle.advance(int(now)))
    assert trickle.advance(end) == []
    assert trickle.next_start_ns == end
    whole = list(simulate_trades(["AAPL", "MSFT"], start, end, OPTIONS))
    for symbol in ("AAPL", "MSFT"):
        assert joined_trades(pieces, symbol) == joined_trades(whole, symbol)


@pytest.mark.parametrize("interval", [Interval.M1, Interval.M5, Interval.H1, Interval.D1])
def test_bars_split_anywhere_equal_one_call(interval: Interval):
    start, end = ns("2025-02-24"), ns("2025-03-08")
    split = ns("2025-03-03 11:47:13", NEW_YORK)
    whole = bars_of(interval, start, end)
    parts = pd.concat([bars_of(interval, start, split), bars_of(interval, split, end)])
    pd.testing.assert_frame_equal(parts.reset_index(drop=True), whole)


# ---- trades -------------------------------------------------------------------------------


def test_trades_have_valid_columns():
    trades = trades_of("AAPL", MONDAY_OPEN, MONDAY_CLOSE)
    assert np.all(trades.size > 0)
    assert np.all(trades.size == np.round(trades.size))
    assert np.mean(trades.size % 100 != 0) == pytest.approx(0.15, abs=0.02)  # odd lots
    assert np.allclose(trades.price * 100, np.round(trades.price * 100), atol=1e-6)
    assert len(set(trades.trade_id)) == len(trades)
    assert trades.trade_id[0] == "AAPL-20250303-0"
    assert set(trades.exchange) == set(VENUES)


def test_xnys_trades_only_in_sessions():
    # Christmas week 2025: 24th closes early at 13:00, 25th is a holiday, 27-28th a weekend.
    trades = trades_of("AAPL", ns("2025-12-22"), ns("2025-12-29"))
    when = local(trades.event_time_ns)
    minutes = when.hour * 60 + when.minute
    assert set(when.date.astype(str)) == {
        "2025-12-22",
        "2025-12-23",
        "2025-12-24",
        "2025-12-26",
    }
    assert minutes.min() >= 9 * 60 + 30
    assert minutes.max() < 16 * 60
    assert (minutes[when.day == 24] < 13 * 60).all()
    assert (when.hour != 3).all()


def test_continuous_calendar_trades_around_the_clock():
    options = SyntheticOptions(seed=1, calendar="24x7", trades_per_minute=5)
    trades = trades_of("BTCUSD", ns("2025-12-25"), ns("2025-12-28"), options)
    when = local(trades.event_time_ns, "UTC")
    assert set(when.hour) == set(range(24))
    assert {"2025-12-25", "2025-12-27"} <= set(when.date.astype(str))


def test_window_outside_sessions_is_empty():
    saturday = ns("2025-03-08 10:00", NEW_YORK)
    assert list(simulate_trades(["AAPL"], saturday, saturday + 3600 * 10**9, OPTIONS)) == []


def test_trades_fit_their_minute_bars():
    trades = trades_of("AAPL", MONDAY_OPEN, MONDAY_CLOSE)
    bars = bars_of(Interval.M1, MONDAY_OPEN, MONDAY_CLOSE).set_index("start_time_ns")
    minute = trades.event_time_ns // (60 * 10**9) * (60 * 10**9)
    per_minute = pd.DataFrame({"minute": minute, "price": trades.price}).groupby("minute")
    assert per_minute.size().to_numpy().tolist() == bars["trade_count"].tolist()
    assert (per_minute["price"].min() >= bars["low"] - 1e-9).all()
    assert (per_minute["price"].max() <= bars["high"] + 1e-9).all()


# ---- bars ---------------------------------------------------------------------------------


@pytest.mark.parametrize("interval", list(Interval))
def test_bar_invariants(interval: Interval):
    chunks = list(simulate_bars(["AAPL"], interval, ns("2024-11-01"), ns("2025-01-15"), OPTIONS))
    assert all(c.source is BarSource.SYNTHETIC and not c.adjusted for c in chunks)
    assert all(c.interval is interval for c in chunks)
    bars = joined_bars(chunks)
    assert len(bars) > 0
    assert bars["start_time_ns"].is_monotonic_increasing
    for column in ("open", "close", "vwap"):
        assert (bars["low"] <= bars[column]).all()
        assert (bars[column] <= bars["high"]).all()
    assert (bars["volume"] >= bars["trade_count"]).all()
    assert (bars["trade_count"] > 0).all()


@pytest.mark.parametrize(
    ("interval", "width"), [(Interval.M5, "5min"), (Interval.M30, "30min"), (Interval.H1, "1h")]
)
def test_minute_bars_aggregate_to_wider_bars(interval: Interval, width: str):
    start, end = ns("2025-03-03"), ns("2025-03-08")
    minutes = bars_of(Interval.M1, start, end)
    expected = aggregate(minutes, pd.to_datetime(minutes["start_time_ns"]).dt.floor(width))
    assert_same_bars(bars_of(interval, start, end), expected)


def test_daily_and_weekly_bars_aggregate_sessions():
    # MLK day (Monday 2025-01-20) is a holiday: that week starts on Tuesday's open.
    start, end = ns("2025-01-13"), ns("2025-01-25")
    minutes = bars_of(Interval.M1, start, end)
    day = local(minutes["start_time_ns"].to_numpy()).normalize()
    daily = bars_of(Interval.D1, start, end)
    assert_same_bars(daily, aggregate(minutes, day))
    assert local(daily["start_time_ns"].to_numpy()).strftime("%H:%M").unique().tolist() == ["09:30"]
    weekly = bars_of(Interval.WK1, start, end)
    assert local(weekly["start_time_ns"].to_numpy()).strftime("%a %d").tolist() == [
        "Mon 13",
        "Tue 21",
    ]
    week = day - pd.to_timedelta(day.day_of_week, unit="D")
    assert_same_bars(weekly, aggregate(minutes, week))


def aggregate(minutes: pd.DataFrame, key: object) -> pd.DataFrame:
    """1m bars combined the textbook way, independently of the simulator's code."""
    minutes = minutes.assign(notional=minutes["volume"] * minutes["vwap"], key=np.asarray(key))
    grouped = minutes.groupby("key", sort=True)
    out = grouped.agg(
        start_time_ns=("start_time_ns", "first"),
        open=("open", "first"),
        high=("high", "max"),
        low=("low", "min"),
        close=("close", "last"),
        volume=("volume", "sum"),
        notional=("notional", "sum"),
        trade_count=("trade_count", "sum"),
    )
    out["vwap"] = out["notional"] / out["volume"]
    return out.reset_index(drop=True)


def assert_same_bars(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert len(actual) == len(expected) > 0
    for column in ("open", "high", "low", "close", "volume", "trade_count"):
        assert actual[column].tolist() == expected[column].tolist(), column
    np.testing.assert_allclose(actual["vwap"], expected["vwap"], rtol=1e-12)


def test_intraday_bars_start_on_interval_boundaries():
    bars = bars_of(Interval.M15, MONDAY_OPEN, MONDAY_CLOSE)
    assert (bars["start_time_ns"] % (900 * 10**9) == 0).all()
    assert len(bars) == 26


# ---- statistics ---------------------------------------------------------------------------


def test_volume_smile_heavier_at_open_and_close():
    bars = bars_of(Interval.M1, ns("2025-03-03"), ns("2025-03-29"))
    when = local(bars["start_time_ns"].to_numpy())
    minute = when.hour * 60 + when.minute - (9 * 60 + 30)
    edges = bars["volume"][(minute < 30) | (minute >= 360)].mean()
    midday = bars["volume"][(minute >= 150) & (minute < 240)].mean()
    assert edges > 1.5 * midday
    counts_edges = bars["trade_count"][(minute < 30) | (minute >= 360)].mean()
    assert counts_edges > 1.5 * bars["trade_count"][(minute >= 150) & (minute < 240)].mean()


def minute_log_returns(options: SyntheticOptions, start: int, end: int) -> tuple[np.ndarray, int]:
    """1m close-to-close log returns inside sessions, and how many sessions were seen."""
    bars = bars_of(Interval.M1, start, end, options)
    session = local(bars["start_time_ns"].to_numpy()).date
    log_close = np.log(bars["close"].to_numpy())
    same_session = session[1:] == session[:-1]
    return np.diff(log_close)[same_session], len(set(session))


def test_intraday_volatility_matches_the_option():
    options = SyntheticOptions(seed=3, jumps_per_day=0.0, start_price=500.0)
    returns, sessions = minute_log_returns(options, ns("2024-01-01"), ns("2024-03-01"))
    # 80% of each session's variance is intraday, 20% in the overnight gap.
    annualised = np.sqrt(np.sum(returns**2) / sessions * 252)
    assert annualised == pytest.approx(0.25 * np.sqrt(0.8), rel=0.15)


def test_daily_volatility_matches_the_option():
    options = SyntheticOptions(seed=5, jumps_per_day=0.0, annual_volatility=0.4)
    daily = bars_of(Interval.D1, ns("2022-01-01"), ns("2025-01-01"), options)
    returns = np.diff(np.log(daily["close"].to_numpy()))
    assert np.std(returns) * np.sqrt(252) == pytest.approx(0.4, rel=0.15)


def test_jumps_appear_when_frequent():
    start, end = ns("2024-06-03"), ns("2024-06-15")
    calm, _ = minute_log_returns(SyntheticOptions(seed=9, jumps_per_day=0.0), start, end)
    jumpy, sessions = minute_log_returns(SyntheticOptions(seed=9, jumps_per_day=5.0), start, end)
    threshold = 8 * np.std(calm)
    assert np.sum(np.abs(calm) > threshold) == 0
    assert np.sum(np.abs(jumpy) > threshold) >= 2 * sessions


def test_start_price_anchors_2020():
    bars = bars_of(Interval.D1, ns("2020-01-02"), ns("2020-01-03"), SyntheticOptions(seed=11))
    # One session of 25% annual volatility moves the price by a few percent at most.
    assert bars["open"].iloc[0] == pytest.approx(100, rel=0.1)


# ---- options and errors -------------------------------------------------------------------


def test_with_defaults_fills_zero_values():
    options = SyntheticOptions.with_defaults(seed=5, annual_volatility=0.5)
    assert options == SyntheticOptions(seed=5, annual_volatility=0.5)
    assert SyntheticOptions.with_defaults().calendar == "XNYS"


def test_invalid_options_name_their_fields():
    with pytest.raises(errors.InvalidInput) as raised:
        SyntheticOptions(start_price=-1, trades_per_minute=-2)
    assert [v.field for v in raised.value.violations] == ["start_price", "trades_per_minute"]


def test_unknown_calendar_is_refused():
    with pytest.raises(UnknownCalendar):
        list(simulate_trades(["AAPL"], MONDAY_OPEN, MONDAY_CLOSE, SyntheticOptions(calendar="X")))


def test_ranges_outside_the_simulated_years_are_refused():
    with pytest.raises(OutsideCalendar):
        list(simulate_bars(["AAPL"], Interval.D1, ns("1990-01-01"), ns("1991-01-01"), OPTIONS))
    with pytest.raises(InvalidTimeRange):
        list(simulate_trades(["AAPL"], MONDAY_CLOSE, MONDAY_OPEN, OPTIONS))


def test_throughput_is_reported():
    """Not a timed assertion (machines vary): run with -s to read the rate."""
    symbols = ["AAPL", "MSFT", "SPY", "QQQ"]
    start, end = ns("2025-03-03"), ns("2025-03-08")
    list(simulate_trades(symbols, start, start + 1, OPTIONS))  # load the calendar first
    began = time.perf_counter()
    count = sum(len(chunk) for chunk in simulate_trades(symbols, start, end, OPTIONS))
    elapsed = time.perf_counter() - began
    print(f"synthetic trades: {count} in {elapsed:.3f}s = {count / elapsed:,.0f} trades/s")
    assert count > 0


def test_trade_rate_leaves_the_price_path_alone():
    busy = bars_of(Interval.M1, MONDAY_OPEN, MONDAY_CLOSE).set_index("start_time_ns")
    quiet_options = dataclasses.replace(OPTIONS, trades_per_minute=2)
    quiet = bars_of(Interval.M1, MONDAY_OPEN, MONDAY_CLOSE, quiet_options)
    quiet = quiet.set_index("start_time_ns")
    assert 0 < len(quiet) < len(busy)
    for column in ("open", "high", "low", "close"):
        assert quiet[column].tolist() == busy.loc[quiet.index, column].tolist()


def test_the_whole_simulated_span_is_available():
    first = list(simulate_bars(["AAPL"], Interval.D1, ns("2000-01-01"), ns("2000-01-08"), OPTIONS))
    last = list(simulate_bars(["AAPL"], Interval.D1, ns("2040-12-24"), ns("2041-01-01"), OPTIONS))
    assert len(first[0]) == 5
    assert len(last[0]) == 5
