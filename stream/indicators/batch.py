"""Batch technical indicators over a whole bar series, following TA-Lib's conventions.

Every function takes float64 columns (anything `np.asarray` accepts), returns arrays
of the input's length, and puts NaN wherever TA-Lib would produce no output (its
"lookback"), so `result[i]` always belongs to bar `i`. The recursive indicators (EMA,
RSI, MACD, ATR) run a plain Python loop over floats: each step depends on the previous
one, numpy has no scan for that recurrence, and a closed form with powers of (1 - k)
underflows. Python floats are IEEE doubles, so the loop performs exactly the
arithmetic the incremental states in `incremental.py` perform, bar for bar.

Conventions (TA-Lib 0.4/0.6 with its defaults: TA_COMPATIBILITY_DEFAULT, unstable
period 0):

* SMA(n): first value at index n - 1.
* EMA(n): k = 2 / (n + 1); seed = SMA of the first n values at index n - 1;
  then ema = (x - ema) * k + ema.
* RSI(n): n changes are needed, first value at index n; the first average gain/loss
  is the simple mean of the first n changes, then Wilder: avg = (avg * (n - 1) + x) / n.
  RSI = 100 * gain / (gain + loss), and 0 when both averages are zero (TA-Lib's choice
  for a flat market).
* MACD(fast, slow, signal): TA-Lib seeds the fast EMA at index slow - fast, so both
  EMAs start together at index slow - 1 (this differs from a stand-alone EMA(fast));
  the signal EMA is seeded with the SMA of the first `signal` MACD values; all three
  outputs start at index slow + signal - 2 (33 for 12/26/9).
* BBANDS(n, k): middle = SMA(n), bands = middle +- k * population std (ddof = 0).
* ATR(n): true range from index 1; first ATR at index n is the mean of TR[1..n], then
  Wilder smoothing.
* OBV: starts at volume[0]; +volume on an up close, -volume on a down close.
* STOCH(14, 3, 3) with SMA smoothing: fast %K = 100 * (C - LL) / (HH - LL) over
  `fastk` bars (0 when HH == LL, as TA-Lib), slow %K = SMA(slowk) of fast %K,
  slow %D = SMA(slowd) of slow %K; both outputs start where slow %D does,
  index fastk + slowk + slowd - 3 (17 for 14/3/3).

Not in TA-Lib (so the definitions are ours): `simple_returns`, `log_returns` (NaN at
index 0), `rolling_volatility` (sample std of log returns, first value at index n),
and `vwap` (cumulative over the whole series; NaN while cumulative volume is 0).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from financelake.stream.indicators._window import (
    FloatArray,
    as_float_array,
    check_period,
    rolling_max,
    rolling_min,
    rolling_std,
    rolling_sum,
)

__all__ = [
    "BollingerBands",
    "Macd",
    "Stochastic",
    "atr",
    "bbands",
    "ema",
    "log_returns",
    "macd",
    "obv",
    "rolling_volatility",
    "rsi",
    "simple_returns",
    "sma",
    "stoch",
    "true_range",
    "typical_price",
    "vwap",
]


class Macd(NamedTuple):
    """MACD line (fast EMA - slow EMA), its signal EMA, and their difference."""

    macd: FloatArray
    signal: FloatArray
    histogram: FloatArray


class BollingerBands(NamedTuple):
    """Upper, middle (SMA) and lower band."""

    upper: FloatArray
    middle: FloatArray
    lower: FloatArray


class Stochastic(NamedTuple):
    """Slow %K and slow %D (TA-Lib STOCH outputs)."""

    k: FloatArray
    d: FloatArray


def ema_k(n: int) -> float:
    """TA-Lib's smoothing factor for an n-period EMA."""
    return 2.0 / (n + 1)


def sma(close: npt.ArrayLike, n: int) -> FloatArray:
    """Simple moving average over `n` bars; NaN for the first n - 1."""
    check_period(n)
    return rolling_sum(as_float_array(close, "close"), n) / n


def _ema_tail(values: list[float], seed_start: int, n: int, k: float, out: FloatArray) -> None:
    """Write the TA-Lib EMA of `values` into `out`, seeded at `seed_start`.

    The seed is the sequential sum of values[seed_start : seed_start + n] divided by n
    (the order the incremental state accumulates it in), written at index
    seed_start + n - 1; every later bar applies (x - ema) * k + ema.
    """
    total = 0.0
    for value in values[seed_start : seed_start + n]:
        total += value
    prev = total / n
    first = seed_start + n - 1
    tail = [prev]
    for value in values[first + 1 :]:
        prev = (value - prev) * k + prev
        tail.append(prev)
    out[first:] = tail


def ema(close: npt.ArrayLike, n: int) -> FloatArray:
    """Exponential moving average, TA-Lib seeded (SMA of the first n values)."""
    check_period(n)
    x = as_float_array(close, "close")
    out = np.full(x.shape[0], np.nan)
    if x.shape[0] >= n:
        _ema_tail(x.tolist(), 0, n, ema_k(n), out)
    return out


def rsi(close: npt.ArrayLike, n: int = 14) -> FloatArray:
    """Relative strength index with Wilder smoothing; first value at index n."""
    check_period(n)
    x = as_float_array(close, "close")
    out = np.full(x.shape[0], np.nan)
    if x.shape[0] <= n:
        return out
    changes = np.diff(x).tolist()
    gain = 0.0
    loss = 0.0
    # Seed: plain sums of the first n changes, in order, as TA-Lib accumulates them.
    for change in changes[:n]:
        if change < 0:
            loss -= change
        else:
            gain += change
    gain /= n
    loss /= n
    values = [rsi_value(gain, loss)]
    for change in changes[n:]:
        gain *= n - 1
        loss *= n - 1
        if change < 0:
            loss -= change
        else:
            gain += change
        gain /= n
        loss /= n
        values.append(rsi_value(gain, loss))
    out[n:] = values
    return out


def rsi_value(gain: float, loss: float) -> float:
    """RSI from average gain and loss; 0 for a flat market, as TA-Lib outputs.

    TA-Lib tests the sum against an epsilon of 1e-8 (TA_IS_ZERO); an exact test is
    used here so that instruments priced in tiny units are not reported as flat.
    """
    total = gain + loss
    return 100.0 * (gain / total) if total != 0.0 else 0.0


def macd(close: npt.ArrayLike, fast: int = 12, slow: int = 26, signal: int = 9) -> Macd:
    """MACD, signal and histogram; all three start at index slow + signal - 2."""
    check_period(fast, "fast")
    check_period(signal, "signal")
    if slow <= fast:
        raise ValueError(f"slow ({slow}) must be greater than fast ({fast})")
    x = as_float_array(close, "close")
    size = x.shape[0]
    line = np.full(size, np.nan)
    sig = np.full(size, np.nan)
    start = slow + signal - 2
    if size > start:
        values = x.tolist()
        fast_ema = np.full(size, np.nan)
        slow_ema = np.full(size, np.nan)
        # TA-Lib seeds the fast EMA on the `fast` bars ending where the slow seed ends.
        _ema_tail(values, slow - fast, fast, ema_k(fast), fast_ema)
        _ema_tail(values, 0, slow, ema_k(slow), slow_ema)
        full_line = fast_ema - slow_ema
        _ema_tail(full_line.tolist(), slow - 1, signal, ema_k(signal), sig)
        line[start:] = full_line[start:]
    return Macd(line, sig, line - sig)


def bbands(close: npt.ArrayLike, n: int = 20, k: float = 2.0) -> BollingerBands:
    """Bollinger bands: SMA(n) +- k population standard deviations."""
    check_period(n)
    x = as_float_array(close, "close")
    middle = rolling_sum(x, n) / n
    width = k * rolling_std(x, n, ddof=0)
    return BollingerBands(middle + width, middle, middle - width)


def true_range(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike) -> FloatArray:
    """True range; NaN at index 0 (no previous close, as TA-Lib's TRANGE)."""
    h = as_float_array(high, "high")
    lo = as_float_array(low, "low")
    c = as_float_array(close, "close")
    out = np.full(c.shape[0], np.nan)
    if c.shape[0] > 1:
        prev = c[:-1]
        out[1:] = np.maximum(
            h[1:] - lo[1:], np.maximum(np.abs(h[1:] - prev), np.abs(lo[1:] - prev))
        )
    return out


def atr(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, n: int = 14) -> FloatArray:
    """Average true range, Wilder smoothed; first value at index n."""
    check_period(n)
    tr = true_range(high, low, close)
    out = np.full(tr.shape[0], np.nan)
    if tr.shape[0] <= n:
        return out
    ranges = tr.tolist()
    total = 0.0
    for value in ranges[1 : n + 1]:
        total += value
    prev = total / n
    values = [prev]
    for value in ranges[n + 1 :]:
        prev *= n - 1
        prev += value
        prev /= n
        values.append(prev)
    out[n:] = values
    return out


def obv(close: npt.ArrayLike, volume: npt.ArrayLike) -> FloatArray:
    """On-balance volume, starting from the first bar's volume (TA-Lib)."""
    c = as_float_array(close, "close")
    v = as_float_array(volume, "volume")
    if c.shape[0] == 0:
        return np.empty(0)
    step = np.zeros(c.shape[0])
    change = np.diff(c)
    step[1:] = np.where(change > 0, v[1:], np.where(change < 0, -v[1:], 0.0))
    step[0] = v[0]
    # cumsum adds left to right, the same order the incremental state uses.
    return np.cumsum(step)


def stoch_fast_k(close: float, lowest: float, highest: float) -> float:
    """Fast %K the way TA-Lib writes it, (C - LL) / ((HH - LL) / 100); 0 for no range."""
    diff = (highest - lowest) / 100.0
    return (close - lowest) / diff if diff != 0.0 else 0.0


def stoch(
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    fastk: int = 14,
    slowk: int = 3,
    slowd: int = 3,
) -> Stochastic:
    """TA-Lib STOCH with SMA smoothing: slow %K and slow %D, both from the same index."""
    check_period(fastk, "fastk")
    check_period(slowk, "slowk")
    check_period(slowd, "slowd")
    h = as_float_array(high, "high")
    lo = as_float_array(low, "low")
    c = as_float_array(close, "close")
    highest = rolling_max(h, fastk)
    lowest = rolling_min(lo, fastk)
    diff = (highest - lowest) / 100.0
    zero = diff == 0.0
    fast = np.where(zero, 0.0, (c - lowest) / np.where(zero, 1.0, diff))
    fast[np.isnan(highest)] = np.nan
    # Leading NaNs poison every window that touches them, giving the warm-up for free.
    k = rolling_sum(fast, slowk) / slowk
    d = rolling_sum(k, slowd) / slowd
    k[np.isnan(d)] = np.nan
    return Stochastic(k, d)


def simple_returns(close: npt.ArrayLike) -> FloatArray:
    """(C[i] - C[i-1]) / C[i-1] (TA-Lib's ROCP with period 1); NaN at index 0."""
    c = as_float_array(close, "close")
    out = np.full(c.shape[0], np.nan)
    out[1:] = (c[1:] - c[:-1]) / c[:-1]
    return out


def log_returns(close: npt.ArrayLike) -> FloatArray:
    """log(C[i] / C[i-1]); NaN at index 0."""
    c = as_float_array(close, "close")
    out = np.full(c.shape[0], np.nan)
    out[1:] = np.log(c[1:] / c[:-1])
    return out


def rolling_volatility(
    close: npt.ArrayLike, n: int = 20, periods_per_year: float | None = None
) -> FloatArray:
    """Sample std (ddof = 1) of the last n log returns; first value at index n.

    With `periods_per_year` (252 for daily bars, 252 * 390 for regular-hours minutes)
    the result is annualised by sqrt(periods_per_year).
    """
    if n < 2:
        raise ValueError(f"n must be >= 2 for a sample standard deviation, got {n}")
    vol = rolling_std(log_returns(close), n, ddof=1)
    if periods_per_year is not None:
        vol *= math.sqrt(periods_per_year)
    return vol


def typical_price(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike) -> FloatArray:
    """(H + L + C) / 3, the usual price for a bar-based VWAP."""
    h = as_float_array(high, "high")
    lo = as_float_array(low, "low")
    c = as_float_array(close, "close")
    return (h + lo + c) / 3.0


def vwap(price: npt.ArrayLike, volume: npt.ArrayLike) -> FloatArray:
    """Cumulative volume-weighted average price over the whole series.

    `price` is the per-bar price to weight: `typical_price(...)`, or the bars' own
    trade VWAP when available (more exact). NaN while no volume has traded.
    """
    p = as_float_array(price, "price")
    v = as_float_array(volume, "volume")
    notional = np.cumsum(p * v)
    traded = np.cumsum(v)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(traded != 0.0, notional / traded, np.nan)
