"""Bars, dividends and splits from Yahoo Finance, through yfinance's `Ticker.history`.

yfinance does the HTTP (Yahoo's v8 chart API, with its cookie and crumb handshake) and the
parsing; this module turns its DataFrame into our numpy `Bars` and `CorporateActions` and
its failures into `SourceError`.

Two yfinance settings are process-wide, and `YahooClient` sets them once, deliberately:

* `yf.config.debug.hide_exceptions = False`. By default yfinance logs failures and returns
  an empty frame, so a network outage would look like "no data"; raising is the
  replacement its docs give for the deprecated `raise_errors=True`.
* `yf.set_tz_cache_location(cache_dir)` when given (despite its name it moves every
  yfinance cache): yfinance keeps SQLite ticker→timezone and cookie caches, by default
  under the user's cache folder, which a read-only container may not have.

Times: intraday bars keep Yahoo's exact start instants, in UTC. Daily and weekly bars (and
dividend/split days) are stamped midnight UTC of their exchange-local date, the convention
every daily bar in FinanceLake follows (a CSV date, an Alpha Vantage date). Weekly bars
start on Monday, as Yahoo reports them.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yfinance as yf
from yfinance import exceptions as yf_errors

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

if TYPE_CHECKING:
    import requests
    from curl_cffi import requests as curl_requests

    Session = requests.Session | curl_requests.Session[curl_requests.Response]

YAHOO_INTERVALS: dict[Interval, str] = {
    Interval.M1: "1m",
    Interval.M5: "5m",
    Interval.M15: "15m",
    Interval.M30: "30m",
    Interval.H1: "1h",
    Interval.D1: "1d",
    Interval.WK1: "1wk",
}
"""Our interval → yfinance's name for it (yfinance fetches 30m as 15m and resamples)."""

_NANOS_PER_DAY = 86_400 * NANOS_PER_SECOND
_PRICES = ("Open", "High", "Low", "Close", "Volume")
_BLAME_ORDER = ("Close", "Open", "High", "Low", "Volume")
_configure_lock = threading.Lock()


@dataclass(frozen=True, eq=False)
class YahooHistory:
    """Bars of one symbol for the requested range, with the dividends and splits in it."""

    bars: Bars
    actions: CorporateActions
    problems: list[RowProblem]
    """Rows Yahoo sent with a missing or non-finite price, left out of `bars`."""


class YahooClient:
    """Reads history from Yahoo Finance; blocking, so async callers run it in a thread."""

    def __init__(
        self,
        *,
        session: Session | None = None,
        timeout_s: float = 30.0,
        cache_dir: Path | None = None,
    ) -> None:
        """
        Args:
            session: A `curl_cffi` or `requests` Session for yfinance to use (yfinance
                accepts only those two); None lets yfinance make its own `curl_cffi` one.
                yfinance keeps one shared session per process, so the latest given wins.
            timeout_s: Per-request HTTP timeout.
            cache_dir: Where yfinance keeps its timezone/cookie cache (process-wide).
        """
        self._session = session
        self._timeout_s = timeout_s
        with _configure_lock:
            yf.config.debug.hide_exceptions = False
            if cache_dir is not None:
                cache_dir.mkdir(parents=True, exist_ok=True)
                yf.set_tz_cache_location(str(cache_dir))

    def history(
        self,
        symbol: str,
        *,
        interval: Interval,
        start: dt.datetime,
        end: dt.datetime,
        adjusted: bool = True,
        prepost: bool = False,
    ) -> YahooHistory:
        """Bars with start in [start, end), oldest first, plus that range's dividends/splits.

        Args:
            symbol: Yahoo symbol (`AAPL`, `BRK-B`, `^GSPC`, `EURUSD=X`).
            interval: Bar width; Yahoo keeps 1m for ~30 days, other intraday for ~60 days.
            start: Inclusive, timezone-aware.
            end: Exclusive, timezone-aware.
            adjusted: Split and dividend adjusted OHLC (yfinance `auto_adjust=True`).
            prepost: Include pre- and post-market intraday bars.

        Raises:
            InvalidInput: A naive or empty time range.
            SourceError: Unknown symbol, no bars in the range, Yahoo unreachable, refusing
                or rate limiting.
        """
        _check_range(start, end)
        ticker = yf.Ticker(symbol, session=self._session)
        try:
            frame = ticker.history(
                interval=YAHOO_INTERVALS[interval],
                start=start.astimezone(dt.UTC),
                end=end.astimezone(dt.UTC),
                auto_adjust=adjusted,
                actions=True,
                prepost=prepost,
                repair=False,
                timeout=self._timeout_s,
            )
        except Exception as error:
            raise _source_error(symbol, error) from error
        if frame is None or frame.empty:
            raise SourceError(
                f"Yahoo Finance returned no {interval.value} bars for {symbol} between "
                f"{start.isoformat()} and {end.isoformat()} (unknown or delisted symbol, "
                "no trading in the range, or an intraday range older than Yahoo keeps)"
            )
        history = _history(symbol, interval, adjusted, frame, start, end)
        if not len(history.bars):
            raise SourceError(
                f"Yahoo Finance returned no usable {interval.value} bars for {symbol} between "
                f"{start.isoformat()} and {end.isoformat()}"
            )
        return history


def _source_error(symbol: str, error: Exception) -> SourceError:
    """yfinance's and the HTTP stack's exceptions, phrased for the caller."""
    if isinstance(error, yf_errors.YFRateLimitError):
        return SourceError(f"Yahoo Finance rate limited this client (HTTP 429) for {symbol}")
    if isinstance(error, yf_errors.YFTickerMissingError):
        return SourceError(f"Yahoo Finance has no data for {symbol}: {error}")
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(status, int):
        if status == 404:
            return SourceError(f"Yahoo Finance does not know the symbol {symbol} (HTTP 404)")
        if status == 429:
            return SourceError(f"Yahoo Finance rate limited this client (HTTP 429) for {symbol}")
        return SourceError(f"Yahoo Finance answered HTTP {status} for {symbol}")
    return SourceError(
        f"Yahoo Finance request for {symbol} failed: {type(error).__name__}: {error}"
    )


def _history(
    symbol: str,
    interval: Interval,
    adjusted: bool,
    frame: Any,
    start: dt.datetime,
    end: dt.datetime,
) -> YahooHistory:
    """The yfinance DataFrame (exchange-time DatetimeIndex) as our columns."""
    daily = interval in (Interval.D1, Interval.WK1)
    local = frame.index
    utc_ns = _ns(local.tz_convert("UTC").tz_localize(None))
    # The exchange-local wall clock read as if UTC, floored to the day: the local date at
    # midnight UTC. Daily bars, and every event day, are stamped that way.
    day_ns = _ns(local.tz_localize(None))
    day_ns -= day_ns % _NANOS_PER_DAY
    time_ns = day_ns if daily else utc_ns

    prices = {name: _floats(frame[name]) for name in _PRICES}
    finite = np.logical_and.reduce([np.isfinite(column) for column in prices.values()])
    problems = [
        RowProblem(
            0,
            # Close first: adjusting divides by it, so a missing close blanks every price.
            next(n.lower() for n in _BLAME_ORDER if not np.isfinite(prices[n][row])),
            "missing or non-finite in Yahoo's data",
            int(time_ns[row]),
        )
        for row in np.flatnonzero(~finite).tolist()
    ]
    # yfinance trims to its request window; this keeps exactly [start, end) of our stamps
    # (a daily range starting mid-day keeps its own day, as with Alpha Vantage).
    start_ns = _datetime_ns(start)
    if daily:
        start_ns -= start_ns % _NANOS_PER_DAY
    keep = finite & (time_ns >= start_ns) & (time_ns < _datetime_ns(end))
    order = np.argsort(time_ns[keep], kind="stable")
    n = int(keep.sum())
    bars = Bars(
        symbol=symbol,
        interval=interval,
        source=BarSource.YAHOO,
        start_time_ns=time_ns[keep][order],
        open=prices["Open"][keep][order],
        high=prices["High"][keep][order],
        low=prices["Low"][keep][order],
        close=prices["Close"][keep][order],
        volume=prices["Volume"][keep][order],
        vwap=np.zeros(n, dtype=np.float64),
        trade_count=np.zeros(n, dtype=np.int64),
        adjusted=adjusted,
    )
    return YahooHistory(bars=bars, actions=_actions(symbol, frame, day_ns), problems=problems)


def _actions(symbol: str, frame: Any, day_ns: Int64s) -> CorporateActions:
    columns = set(frame.columns)
    n = len(day_ns)
    dividend = _floats(frame["Dividends"]) if "Dividends" in columns else np.zeros(n)
    # yfinance writes 0 where there is no split; ours is the neutral ratio 1.
    split = _floats(frame["Stock Splits"]) if "Stock Splits" in columns else np.zeros(n)
    dividend = np.nan_to_num(dividend)
    split = np.nan_to_num(split)
    event = (dividend != 0) | (split != 0)
    if not event.any():
        return CorporateActions.empty(symbol)
    # Intraday frames carry an event on a bar of its day; one row per day is enough.
    days, first = np.unique(day_ns[event], return_index=True)
    return CorporateActions(
        symbol=symbol,
        time_ns=days,
        dividend=dividend[event][first],
        split_ratio=np.where(split[event][first] != 0, split[event][first], 1.0),
    )


def _ns(naive_index: Any) -> Int64s:
    """A tz-naive DatetimeIndex as int64 nanoseconds (pandas 3 may hold it in µs)."""
    values = np.asarray(naive_index.values).astype("datetime64[ns]")
    return values.view(np.int64)


def _floats(column: Any) -> Float64s:
    return np.asarray(column.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def _datetime_ns(moment: dt.datetime) -> int:
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * NANOS_PER_SECOND + delta.microseconds * 1000


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
