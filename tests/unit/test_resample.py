"""Resampling bars to coarser intervals, checked against independent pandas references.

Volumes are whole numbers, so every order of summing them is exact and volume can be
compared for equality; vwap is a ratio of float sums and is compared with rtol 1e-12.
"""

from __future__ import annotations

from typing import Any

import exchange_calendars
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from financelake.services.errors import OutOfRange
from financelake.services.ingestion.records import Interval
from financelake.services.ingestion.sources.trading_calendar import UnknownCalendar
from financelake.services.marketdata.resample import BAR_COLUMNS, resample_bars

pytestmark = [
    pytest.mark.unit,
    # exchange_calendars 4.13 reads tz-aware `.values`, deprecated in pandas 3.1: theirs.
    pytest.mark.filterwarnings("ignore:.*values returning an ndarray:DeprecationWarning"),
]

MICROS = pa.timestamp("us", tz="UTC")
SCHEMA = pa.schema(
    [
        ("start_time", MICROS),
        ("open", pa.float64()),
        ("high", pa.float64()),
        ("low", pa.float64()),
        ("close", pa.float64()),
        ("volume", pa.float64()),
        ("vwap", pa.float64()),
        ("trade_count", pa.int64()),
    ]
)
EXACT = ("start_time", "open", "high", "low", "close", "volume", "trade_count")
# pandas rules with the same alignment resample_bars documents for calendar=None.
PANDAS_RULES = {
    Interval.M5: ("5min", "epoch"),
    Interval.M15: ("15min", "epoch"),
    Interval.M30: ("30min", "epoch"),
    Interval.H1: ("1h", "epoch"),
    Interval.D1: ("1D", "start_day"),
    Interval.WK1: ("W-MON", "start_day"),  # weeks labelled by their Monday, [Mon, Mon)
}
TARGETS = list(PANDAS_RULES)


def _bars(start: pd.DatetimeIndex, seed: int = 7) -> pa.Table:
    """A seeded random walk of 1m bars at `start`, with random zero-volume bars."""
    rng = np.random.default_rng(seed)
    n = len(start)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    high = np.maximum(open_, close) + rng.exponential(0.05, n)
    low = np.minimum(open_, close) - rng.exponential(0.05, n)
    volume = rng.integers(1, 1_000, n).astype(np.float64)
    volume[rng.random(n) < 0.05] = 0.0
    vwap = low + (high - low) * rng.random(n)
    trade_count = rng.integers(0, 50, n)
    return pa.table(
        [
            pa.array(start.as_unit("us"), type=MICROS),
            open_,
            high,
            low,
            close,
            volume,
            vwap,
            trade_count,
        ],
        schema=SCHEMA,
    )


def _minute_bars(*, zero_volume_hour: bool = True) -> pa.Table:
    """Four weeks of 24/7 1m bars from a Wednesday, with gaps and zero-volume windows."""
    rng = np.random.default_rng(11)
    minutes = pd.date_range("2024-01-03", "2024-01-31", freq="1min", inclusive="left", tz="UTC")
    keep = rng.random(len(minutes)) > 0.15  # missing minutes
    keep &= minutes.normalize() != pd.Timestamp("2024-01-10", tz="UTC")  # a missing day
    keep &= (minutes < "2024-01-15 09:00Z") | (minutes >= "2024-01-15 13:00Z")  # missing hours
    table = _bars(minutes[keep])
    # A whole 5m window, and optionally a whole hour, without volume: vwap falls back.
    t = pd.DatetimeIndex(table.column("start_time").to_pandas())
    silent = (t >= "2024-01-05 10:05Z") & (t < "2024-01-05 10:10Z")
    if zero_volume_hour:
        silent |= (t >= "2024-01-06 03:00Z") & (t < "2024-01-06 04:00Z")
    volume = np.where(silent, 0.0, table.column("volume").to_numpy())
    return table.set_column(5, "volume", pa.array(volume))


def _aggregate_reference(by: Any) -> pd.DataFrame:
    """OHLCV rules applied to pandas groups (groupby or resample), empty groups dropped."""
    out = pd.DataFrame(
        {
            "open": by["open"].first(),
            "high": by["high"].max(),
            "low": by["low"].min(),
            "close": by["close"].last(),
            "volume": by["volume"].sum(),
            "trade_count": by["trade_count"].sum(),
            "weighted": by["weighted"].sum(),
            "mean_vwap": by["vwap"].mean(),
            "rows": by["open"].count(),
        }
    )
    out = out[out["rows"] > 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        vwap = out["weighted"] / out["volume"]
    out["vwap"] = np.where(out["volume"] != 0, vwap, out["mean_vwap"])
    return out


def _frame(bars: pa.Table) -> pd.DataFrame:
    df = bars.to_pandas().set_index("start_time")
    df["weighted"] = df["vwap"] * df["volume"]
    return df


def _pandas_reference(bars: pa.Table, target: Interval) -> pd.DataFrame:
    rule, origin = PANDAS_RULES[target]
    df = _frame(bars)
    by = df.resample(rule, label="left", closed="left", origin=origin)
    return _aggregate_reference(by)


def _assert_matches(result: pa.Table, reference: pd.DataFrame) -> None:
    assert result.schema == SCHEMA
    got = result.to_pandas()
    np.testing.assert_array_equal(
        got["start_time"].to_numpy(), reference.index.as_unit("us").to_numpy()
    )
    for name in EXACT[1:]:
        np.testing.assert_array_equal(got[name].to_numpy(), reference[name].to_numpy(), name)
    np.testing.assert_allclose(got["vwap"].to_numpy(), reference["vwap"].to_numpy(), rtol=1e-12)


def _assert_same_bars(left: pa.Table, right: pa.Table) -> None:
    assert left.schema == right.schema
    for name in EXACT:
        assert left.column(name).equals(right.column(name)), name
    np.testing.assert_allclose(
        left.column("vwap").to_numpy(), right.column("vwap").to_numpy(), rtol=1e-12
    )


@pytest.fixture(scope="module")
def minute_bars() -> pa.Table:
    return _minute_bars()


@pytest.mark.parametrize("target", TARGETS, ids=lambda i: i.value)
def test_matches_pandas_resample(minute_bars: pa.Table, target: Interval) -> None:
    result = resample_bars(minute_bars, target, source=Interval.M1)

    _assert_matches(result, _pandas_reference(minute_bars, target))


def test_reference_data_covers_the_edge_cases(minute_bars: pa.Table) -> None:
    # Guards the fixture itself: the cases above must really meet gaps and silent windows.
    hourly = resample_bars(minute_bars, Interval.H1)
    daily = resample_bars(minute_bars, Interval.D1)
    assert pd.Timestamp("2024-01-10", tz="UTC") not in set(daily.column("start_time").to_pylist())
    silent = hourly.filter(pc.equal(hourly.column("volume"), 0.0))
    assert silent.num_rows == 1
    vwap = silent.column("vwap")[0].as_py()
    assert vwap > 0
    assert not np.isnan(vwap)
    weekly = resample_bars(minute_bars, Interval.WK1).column("start_time").to_pylist()
    assert [t.weekday() for t in weekly] == [0] * 5  # partial first week labelled 2024-01-01


def test_zero_volume_window_takes_the_mean_vwap() -> None:
    table = _bars(pd.date_range("2024-03-01 10:00", periods=5, freq="1min", tz="UTC"))
    table = table.set_column(5, "volume", pa.array([0.0] * 5))

    result = resample_bars(table, Interval.M5)

    assert result.column("vwap").to_pylist() == [
        pytest.approx(np.mean(table.column("vwap").to_numpy()), rel=1e-12)
    ]


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ((Interval.M5,), Interval.H1),
        ((Interval.M5, Interval.M15, Interval.M30), Interval.H1),
        ((Interval.M15,), Interval.D1),
        ((Interval.H1, Interval.D1), Interval.WK1),
    ],
    ids=lambda p: "-".join(i.value for i in p) if isinstance(p, tuple) else p.value,
)
def test_resampling_in_steps_equals_one_step(path: tuple[Interval, ...], target: Interval) -> None:
    # The vwap fallback of a window with no volume is a mean, and means of means differ
    # from the overall mean, so this data has no silent hour (documented in the module).
    bars = _minute_bars(zero_volume_hour=False)
    stepped, source = bars, Interval.M1
    for step in (*path, target):
        stepped, source = resample_bars(stepped, step, source=source), step

    _assert_same_bars(stepped, resample_bars(bars, target, source=Interval.M1))


# ---- exchange sessions ------------------------------------------------------------------


@pytest.fixture(scope="module")
def xnys() -> exchange_calendars.ExchangeCalendar:
    return exchange_calendars.get_calendar("XNYS", start="2024-06-01", end="2025-01-31")


@pytest.fixture(scope="module")
def session_bars(xnys: exchange_calendars.ExchangeCalendar) -> pa.Table:
    """1m bars in XNYS sessions around Labor Day and Thanksgiving, with a missing session."""
    minutes = xnys.sessions_minutes("2024-08-26", "2024-09-13").append(
        xnys.sessions_minutes("2024-11-18", "2024-12-06")
    )
    rng = np.random.default_rng(3)
    keep = rng.random(len(minutes)) > 0.1
    keep &= xnys.minutes_to_sessions(minutes) != pd.Timestamp("2024-11-20")
    return _bars(minutes[keep], seed=5)


def _session_reference(
    bars: pa.Table, xnys: exchange_calendars.ExchangeCalendar, target: Interval
) -> pd.DataFrame:
    df = _frame(bars)
    session = xnys.minutes_to_sessions(df.index.as_unit("ns"))  # it compares raw nanoseconds
    if target is Interval.D1:
        label = session
        start = xnys.schedule["open"]
    else:
        label = session - pd.to_timedelta(session.day_of_week, unit="D")  # the session's Monday
        sessions = xnys.sessions
        monday = sessions - pd.to_timedelta(sessions.day_of_week, unit="D")
        first_session = pd.Series(sessions, index=monday).groupby(level=0).min()
        start = pd.Series(xnys.schedule["open"].loc[first_session].to_numpy(), first_session.index)
    out = _aggregate_reference(df.groupby(label.to_numpy()))
    out.index = pd.DatetimeIndex(start.loc[out.index].to_numpy())
    return out


@pytest.mark.parametrize("target", [Interval.D1, Interval.WK1], ids=lambda i: i.value)
def test_sessions_match_exchange_calendars(
    session_bars: pa.Table, xnys: exchange_calendars.ExchangeCalendar, target: Interval
) -> None:
    result = resample_bars(session_bars, target, calendar="XNYS", source=Interval.M1)

    _assert_matches(result, _session_reference(session_bars, xnys, target))


def test_daily_sessions_around_thanksgiving(session_bars: pa.Table) -> None:
    daily = resample_bars(session_bars, Interval.D1, calendar="XNYS")

    starts = [t.isoformat() for t in daily.column("start_time").to_pylist()]
    week = [s for s in starts if "2024-11-25" <= s < "2024-12-03"]
    # No session on Thanksgiving; the early close keeps its 14:30 UTC open.
    assert week == [
        "2024-11-25T14:30:00+00:00",
        "2024-11-26T14:30:00+00:00",
        "2024-11-27T14:30:00+00:00",
        "2024-11-29T14:30:00+00:00",
        "2024-12-02T14:30:00+00:00",
    ]
    friday = daily.filter(pc.equal(daily.column("start_time"), pd.Timestamp("2024-11-29 14:30Z")))
    minutes = session_bars.filter(
        pc.and_(
            pc.greater_equal(session_bars.column("start_time"), pd.Timestamp("2024-11-29 14:30Z")),
            pc.less(session_bars.column("start_time"), pd.Timestamp("2024-11-29 18:00Z")),
        )
    )
    assert friday.column("close")[0] == minutes.column("close")[-1]  # last bar before 13:00 ET
    assert friday.column("volume")[0].as_py() == pc.sum(minutes.column("volume")).as_py()


def test_weekly_sessions_start_at_the_weeks_first_open(session_bars: pa.Table) -> None:
    weekly = resample_bars(session_bars, Interval.WK1, calendar="XNYS")

    starts = [t.isoformat() for t in weekly.column("start_time").to_pylist()]
    assert starts == [
        "2024-08-26T13:30:00+00:00",
        "2024-09-03T13:30:00+00:00",  # Labor Day Monday: Tuesday's open
        "2024-09-09T13:30:00+00:00",
        "2024-11-18T14:30:00+00:00",
        "2024-11-25T14:30:00+00:00",
        "2024-12-02T14:30:00+00:00",
    ]


def test_bars_outside_sessions_go_to_the_next_session() -> None:
    stamps = [
        "2024-11-27 20:59Z",  # last minute of Wednesday's session
        "2024-11-27 22:00Z",  # Wednesday post-market: Thanksgiving is closed -> Friday
        "2024-11-29 12:00Z",  # Friday pre-market -> Friday
        "2024-11-29 18:30Z",  # after Friday's 13:00 ET early close -> Monday
        "2024-11-30 15:00Z",  # Saturday -> Monday
    ]
    table = _bars(pd.DatetimeIndex(stamps))

    daily = resample_bars(table, Interval.D1, calendar="XNYS")

    assert [t.isoformat() for t in daily.column("start_time").to_pylist()] == [
        "2024-11-27T14:30:00+00:00",
        "2024-11-29T14:30:00+00:00",
        "2024-12-02T14:30:00+00:00",
    ]
    assert daily.column("trade_count").to_pylist() == [
        table.column("trade_count")[0].as_py(),
        table.column("trade_count")[1].as_py() + table.column("trade_count")[2].as_py(),
        table.column("trade_count")[3].as_py() + table.column("trade_count")[4].as_py(),
    ]


def test_sessions_in_steps_equal_one_step(session_bars: pa.Table) -> None:
    daily = resample_bars(session_bars, Interval.D1, calendar="XNYS", source=Interval.M1)
    stepped = resample_bars(daily, Interval.WK1, calendar="XNYS", source=Interval.D1)

    _assert_same_bars(stepped, resample_bars(session_bars, Interval.WK1, calendar="XNYS"))


@pytest.mark.parametrize("target", [Interval.D1, Interval.WK1], ids=lambda i: i.value)
def test_round_the_clock_calendar_equals_utc(minute_bars: pa.Table, target: Interval) -> None:
    _assert_same_bars(
        resample_bars(minute_bars, target, calendar="24x7"), resample_bars(minute_bars, target)
    )


def test_intraday_targets_ignore_the_calendar(session_bars: pa.Table) -> None:
    _assert_same_bars(
        resample_bars(session_bars, Interval.H1, calendar="XNYS"),
        resample_bars(session_bars, Interval.H1),
    )


# ---- shapes and errors --------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS, ids=lambda i: i.value)
@pytest.mark.parametrize("calendar", [None, "XNYS"])
def test_empty_input_gives_empty_output_with_the_schema(
    target: Interval, calendar: str | None
) -> None:
    result = resample_bars(SCHEMA.empty_table(), target, calendar=calendar)

    assert result.num_rows == 0
    assert result.schema == SCHEMA


def test_same_interval_returns_the_input(minute_bars: pa.Table) -> None:
    assert resample_bars(minute_bars, Interval.M1, source=Interval.M1).equals(minute_bars)


def test_output_keeps_only_bar_columns_and_their_types(minute_bars: pa.Table) -> None:
    nanos = minute_bars.set_column(
        0,
        pa.field("start_time", pa.timestamp("ns", tz="UTC")),
        minute_bars.column(0).cast(pa.timestamp("ns", tz="UTC")),
    )
    extra = nanos.append_column("symbol", pa.array(["AAPL"] * nanos.num_rows))

    result = resample_bars(extra, Interval.M15)

    assert result.column_names == list(BAR_COLUMNS)
    assert result.schema.field("start_time").type == pa.timestamp("ns", tz="UTC")
    _assert_same_bars(
        result.set_column(0, "start_time", result.column(0).cast(MICROS)),
        resample_bars(minute_bars, Interval.M15),
    )


def test_chunked_input_resamples_like_contiguous(minute_bars: pa.Table) -> None:
    half = minute_bars.num_rows // 2
    chunked = pa.concat_tables([minute_bars.slice(0, half), minute_bars.slice(half)])
    assert chunked.column("open").num_chunks == 2

    _assert_same_bars(resample_bars(chunked, Interval.H1), resample_bars(minute_bars, Interval.H1))


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (Interval.M5, Interval.M1),
        (Interval.H1, Interval.M30),
        (Interval.D1, Interval.H1),
        (Interval.WK1, Interval.D1),
    ],
)
def test_finer_target_than_source_is_rejected(source: Interval, target: Interval) -> None:
    with pytest.raises(ValueError, match="finer"):
        resample_bars(SCHEMA.empty_table(), target, source=source)


def test_unsorted_or_duplicate_start_times_are_rejected(minute_bars: pa.Table) -> None:
    head = minute_bars.slice(0, 10)
    with pytest.raises(ValueError, match="sorted"):
        resample_bars(pa.concat_tables([head.slice(5), head.slice(0, 5)]), Interval.M5)
    with pytest.raises(ValueError, match="duplicates"):
        resample_bars(pa.concat_tables([head, head.slice(9)]), Interval.M5)


def test_malformed_tables_are_rejected(minute_bars: pa.Table) -> None:
    head = minute_bars.slice(0, 10)
    with pytest.raises(ValueError, match=r"lack column.*vwap"):
        resample_bars(head.drop_columns(["vwap"]), Interval.M5)
    with pytest.raises(ValueError, match="trade_count"):
        resample_bars(head.set_column(7, "trade_count", head.column(7).cast("int32")), Interval.M5)
    with pytest.raises(ValueError, match="start_time must be a timestamp"):
        resample_bars(head.set_column(0, "start_time", head.column(0).cast("int64")), Interval.M5)
    nulls = pa.array([None] + [1.0] * 9, type=pa.float64())
    with pytest.raises(ValueError, match="nulls"):
        resample_bars(head.set_column(1, "open", nulls), Interval.M5)


def test_unknown_calendar_is_rejected_even_without_rows() -> None:
    with pytest.raises(UnknownCalendar):
        resample_bars(SCHEMA.empty_table(), Interval.D1, calendar="NOPE")


@pytest.mark.parametrize("stamp", ["1999-06-01 15:00Z", "2041-06-03 15:00Z"])
def test_bars_outside_the_loaded_calendar_are_rejected(stamp: str) -> None:
    with pytest.raises(OutOfRange, match="outside the XNYS sessions"):
        resample_bars(_bars(pd.DatetimeIndex([stamp])), Interval.D1, calendar="XNYS")
