"""Bar-by-bar indicator states whose outputs equal the batch functions in `batch.py`.

The stream sees one bar at a time per symbol and must not recompute history, so each
indicator keeps the minimum it needs: a window (deque) for the windowed ones, a few
running floats for the recursive ones. Each `update` performs the same float
operations in the same order as the batch loop, so the recursive indicators agree
exactly; windowed sums may differ from numpy's reduction order in the last bits.

Every state converts to and from a plain dict of ints, floats, lists and None (no
NaN), so the stream can persist it as JSON between restarts. `from_dict` trusts the
dict it is given to have come from `to_dict` of the same class.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from financelake.stream.indicators._window import check_period
from financelake.stream.indicators.batch import ema_k, rsi_value, stoch_fast_k

__all__ = [
    "AtrState",
    "BBandsState",
    "EmaState",
    "MacdState",
    "ObvState",
    "ReturnsState",
    "RsiState",
    "SmaState",
    "StateDict",
    "StochState",
    "VolatilityState",
    "VwapState",
]

StateDict = dict[str, Any]
NAN = math.nan


class SmaState:
    """Simple moving average over the last `n` values."""

    __slots__ = ("n", "window")

    def __init__(self, n: int) -> None:
        check_period(n)
        self.n = n
        self.window: deque[float] = deque(maxlen=n)

    def update(self, value: float) -> float:
        """Add one value; return the SMA, NaN until `n` values have been seen."""
        self.window.append(value)
        if len(self.window) < self.n:
            return NAN
        return sum(self.window) / self.n

    def to_dict(self) -> StateDict:
        return {"n": self.n, "window": list(self.window)}

    @classmethod
    def from_dict(cls, data: StateDict) -> SmaState:
        state = cls(int(data["n"]))
        state.window.extend(float(v) for v in data["window"])
        return state


class EmaState:
    """TA-Lib EMA: seeded with the SMA of the first `n` values after `skip` ignored ones.

    `skip` exists for MACD, whose fast EMA TA-Lib seeds `slow - fast` bars late.
    """

    __slots__ = ("count", "k", "n", "skip", "total", "value")

    def __init__(self, n: int, skip: int = 0) -> None:
        check_period(n)
        self.n = n
        self.k = ema_k(n)
        self.skip = skip
        self.count = 0  # values seen, skipped ones included
        self.total = 0.0  # seed accumulator
        self.value: float | None = None

    def update(self, x: float) -> float:
        """Add one value; return the EMA, NaN during skip and seeding."""
        if self.value is not None:
            self.value = (x - self.value) * self.k + self.value
            return self.value
        self.count += 1
        if self.count <= self.skip:
            return NAN
        self.total += x
        if self.count - self.skip < self.n:
            return NAN
        self.value = self.total / self.n
        return self.value

    def to_dict(self) -> StateDict:
        return {
            "n": self.n,
            "skip": self.skip,
            "count": self.count,
            "total": self.total,
            "value": self.value,
        }

    @classmethod
    def from_dict(cls, data: StateDict) -> EmaState:
        state = cls(int(data["n"]), int(data["skip"]))
        state.count = int(data["count"])
        state.total = float(data["total"])
        state.value = None if data["value"] is None else float(data["value"])
        return state


class RsiState:
    """Wilder RSI: mean of the first `n` changes, then (avg * (n - 1) + x) / n."""

    __slots__ = ("count", "gain", "loss", "n", "prev")

    def __init__(self, n: int = 14) -> None:
        check_period(n)
        self.n = n
        self.prev: float | None = None
        self.count = 0  # changes seen, up to n
        self.gain = 0.0
        self.loss = 0.0

    def update(self, close: float) -> float:
        """Add one close; return the RSI, NaN until `n` changes have been seen."""
        prev, self.prev = self.prev, close
        if prev is None:
            return NAN
        change = close - prev
        n = self.n
        if self.count < n:
            if change < 0:
                self.loss -= change
            else:
                self.gain += change
            self.count += 1
            if self.count < n:
                return NAN
        else:
            self.gain *= n - 1
            self.loss *= n - 1
            if change < 0:
                self.loss -= change
            else:
                self.gain += change
        # Both branches end with a division by n, exactly as TA-Lib's loop does.
        self.gain /= n
        self.loss /= n
        return rsi_value(self.gain, self.loss)

    def to_dict(self) -> StateDict:
        return {
            "n": self.n,
            "prev": self.prev,
            "count": self.count,
            "gain": self.gain,
            "loss": self.loss,
        }

    @classmethod
    def from_dict(cls, data: StateDict) -> RsiState:
        state = cls(int(data["n"]))
        state.prev = None if data["prev"] is None else float(data["prev"])
        state.count = int(data["count"])
        state.gain = float(data["gain"])
        state.loss = float(data["loss"])
        return state


class MacdState:
    """MACD line, signal and histogram with TA-Lib's seeding and start index."""

    __slots__ = ("fast", "signal", "slow")

    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9) -> None:
        if slow <= fast:
            raise ValueError(f"slow ({slow}) must be greater than fast ({fast})")
        self.fast = EmaState(fast, skip=slow - fast)
        self.slow = EmaState(slow)
        self.signal = EmaState(signal)

    def update(self, close: float) -> tuple[float, float, float]:
        """Add one close; return (macd, signal, histogram), NaN until the signal exists."""
        fast = self.fast.update(close)
        slow = self.slow.update(close)
        if math.isnan(slow):
            return NAN, NAN, NAN
        line = fast - slow
        signal = self.signal.update(line)
        if math.isnan(signal):
            return NAN, NAN, NAN
        return line, signal, line - signal

    def to_dict(self) -> StateDict:
        return {
            "fast": self.fast.to_dict(),
            "slow": self.slow.to_dict(),
            "signal": self.signal.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: StateDict) -> MacdState:
        fast = EmaState.from_dict(data["fast"])
        slow = EmaState.from_dict(data["slow"])
        state = cls(fast.n, slow.n, int(data["signal"]["n"]))
        state.fast = fast
        state.slow = slow
        state.signal = EmaState.from_dict(data["signal"])
        return state


def _window_std(window: deque[float], n: int, ddof: int) -> tuple[float, float]:
    """(mean, std) of a full window, two-pass like `_window.rolling_std`."""
    mean = sum(window) / n
    squares = 0.0
    for value in window:
        dev = value - mean
        squares += dev * dev
    return mean, math.sqrt(squares / (n - ddof))


class BBandsState:
    """Bollinger bands: SMA(n) +- k population standard deviations."""

    __slots__ = ("k", "n", "window")

    def __init__(self, n: int = 20, k: float = 2.0) -> None:
        check_period(n)
        self.n = n
        self.k = k
        self.window: deque[float] = deque(maxlen=n)

    def update(self, close: float) -> tuple[float, float, float]:
        """Add one close; return (upper, middle, lower), NaN until the window is full."""
        self.window.append(close)
        if len(self.window) < self.n:
            return NAN, NAN, NAN
        middle, std = _window_std(self.window, self.n, ddof=0)
        width = self.k * std
        return middle + width, middle, middle - width

    def to_dict(self) -> StateDict:
        return {"n": self.n, "k": self.k, "window": list(self.window)}

    @classmethod
    def from_dict(cls, data: StateDict) -> BBandsState:
        state = cls(int(data["n"]), float(data["k"]))
        state.window.extend(float(v) for v in data["window"])
        return state


class AtrState:
    """Wilder ATR: mean of the first `n` true ranges, then (atr * (n - 1) + tr) / n."""

    __slots__ = ("count", "n", "prev_close", "total", "value")

    def __init__(self, n: int = 14) -> None:
        check_period(n)
        self.n = n
        self.prev_close: float | None = None
        self.count = 0  # true ranges seen during seeding
        self.total = 0.0
        self.value: float | None = None

    def update(self, high: float, low: float, close: float) -> float:
        """Add one bar; return the ATR, NaN until `n` true ranges have been seen."""
        prev, self.prev_close = self.prev_close, close
        if prev is None:
            return NAN
        tr = max(high - low, max(abs(high - prev), abs(low - prev)))
        if self.value is not None:
            value = self.value * (self.n - 1)
            value += tr
            self.value = value / self.n
            return self.value
        self.total += tr
        self.count += 1
        if self.count < self.n:
            return NAN
        self.value = self.total / self.n
        return self.value

    def to_dict(self) -> StateDict:
        return {
            "n": self.n,
            "prev_close": self.prev_close,
            "count": self.count,
            "total": self.total,
            "value": self.value,
        }

    @classmethod
    def from_dict(cls, data: StateDict) -> AtrState:
        state = cls(int(data["n"]))
        state.prev_close = None if data["prev_close"] is None else float(data["prev_close"])
        state.count = int(data["count"])
        state.total = float(data["total"])
        state.value = None if data["value"] is None else float(data["value"])
        return state


class ObvState:
    """On-balance volume, starting from the first bar's volume."""

    __slots__ = ("prev_close", "value")

    def __init__(self) -> None:
        self.prev_close: float | None = None
        self.value = 0.0

    def update(self, close: float, volume: float) -> float:
        """Add one bar; return the OBV (defined from the first bar on)."""
        prev, self.prev_close = self.prev_close, close
        if prev is None:
            self.value = volume  # TA-Lib starts OBV at the first bar's volume
        elif close > prev:
            self.value += volume
        elif close < prev:
            self.value -= volume
        return self.value

    def to_dict(self) -> StateDict:
        return {"prev_close": self.prev_close, "value": self.value}

    @classmethod
    def from_dict(cls, data: StateDict) -> ObvState:
        state = cls()
        state.prev_close = None if data["prev_close"] is None else float(data["prev_close"])
        state.value = float(data["value"])
        return state


class StochState:
    """TA-Lib STOCH with SMA smoothing: (slow %K, slow %D), NaN until %D exists."""

    __slots__ = ("d_window", "fastk", "highs", "k_window", "lows", "slowd", "slowk")

    def __init__(self, fastk: int = 14, slowk: int = 3, slowd: int = 3) -> None:
        check_period(fastk, "fastk")
        check_period(slowk, "slowk")
        check_period(slowd, "slowd")
        self.fastk = fastk
        self.slowk = slowk
        self.slowd = slowd
        self.highs: deque[float] = deque(maxlen=fastk)
        self.lows: deque[float] = deque(maxlen=fastk)
        self.k_window: deque[float] = deque(maxlen=slowk)  # fast %K values
        self.d_window: deque[float] = deque(maxlen=slowd)  # slow %K values

    def update(self, high: float, low: float, close: float) -> tuple[float, float]:
        """Add one bar; return (slow %K, slow %D)."""
        self.highs.append(high)
        self.lows.append(low)
        if len(self.highs) < self.fastk:
            return NAN, NAN
        self.k_window.append(stoch_fast_k(close, min(self.lows), max(self.highs)))
        if len(self.k_window) < self.slowk:
            return NAN, NAN
        k = sum(self.k_window) / self.slowk
        self.d_window.append(k)
        if len(self.d_window) < self.slowd:
            return NAN, NAN
        return k, sum(self.d_window) / self.slowd

    def to_dict(self) -> StateDict:
        return {
            "fastk": self.fastk,
            "slowk": self.slowk,
            "slowd": self.slowd,
            "highs": list(self.highs),
            "lows": list(self.lows),
            "k_window": list(self.k_window),
            "d_window": list(self.d_window),
        }

    @classmethod
    def from_dict(cls, data: StateDict) -> StochState:
        state = cls(int(data["fastk"]), int(data["slowk"]), int(data["slowd"]))
        state.highs.extend(float(v) for v in data["highs"])
        state.lows.extend(float(v) for v in data["lows"])
        state.k_window.extend(float(v) for v in data["k_window"])
        state.d_window.extend(float(v) for v in data["d_window"])
        return state


class ReturnsState:
    """Simple and log return against the previous close (prices must be positive)."""

    __slots__ = ("prev_close",)

    def __init__(self) -> None:
        self.prev_close: float | None = None

    def update(self, close: float) -> tuple[float, float]:
        """Add one close; return (simple, log) return, NaN for the first bar."""
        prev, self.prev_close = self.prev_close, close
        if prev is None:
            return NAN, NAN
        return (close - prev) / prev, math.log(close / prev)

    def to_dict(self) -> StateDict:
        return {"prev_close": self.prev_close}

    @classmethod
    def from_dict(cls, data: StateDict) -> ReturnsState:
        state = cls()
        state.prev_close = None if data["prev_close"] is None else float(data["prev_close"])
        return state


class VolatilityState:
    """Sample std of the last `n` log returns, optionally annualised."""

    __slots__ = ("n", "periods_per_year", "prev_close", "window")

    def __init__(self, n: int = 20, periods_per_year: float | None = None) -> None:
        if n < 2:
            raise ValueError(f"n must be >= 2 for a sample standard deviation, got {n}")
        self.n = n
        self.periods_per_year = periods_per_year
        self.prev_close: float | None = None
        self.window: deque[float] = deque(maxlen=n)

    def update(self, close: float) -> float:
        """Add one close; return the volatility, NaN until `n` returns have been seen."""
        prev, self.prev_close = self.prev_close, close
        if prev is None:
            return NAN
        self.window.append(math.log(close / prev))
        if len(self.window) < self.n:
            return NAN
        _, vol = _window_std(self.window, self.n, ddof=1)
        if self.periods_per_year is not None:
            vol *= math.sqrt(self.periods_per_year)
        return vol

    def to_dict(self) -> StateDict:
        return {
            "n": self.n,
            "periods_per_year": self.periods_per_year,
            "prev_close": self.prev_close,
            "window": list(self.window),
        }

    @classmethod
    def from_dict(cls, data: StateDict) -> VolatilityState:
        ppy = data["periods_per_year"]
        state = cls(int(data["n"]), None if ppy is None else float(ppy))
        state.prev_close = None if data["prev_close"] is None else float(data["prev_close"])
        state.window.extend(float(v) for v in data["window"])
        return state


class VwapState:
    """Cumulative VWAP since the state was created (or last reset by the caller)."""

    __slots__ = ("notional", "traded")

    def __init__(self) -> None:
        self.notional = 0.0
        self.traded = 0.0

    def update(self, price: float, volume: float) -> float:
        """Add one bar's price and volume; return the VWAP, NaN while no volume traded."""
        self.notional += price * volume
        self.traded += volume
        return self.notional / self.traded if self.traded != 0.0 else NAN

    def to_dict(self) -> StateDict:
        return {"notional": self.notional, "traded": self.traded}

    @classmethod
    def from_dict(cls, data: StateDict) -> VwapState:
        state = cls()
        state.notional = float(data["notional"])
        state.traded = float(data["traded"])
        return state
