"""Alpha Vantage source against a loopback HTTP server replaying recorded API bodies.

The bodies in tests/data/sources/alphavantage/ are hand-built in the documented response
format (Meta Data + one time-series object, newest first, numbered field names). The real
client code runs unchanged: only `alphavantage_base_url` points at the loopback server.
"""

from __future__ import annotations

import datetime as dt
import json
import traceback

import numpy as np
import pytest
from pydantic import SecretStr

from financelake.services.errors import InvalidInput
from financelake.services.ingestion.records import BarSource, Interval
from financelake.services.ingestion.sources import SourceError
from financelake.services.ingestion.sources.alphavantage import (
    API_KEY_VARIABLE,
    AlphaVantageClient,
    RateLimiter,
)
from financelake.services.settings import SourceSettings
from tests.fixtures.alphavantage import KEY

pytestmark = pytest.mark.unit

UTC = dt.UTC
S = 1_000_000_000


class FakeClock:
    """Monotonic time that only moves when the limiter sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def client(alphavantage_server: tuple[str, list[dict[str, str]]]) -> AlphaVantageClient:
    settings = SourceSettings(
        alphavantage_api_key=SecretStr(KEY),
        alphavantage_base_url=alphavantage_server[0],
        http_timeout_s=5,
    )
    clock = FakeClock()
    return AlphaVantageClient(settings, limiter=RateLimiter(1000, clock=clock, sleep=clock.sleep))


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=UTC)


def _ns(*args: int) -> int:
    return int(_utc(*args).timestamp()) * S


def test_intraday_converts_us_eastern_to_utc_across_months_and_dst(
    client, alphavantage_server
) -> None:
    _, seen = alphavantage_server
    seen.clear()
    history = client.history(
        "IBM", interval=Interval.M5, start=_utc(2024, 1, 2), end=_utc(2024, 3, 12)
    )
    bars = history.bars
    assert [q["month"] for q in seen] == ["2024-01", "2024-02", "2024-03"]
    assert all(q["outputsize"] == "full" and q["interval"] == "5min" for q in seen)
    assert all(q["apikey"] == KEY and q["adjusted"] == "true" for q in seen)
    assert all(q["extended_hours"] == "false" for q in seen)
    assert bars.source is BarSource.ALPHAVANTAGE
    assert bars.interval is Interval.M5
    assert bars.adjusted
    # EST (UTC-5) in January and on Friday 2024-03-08; EDT (UTC-4) from Monday 2024-03-11.
    assert bars.start_time_ns.tolist() == [
        _ns(2024, 1, 2, 14, 30),
        _ns(2024, 1, 2, 14, 35),
        _ns(2024, 1, 31, 14, 30),
        _ns(2024, 1, 31, 20, 55),
        _ns(2024, 2, 29, 20, 55),
        _ns(2024, 3, 8, 14, 30),
        _ns(2024, 3, 11, 13, 30),
    ]
    assert bars.open[0] == 162.0
    assert bars.close[-1] == 195.2
    assert bars.volume[0] == 210000
    assert np.all(np.diff(bars.start_time_ns) > 0)
    assert bars.vwap.tolist() == [0.0] * 7
    assert bars.trade_count.tolist() == [0] * 7
    # The February row with high "NaN" is reported, not imported.
    assert len(history.problems) == 1
    assert history.problems[0].field == "high"
    assert history.problems[0].time_ns == _ns(2024, 2, 15, 15, 0)
    assert len(history.actions) == 0


def test_intraday_range_is_half_open_in_utc(client) -> None:
    bars = client.history(
        "IBM", interval=Interval.M5, start=_utc(2024, 1, 2, 14, 35), end=_utc(2024, 1, 31, 14, 30)
    ).bars
    assert bars.start_time_ns.tolist() == [_ns(2024, 1, 2, 14, 35)]


def test_daily_adjusted_scales_prices_and_returns_dividends_and_splits(
    client, alphavantage_server
) -> None:
    _, seen = alphavantage_server
    seen.clear()
    history = client.history(
        "IBM", interval=Interval.D1, start=_utc(2024, 1, 1), end=_utc(2024, 3, 1)
    )
    assert seen[0]["function"] == "TIME_SERIES_DAILY_ADJUSTED"
    assert seen[0]["outputsize"] == "full"
    bars = history.bars
    assert bars.start_time_ns.tolist() == [
        _ns(2024, 1, 5),
        _ns(2024, 2, 8),
        _ns(2024, 2, 9),
        _ns(2024, 2, 12),
    ]
    # 2024-02-08: adjusted close 182.70 / close 184.36 scales every price.
    ratio = 182.70 / 184.36
    assert bars.close[1] == pytest.approx(182.70)
    assert bars.open[1] == pytest.approx(182.63 * ratio)
    assert bars.high[1] == pytest.approx(184.55 * ratio)
    assert bars.low[1] == pytest.approx(181.49 * ratio)
    assert bars.volume[1] == 5161185
    assert bars.adjusted
    actions = history.actions
    assert actions.time_ns.tolist() == [_ns(2024, 1, 5), _ns(2024, 2, 9)]
    assert actions.dividend.tolist() == [0.0, 1.66]
    assert actions.split_ratio.tolist() == [2.0, 1.0]


def test_daily_unadjusted_uses_raw_function(client, alphavantage_server) -> None:
    _, seen = alphavantage_server
    seen.clear()
    history = client.history(
        "IBM",
        interval=Interval.D1,
        start=_utc(2024, 2, 9, 14, 30),
        end=_utc(2024, 2, 12),
        adjusted=False,
    )
    assert seen[0]["function"] == "TIME_SERIES_DAILY"
    # A range starting mid-day still includes that day's bar (stamped midnight UTC).
    assert history.bars.start_time_ns.tolist() == [_ns(2024, 2, 9)]
    assert history.bars.close.tolist() == [186.34]
    assert not history.bars.adjusted


def test_weekly_bars_start_on_monday(client) -> None:
    history = client.history(
        "IBM", interval=Interval.WK1, start=_utc(2024, 1, 1), end=_utc(2024, 3, 1)
    )
    # Alpha Vantage keys weeks by their last trading day (Fridays 2024-02-02 and 02-09).
    assert history.bars.start_time_ns.tolist() == [_ns(2024, 1, 29), _ns(2024, 2, 5)]
    assert history.bars.close[0] == pytest.approx(184.15)
    assert history.actions.dividend.tolist() == [1.66]
    assert history.actions.split_ratio.tolist() == [1.0]


@pytest.mark.parametrize(
    ("symbol", "interval", "message"),
    [
        ("NOPE", Interval.D1, "refused for TIME_SERIES_DAILY_ADJUSTED NOPE: Invalid API call"),
        ("LIMITED", Interval.D1, "rate limit reached"),
        ("FREE", Interval.D1, "premium endpoint"),
        ("DOWN", Interval.WK1, "HTTP 503"),
        ("THROTTLED", Interval.WK1, r"HTTP 429 \(rate limited\)"),
        ("GARBAGE", Interval.WK1, "not JSON"),
    ],
)
def test_errors_become_source_errors_without_the_key(client, symbol, interval, message) -> None:
    with pytest.raises(SourceError, match=message) as caught:
        client.history(symbol, interval=interval, start=_utc(2024, 1, 1), end=_utc(2024, 2, 1))
    # Nothing a traceback would print (chained urllib errors hold the URL) names the key.
    assert KEY not in "".join(traceback.format_exception(caught.value))


def test_unreachable_server_is_a_source_error() -> None:
    settings = SourceSettings(
        alphavantage_api_key=SecretStr(KEY),
        alphavantage_base_url="http://127.0.0.1:9/query",
        http_timeout_s=2,
    )
    with pytest.raises(SourceError, match="unreachable") as caught:
        AlphaVantageClient(settings).history(
            "IBM", interval=Interval.D1, start=_utc(2024, 1, 1), end=_utc(2024, 2, 1)
        )
    assert KEY not in "".join(traceback.format_exception(caught.value))


def test_missing_key_says_which_variable_to_set(alphavantage_server) -> None:
    settings = SourceSettings(alphavantage_base_url=alphavantage_server[0])
    with pytest.raises(SourceError, match=API_KEY_VARIABLE):
        AlphaVantageClient(settings).history(
            "IBM", interval=Interval.D1, start=_utc(2024, 1, 1), end=_utc(2024, 2, 1)
        )
    assert API_KEY_VARIABLE == "FINANCELAKE_SOURCES__ALPHAVANTAGE_API_KEY"


def test_key_is_never_logged(client, caplog) -> None:
    caplog.set_level("DEBUG")
    client.history("IBM", interval=Interval.D1, start=_utc(2024, 1, 1), end=_utc(2024, 3, 1))
    assert caplog.records
    assert all(KEY not in json.dumps(r.__dict__, default=str) for r in caplog.records)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (dt.datetime(2024, 1, 1), _utc(2024, 2, 1)),
        (_utc(2024, 2, 1), _utc(2024, 1, 1)),
    ],
)
def test_bad_range_is_invalid_input(client, start, end) -> None:
    with pytest.raises(InvalidInput):
        client.history("IBM", interval=Interval.D1, start=start, end=end)


def test_rate_limiter_allows_n_per_minute_then_waits() -> None:
    clock = FakeClock()
    limiter = RateLimiter(5, clock=clock, sleep=clock.sleep)
    waits = [limiter.acquire() for _ in range(7)]
    assert waits[:5] == [0.0] * 5
    # The 6th waits until the first five (all at t=0) leave the 60 s window; the 7th joins it.
    assert waits[5] == pytest.approx(60.0)
    assert waits[6] == 0.0
    clock.now += 30
    assert [limiter.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    # Five calls in the window (two at t=60, three at t=90): wait until t=120.
    assert limiter.acquire() == pytest.approx(30.0)


def test_rate_limiter_fractional_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(0.5, clock=clock, sleep=clock.sleep)
    assert limiter.acquire() == 0.0
    assert limiter.acquire() == pytest.approx(120.0)


def test_client_calls_go_through_the_limiter(alphavantage_server) -> None:
    clock = FakeClock()
    settings = SourceSettings(
        alphavantage_api_key=SecretStr(KEY),
        alphavantage_base_url=alphavantage_server[0],
        alphavantage_requests_per_minute=2,
    )
    client = AlphaVantageClient(settings, limiter=RateLimiter(2, clock=clock, sleep=clock.sleep))
    client.history("IBM", interval=Interval.M5, start=_utc(2024, 1, 2), end=_utc(2024, 3, 12))
    # Three monthly calls at 2/min: the third waited for the window.
    assert clock.sleeps == [pytest.approx(60.0)]
