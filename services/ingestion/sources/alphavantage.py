"""Bars from the Alpha Vantage REST API (https://www.alphavantage.co/documentation/).

Which API function serves which of our intervals:

* 1m, 5m, 15m, 30m, 1h → `TIME_SERIES_INTRADAY` (`1min` ... `60min`), one call per calendar
  month of the requested range (`month=YYYY-MM`, `outputsize=full`), `adjusted` passed
  through (Alpha Vantage adjusts intraday prices itself);
* 1d → `TIME_SERIES_DAILY_ADJUSTED` when adjusted (a premium function on Alpha Vantage's
  side; a free key gets a clear refusal) else `TIME_SERIES_DAILY`, with `outputsize=full`;
* 1wk → `TIME_SERIES_WEEKLY_ADJUSTED` or `TIME_SERIES_WEEKLY` (full history, free).

For the adjusted daily and weekly functions Alpha Vantage sends raw OHLC plus an adjusted
close; prices are scaled by adjusted close / close, the usual back-adjustment (yfinance's
`auto_adjust` does the same), and dividends (and daily splits) come back as
`CorporateActions`.

Times: intraday keys are local times of the series' zone (`"6. Time Zone": "US/Eastern"`)
labelling the bar's start; they are converted to UTC. Daily keys are trading dates, stamped
midnight UTC like every daily bar in FinanceLake. Weekly keys are the week's last trading
day; the bar is stamped midnight UTC of that week's Monday, as Yahoo stamps weekly bars.

Errors Alpha Vantage reports inside a 200 body (`Error Message` for a bad symbol or call,
`Note`/`Information` for rate and plan limits) become `SourceError`. The API key rides in
the query string, so no URL is ever logged or put in an exception.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import logging
import math
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from financelake.services.errors import FieldViolation, InvalidInput
from financelake.services.ingestion.records import (
    NANOS_PER_SECOND,
    Bars,
    BarSource,
    Float64s,
    Int64s,
    Interval,
)
from financelake.services.ingestion.sources import RowProblem, SourceError
from financelake.services.ingestion.sources.corporate_actions import CorporateActions
from financelake.services.settings import SourceSettings

logger = logging.getLogger(__name__)

API_KEY_VARIABLE = "FINANCELAKE_SOURCES__ALPHAVANTAGE_API_KEY"

INTRADAY_INTERVALS: dict[Interval, str] = {
    Interval.M1: "1min",
    Interval.M5: "5min",
    Interval.M15: "15min",
    Interval.M30: "30min",
    Interval.H1: "60min",
}
_DAILY = {True: "TIME_SERIES_DAILY_ADJUSTED", False: "TIME_SERIES_DAILY"}
_WEEKLY = {True: "TIME_SERIES_WEEKLY_ADJUSTED", False: "TIME_SERIES_WEEKLY"}
_SECONDS_PER_DAY = 86_400
_REQUIRED = ("open", "high", "low", "close", "volume")


class RateLimiter:
    """At most `per_minute` calls in any minute, waiting (blocking) for a free slot.

    A sliding window rather than a token bucket: Alpha Vantage counts calls per minute, and
    a bucket refilled continuously would let a burst plus one refill land in the same minute.
    A fractional rate (0.5/min) becomes one call per 120 s. `clock` and `sleep` are
    injectable so tests need not wait; the lock makes one limiter safe to share across
    threads (the sources are blocking code the servicer runs off the event loop).
    """

    def __init__(
        self,
        per_minute: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_minute <= 0:
            raise ValueError(f"per_minute must be positive, got {per_minute}")
        self._calls = max(1, math.floor(per_minute))
        self._window_s = 60.0 * self._calls / per_minute
        self._clock = clock
        self._sleep = sleep
        self._recent: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take a slot, sleeping first if the window is full; returns the seconds waited."""
        waited = 0.0
        with self._lock:
            while True:
                now = self._clock()
                while self._recent and now - self._recent[0] >= self._window_s:
                    self._recent.popleft()
                if len(self._recent) < self._calls:
                    self._recent.append(now)
                    return waited
                pause = self._recent[0] + self._window_s - now
                self._sleep(pause)
                waited += pause


@dataclass(frozen=True, eq=False)
class AlphaVantageHistory:
    """Bars of one symbol for the requested range, with the events Alpha Vantage sent."""

    bars: Bars
    actions: CorporateActions
    """Dividends and splits in the range (only the adjusted daily/weekly functions send any)."""
    problems: list[RowProblem]
    """Rows Alpha Vantage sent that were unusable (unreadable or non-finite), left out."""


class AlphaVantageClient:
    """Blocking Alpha Vantage client: one instance per process, sharing its rate limiter."""

    def __init__(self, settings: SourceSettings, *, limiter: RateLimiter | None = None) -> None:
        self._settings = settings
        self._limiter = limiter or RateLimiter(settings.alphavantage_requests_per_minute)

    def history(
        self,
        symbol: str,
        *,
        interval: Interval,
        start: dt.datetime,
        end: dt.datetime,
        adjusted: bool = True,
        extended_hours: bool = False,
    ) -> AlphaVantageHistory:
        """Bars with start time in [start, end), oldest first.

        Args:
            symbol: Alpha Vantage symbol (`IBM`, `TSCO.LON`).
            interval: Bar width; every `Interval` is served.
            start: Inclusive, timezone-aware.
            end: Exclusive, timezone-aware.
            adjusted: Split/dividend adjusted prices.
            extended_hours: Include pre- and post-market intraday bars.

        Raises:
            InvalidInput: A naive or empty time range.
            SourceError: No API key, Alpha Vantage unreachable, refusing or rate limiting.
        """
        _check_range(start, end)
        if interval in INTRADAY_INTERVALS:
            payloads = [
                self.query(
                    {
                        "function": "TIME_SERIES_INTRADAY",
                        "symbol": symbol,
                        "interval": INTRADAY_INTERVALS[interval],
                        "month": month,
                        "outputsize": "full",
                        "adjusted": _flag(adjusted),
                        "extended_hours": _flag(extended_hours),
                    }
                )
                for month in _months(start, end)
            ]
        elif interval is Interval.D1:
            payloads = [
                self.query({"function": _DAILY[adjusted], "symbol": symbol, "outputsize": "full"})
            ]
        else:
            payloads = [self.query({"function": _WEEKLY[adjusted], "symbol": symbol})]
        series = _merge([_parse(payload, interval) for payload in payloads])
        return _history(symbol, interval, adjusted, series, start, end)

    def query(self, params: Mapping[str, str]) -> dict[str, Any]:
        """One API call (after the rate limiter allows it): the decoded JSON body.

        Raises:
            SourceError: No key configured, transport failure, non-JSON body, or an error
                Alpha Vantage put in the body.
        """
        key = self._settings.alphavantage_api_key
        secret = key.get_secret_value() if key is not None else ""
        if not secret:
            raise SourceError(
                f"Alpha Vantage needs an API key: set {API_KEY_VARIABLE} "
                "(a free key: https://www.alphavantage.co/support/#api-key)"
            )
        what = " ".join(v for k, v in params.items() if k in ("function", "symbol", "month"))
        base_url = self._settings.alphavantage_base_url
        waited = self._limiter.acquire()
        logger.info("Alpha Vantage request", extra={"call": what, "rate_wait_s": round(waited, 3)})
        request = urllib.request.Request(
            f"{base_url}?{urllib.parse.urlencode({**params, 'apikey': secret})}",
            headers={"Accept": "application/json", "User-Agent": "financelake"},
        )
        # `from None` throughout: urllib's exceptions carry the URL, and with it the key.
        try:
            with urllib.request.urlopen(request, timeout=self._settings.http_timeout_s) as reply:
                body = reply.read()
        except urllib.error.HTTPError as error:
            status = error.code
            error.close()
            hint = " (rate limited)" if status == 429 else ""
            raise SourceError(f"Alpha Vantage answered HTTP {status}{hint} to {what}") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", None) or type(error).__name__
            raise SourceError(f"Alpha Vantage unreachable at {base_url}: {reason}") from None
        try:
            payload = json.loads(body)
        except ValueError:
            raise SourceError(f"Alpha Vantage sent a body that is not JSON for {what}") from None
        if not isinstance(payload, dict):
            raise SourceError(f"Alpha Vantage sent unexpected JSON for {what}")
        _raise_for_body_error(payload, what, secret)
        return payload


def _raise_for_body_error(payload: Mapping[str, Any], what: str, secret: str) -> None:
    """Alpha Vantage answers 200 even when refusing; the reason sits in the body."""
    for key, kind in (
        ("Error Message", "refused"),
        ("Note", "rate limit reached"),
        ("Information", "refused (rate or plan limit)"),
    ):
        message = payload.get(key)
        if message is not None:
            text = str(message).replace(secret, "***")
            raise SourceError(f"Alpha Vantage {kind} for {what}: {text}")


# ---- parsing ------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Series:
    """One response (or several merged) as columns, oldest first."""

    time_ns: Int64s
    columns: dict[str, Float64s]
    """open, high, low, close, volume, and when sent: adjusted close, dividend, split."""
    problems: list[RowProblem]


def _parse(payload: Mapping[str, Any], interval: Interval) -> _Series:
    meta = payload.get("Meta Data")
    series = [value for key, value in payload.items() if key != "Meta Data"]
    if not isinstance(meta, dict) or len(series) != 1 or not isinstance(series[0], dict):
        raise SourceError(f"Alpha Vantage sent an unexpected layout (keys: {', '.join(payload)})")
    rows: dict[str, Any] = series[0]
    zone = _zone(meta) if interval in INTRADAY_INTERVALS else None
    times: list[int] = []
    values: dict[str, list[float]] = collections.defaultdict(list)
    for name in _REQUIRED:
        values[name] = []
    problems: list[RowProblem] = []
    for stamp, fields in rows.items():
        try:
            when = _time_ns(stamp, interval, zone)
        except ValueError:
            problems.append(RowProblem(0, "time", f"unreadable time {stamp!r}"))
            continue
        try:
            # "1. open" → "open", "5. adjusted close" → "adjusted close".
            row = {name.split(". ", 1)[-1]: float(text) for name, text in fields.items()}
        except (AttributeError, TypeError, ValueError):
            problems.append(RowProblem(0, "", f"unreadable values {fields!r}", when))
            continue
        missing = set(_REQUIRED) - row.keys()
        if missing:
            problems.append(RowProblem(0, sorted(missing)[0], "missing value", when))
            continue
        bad = [name for name, value in row.items() if not math.isfinite(value)]
        if bad:
            problems.append(RowProblem(0, bad[0], "not finite", when))
            continue
        times.append(when)
        for name, value in row.items():
            values[name].append(value)
    order = np.argsort(np.array(times, dtype=np.int64), kind="stable")
    return _Series(
        time_ns=np.array(times, dtype=np.int64)[order],
        columns={
            name: np.array(column, dtype=np.float64)[order] for name, column in values.items()
        },
        problems=problems,
    )


def _zone(meta: Mapping[str, Any]) -> ZoneInfo:
    # The key's number varies by function ("6. Time Zone" intraday, "5." daily, "4." weekly).
    names = [value for key, value in meta.items() if key.endswith("Time Zone")]
    if not names:
        raise SourceError("Alpha Vantage sent intraday data without its time zone")
    try:
        return ZoneInfo(str(names[0]))
    except (ZoneInfoNotFoundError, ValueError):
        raise SourceError(f"Alpha Vantage sent an unknown time zone {names[0]!r}") from None


def _time_ns(stamp: str, interval: Interval, zone: ZoneInfo | None) -> int:
    if zone is not None:
        local = dt.datetime.fromisoformat(stamp).replace(tzinfo=zone)
        return _ns(local)
    day = dt.date.fromisoformat(stamp)
    if interval is Interval.WK1:
        day -= dt.timedelta(days=day.weekday())
    return (day - dt.date(1970, 1, 1)).days * _SECONDS_PER_DAY * NANOS_PER_SECOND


def _ns(moment: dt.datetime) -> int:
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * _SECONDS_PER_DAY + delta.seconds) * NANOS_PER_SECOND + (
        delta.microseconds * 1000
    )


def _merge(parts: list[_Series]) -> _Series:
    if len(parts) == 1:
        return parts[0]
    names = set.intersection(*(set(part.columns) for part in parts)) if parts else set()
    time_ns = np.concatenate([part.time_ns for part in parts])
    columns = {name: np.concatenate([part.columns[name] for part in parts]) for name in names}
    # Months do not overlap, but a re-sent boundary bar must not appear twice.
    time_ns, first = np.unique(time_ns, return_index=True)
    return _Series(
        time_ns=time_ns,
        columns={name: column[first] for name, column in columns.items()},
        problems=[problem for part in parts for problem in part.problems],
    )


def _history(
    symbol: str,
    interval: Interval,
    adjusted: bool,
    series: _Series,
    start: dt.datetime,
    end: dt.datetime,
) -> AlphaVantageHistory:
    start_ns, end_ns = _ns(start), _ns(end)
    if interval in (Interval.D1, Interval.WK1):
        # Daily and weekly bars are stamped at midnight UTC: a range starting mid-day still
        # includes its own day, as a caller asking "from Jan 2 14:30" means that session.
        start_ns -= start_ns % (_SECONDS_PER_DAY * NANOS_PER_SECOND)
    keep = (series.time_ns >= start_ns) & (series.time_ns < end_ns)
    columns = {name: column[keep] for name, column in series.columns.items()}
    time_ns = series.time_ns[keep]
    open_, high, low, close = (columns[name] for name in ("open", "high", "low", "close"))
    if adjusted and "adjusted close" in columns:
        ratio = np.divide(
            columns["adjusted close"], close, out=np.ones_like(close), where=close != 0
        )
        open_, high, low, close = open_ * ratio, high * ratio, low * ratio, close * ratio
    n = len(time_ns)
    bars = Bars(
        symbol=symbol,
        interval=interval,
        source=BarSource.ALPHAVANTAGE,
        start_time_ns=time_ns,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=columns["volume"],
        vwap=np.zeros(n, dtype=np.float64),
        trade_count=np.zeros(n, dtype=np.int64),
        adjusted=adjusted,
    )
    dividend = columns.get("dividend amount", np.zeros(n, dtype=np.float64))
    split = columns.get("split coefficient", np.ones(n, dtype=np.float64))
    # Alpha Vantage writes 1.0 (no split) on every day; only real events are kept.
    event = (dividend != 0) | (split != 1)
    actions = CorporateActions(
        symbol=symbol,
        # Weekly rows carry the week's dividend; its exact day is unknown, so the week's
        # Monday (the bar's start) stands in for it.
        time_ns=time_ns[event],
        dividend=dividend[event],
        split_ratio=split[event],
    )
    return AlphaVantageHistory(bars=bars, actions=actions, problems=series.problems)


def _check_range(start: dt.datetime, end: dt.datetime) -> None:
    violations = [
        FieldViolation(name, "must carry a time zone")
        for name, value in (("start", start), ("end", end))
        if value.tzinfo is None or value.utcoffset() is None
    ]
    if not violations and end <= start:
        violations.append(FieldViolation("end", "must be after start"))
    if violations:
        raise InvalidInput("invalid history range", violations=violations)


def _months(start: dt.datetime, end: dt.datetime) -> Iterator[str]:
    """Every YYYY-MM (US/Eastern, Alpha Vantage's intraday zone) the range touches."""
    eastern = ZoneInfo("US/Eastern")
    first = start.astimezone(eastern)
    last = (end - dt.timedelta(microseconds=1)).astimezone(eastern)
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        yield f"{year:04d}-{month:02d}"
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def _flag(value: bool) -> str:
    return "true" if value else "false"
