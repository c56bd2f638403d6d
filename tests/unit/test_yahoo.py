"""Yahoo source: yfinance's real code parsing recorded v8 chart API bodies, no network.

yfinance accepts a `requests.Session` in place of its curl_cffi one, so the test hands it a
real Session whose transport adapter answers every https:// request from
tests/data/sources/yahoo/ (bodies hand-built in Yahoo's documented chart format). Every
request yfinance makes goes through it, the cookie/crumb handshake included:

* `https://fc.yahoo.com` (cookie) → 404, no cookie, as when Yahoo is unreachable;
* `/v1/test/getcrumb` → a crumb, which yfinance then sends on each chart request;
* `guce.yahoo.com/consent` (its fallback cookie strategy after a 4xx) → 404;
* `/v8/finance/chart/<symbol>` → the recorded body (or 404 / 429 / a connection error);
* `/v10/finance/quoteSummary/<symbol>` (its timezone fallback for unknown symbols) → 404.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
import requests
import requests.adapters
import yfinance as yf

from financelake.services.errors import InvalidInput
from financelake.services.ingestion.records import BarSource, Interval
from financelake.services.ingestion.sources import SourceError
from financelake.services.ingestion.sources.yahoo import YAHOO_INTERVALS, YahooClient
from tests.fixtures.yahoo import CRUMB, RECORDED, RecordedYahoo, forget_yahoo_session

pytestmark = pytest.mark.unit

S = 1_000_000_000


@pytest.fixture(scope="module", autouse=True)
def isolated_yfinance_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # yfinance keeps a ticker→timezone SQLite cache; a test must neither read the user's
    # nor leave recorded answers in it.
    YahooClient(cache_dir=tmp_path_factory.mktemp("yfinance-cache"))


@pytest.fixture
def transport() -> RecordedYahoo:
    adapter = RecordedYahoo()
    forget_yahoo_session()
    return adapter


@pytest.fixture
def client(transport: RecordedYahoo) -> YahooClient:
    session = requests.Session()
    session.mount("https://", transport)
    session.mount("http://", transport)
    return YahooClient(session=session, timeout_s=5)


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC)


def _ns(*args: int) -> int:
    return int(_utc(*args).timestamp()) * S


def _days(*days: tuple[int, int, int]) -> list[int]:
    return [_ns(*day) for day in days]


def _recorded(name: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((RECORDED / name).read_text())
    return loaded


def test_daily_adjusted_bars_and_dividend(client, transport) -> None:
    history = client.history(
        "AAPL", interval=Interval.D1, start=_utc(2024, 2, 7), end=_utc(2024, 2, 13)
    )
    bars = history.bars
    assert bars.symbol == "AAPL"
    assert bars.source is BarSource.YAHOO
    assert bars.adjusted
    # Daily bars stamped midnight UTC of the New York trading date.
    assert bars.start_time_ns.tolist() == _days(
        (2024, 2, 7), (2024, 2, 8), (2024, 2, 9), (2024, 2, 12)
    )
    # auto_adjust: every price scaled by adjclose / close (189.17 / 189.41 on Feb 7).
    ratio = 189.17 / 189.41
    assert bars.close[0] == pytest.approx(189.17)
    assert bars.open[0] == pytest.approx(190.00 * ratio)
    assert bars.high[0] == pytest.approx(191.05 * ratio)
    assert bars.low[0] == pytest.approx(188.61 * ratio)
    assert bars.close[2:].tolist() == pytest.approx([188.85, 187.15])
    assert bars.volume.tolist() == [53439000, 40962000, 45155200, 41781900]
    assert bars.vwap.tolist() == [0.0] * 4
    assert bars.trade_count.tolist() == [0] * 4
    actions = history.actions
    assert actions.time_ns.tolist() == _days((2024, 2, 9))
    assert actions.dividend.tolist() == [0.24]
    assert actions.split_ratio.tolist() == [1.0]
    assert history.problems == []

    # What yfinance really asked: the cookie/crumb handshake, then the chart API with the
    # crumb, our range as epoch seconds, the interval and the events.
    hosts = [host for host, _, _ in transport.requests]
    assert hosts[0] == "fc.yahoo.com"
    assert ("query1.finance.yahoo.com", "/v1/test/getcrumb", {}) in transport.requests
    chart = transport.charts()[-1]
    assert chart["interval"] == "1d"
    assert chart["crumb"] == CRUMB
    assert chart["events"] == "div,splits,capitalGains"
    assert int(chart["period1"]) == int(_utc(2024, 2, 7).timestamp())
    assert int(chart["period2"]) == int(_utc(2024, 2, 13).timestamp())


def test_daily_unadjusted_keeps_raw_prices(client) -> None:
    history = client.history(
        "AAPL", interval=Interval.D1, start=_utc(2024, 2, 7), end=_utc(2024, 2, 13), adjusted=False
    )
    raw = _recorded("chart_AAPL_1d.json")["chart"]["result"][0]["indicators"]["quote"][0]  # type: ignore[index]
    assert history.bars.close.tolist() == raw["close"]
    assert history.bars.open.tolist() == raw["open"]
    assert not history.bars.adjusted
    assert history.actions.dividend.tolist() == [0.24]


def test_split_is_reported_as_ratio(client) -> None:
    history = client.history(
        "NVDA", interval=Interval.D1, start=_utc(2024, 6, 6), end=_utc(2024, 6, 12)
    )
    assert history.bars.start_time_ns.tolist() == _days(
        (2024, 6, 6), (2024, 6, 7), (2024, 6, 10), (2024, 6, 11)
    )
    assert history.actions.time_ns.tolist() == _days((2024, 6, 10))
    assert history.actions.split_ratio.tolist() == [10.0]
    assert history.actions.dividend.tolist() == [0.0]


def test_intraday_keeps_exact_utc_instants_and_reports_gaps(client, transport) -> None:
    history = client.history(
        "AAPL", interval=Interval.M5, start=_utc(2024, 2, 8, 14), end=_utc(2024, 2, 8, 21)
    )
    assert transport.charts()[-1]["interval"] == "5m"
    assert transport.charts()[-1]["includePrePost"] == "False"
    bars = history.bars
    # 09:30 and 09:35 New York (EST) are 14:30 and 14:35 UTC; the 09:40 bar had no close.
    assert bars.start_time_ns.tolist() == [
        _ns(2024, 2, 8, 14, 30),
        _ns(2024, 2, 8, 14, 35),
        _ns(2024, 2, 8, 14, 45),
    ]
    assert bars.close.tolist() == pytest.approx([188.91, 188.72, 188.55])
    assert len(history.problems) == 1
    assert history.problems[0].time_ns == _ns(2024, 2, 8, 14, 40)
    assert history.problems[0].field == "close"


def test_intraday_range_is_half_open(client) -> None:
    bars = client.history(
        "AAPL", interval=Interval.M5, start=_utc(2024, 2, 8, 14, 35), end=_utc(2024, 2, 8, 14, 45)
    ).bars
    assert bars.start_time_ns.tolist() == [_ns(2024, 2, 8, 14, 35)]


def test_unknown_symbol_is_a_source_error(client) -> None:
    with pytest.raises(SourceError, match="NOPE"):
        client.history("NOPE", interval=Interval.D1, start=_utc(2024, 2, 7), end=_utc(2024, 2, 13))


def test_empty_range_is_a_source_error(client) -> None:
    with pytest.raises(SourceError, match=r"no (usable )?1d bars for AAPL"):
        client.history("AAPL", interval=Interval.D1, start=_utc(2023, 1, 2), end=_utc(2023, 1, 6))


def test_rate_limiting_is_a_source_error(client) -> None:
    with pytest.raises(SourceError, match="rate limited"):
        client.history("BUSY", interval=Interval.D1, start=_utc(2024, 2, 7), end=_utc(2024, 2, 13))


def test_connection_failure_is_a_source_error(client) -> None:
    with pytest.raises(SourceError, match=r"DOWN.*ConnectionError"):
        client.history("DOWN", interval=Interval.D1, start=_utc(2024, 2, 7), end=_utc(2024, 2, 13))


def test_naive_range_is_invalid_input(client) -> None:
    with pytest.raises(InvalidInput):
        client.history(
            "AAPL", interval=Interval.D1, start=dt.datetime(2024, 2, 7), end=_utc(2024, 2, 13)
        )


def test_every_interval_has_a_yfinance_name() -> None:
    assert set(YAHOO_INTERVALS) == set(Interval)
    assert YAHOO_INTERVALS[Interval.H1] == "1h"
    assert YAHOO_INTERVALS[Interval.WK1] == "1wk"


def test_client_makes_yfinance_raise_instead_of_returning_empty() -> None:
    assert yf.config.debug.hide_exceptions is False
