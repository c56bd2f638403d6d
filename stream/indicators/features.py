"""The whole indicator set for one symbol: a configuration, a batch computation over a
bar series, and the equivalent bar-by-bar `IndicatorState` the stream keeps per symbol.

Both sides name their outputs with the same keys (see `IndicatorConfig.output_names`), so
`compute_batch(...)[key][i]` is what `IndicatorState.update(bar_i)[key]` returned.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple, Protocol

import numpy.typing as npt

from financelake.stream.indicators import batch
from financelake.stream.indicators._window import FloatArray, as_float_array
from financelake.stream.indicators.incremental import (
    AtrState,
    BBandsState,
    EmaState,
    MacdState,
    ObvState,
    ReturnsState,
    RsiState,
    SmaState,
    StateDict,
    StochState,
    VolatilityState,
    VwapState,
)

__all__ = ["OHLCV", "BarLike", "IndicatorConfig", "IndicatorState", "compute_batch"]


class BarLike(Protocol):
    """Anything with the five bar prices as float attributes."""

    @property
    def open(self) -> float: ...
    @property
    def high(self) -> float: ...
    @property
    def low(self) -> float: ...
    @property
    def close(self) -> float: ...
    @property
    def volume(self) -> float: ...


class OHLCV(NamedTuple):
    """A minimal bar for callers that have no richer record at hand."""

    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclasses.dataclass(frozen=True, slots=True)
class IndicatorConfig:
    """Periods of every indicator; the defaults are TA-Lib's (and the usual) ones."""

    sma_periods: tuple[int, ...] = (20, 50)
    ema_periods: tuple[int, ...] = (12, 26)
    rsi_period: int = 14
    macd_fast: int = 12
    macd_slow: int = 26
    macd_signal: int = 9
    bbands_period: int = 20
    bbands_k: float = 2.0
    atr_period: int = 14
    stoch_fastk: int = 14
    stoch_slowk: int = 3
    stoch_slowd: int = 3
    volatility_period: int = 20
    # None leaves volatility per bar; e.g. 252 annualises daily bars.
    periods_per_year: float | None = None

    def output_names(self) -> list[str]:
        """Output names, in the order `update` and `compute_batch` produce them."""
        return [
            *(f"sma_{n}" for n in self.sma_periods),
            *(f"ema_{n}" for n in self.ema_periods),
            f"rsi_{self.rsi_period}",
            "macd",
            "macd_signal",
            "macd_hist",
            "bb_upper",
            "bb_middle",
            "bb_lower",
            f"atr_{self.atr_period}",
            "obv",
            "stoch_k",
            "stoch_d",
            "return",
            "log_return",
            f"volatility_{self.volatility_period}",
            "vwap",
        ]

    def to_dict(self) -> StateDict:
        data = dataclasses.asdict(self)
        data["sma_periods"] = list(self.sma_periods)
        data["ema_periods"] = list(self.ema_periods)
        return data

    @classmethod
    def from_dict(cls, data: StateDict) -> IndicatorConfig:
        values = dict(data)
        values["sma_periods"] = tuple(int(n) for n in data["sma_periods"])
        values["ema_periods"] = tuple(int(n) for n in data["ema_periods"])
        return cls(**values)


def compute_batch(
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    volume: npt.ArrayLike,
    config: IndicatorConfig | None = None,
) -> dict[str, FloatArray]:
    """Every configured indicator over a whole series, keyed like `IndicatorState`.

    VWAP weights the typical price (H + L + C) / 3; call `batch.vwap` directly to
    weight the bars' own trade VWAP instead.
    """
    cfg = config or IndicatorConfig()
    h = as_float_array(high, "high")
    lo = as_float_array(low, "low")
    c = as_float_array(close, "close")
    v = as_float_array(volume, "volume")
    out: dict[str, FloatArray] = {}
    for n in cfg.sma_periods:
        out[f"sma_{n}"] = batch.sma(c, n)
    for n in cfg.ema_periods:
        out[f"ema_{n}"] = batch.ema(c, n)
    out[f"rsi_{cfg.rsi_period}"] = batch.rsi(c, cfg.rsi_period)
    out["macd"], out["macd_signal"], out["macd_hist"] = batch.macd(
        c, cfg.macd_fast, cfg.macd_slow, cfg.macd_signal
    )
    out["bb_upper"], out["bb_middle"], out["bb_lower"] = batch.bbands(
        c, cfg.bbands_period, cfg.bbands_k
    )
    out[f"atr_{cfg.atr_period}"] = batch.atr(h, lo, c, cfg.atr_period)
    out["obv"] = batch.obv(c, v)
    out["stoch_k"], out["stoch_d"] = batch.stoch(
        h, lo, c, cfg.stoch_fastk, cfg.stoch_slowk, cfg.stoch_slowd
    )
    out["return"] = batch.simple_returns(c)
    out["log_return"] = batch.log_returns(c)
    out[f"volatility_{cfg.volatility_period}"] = batch.rolling_volatility(
        c, cfg.volatility_period, cfg.periods_per_year
    )
    out["vwap"] = batch.vwap(batch.typical_price(h, lo, c), v)
    return {key: out[key] for key in cfg.output_names()}


class IndicatorState:
    """Per-symbol state of every configured indicator, advanced one bar at a time."""

    def __init__(self, config: IndicatorConfig | None = None) -> None:
        cfg = config or IndicatorConfig()
        self.config = cfg
        self.sma = {n: SmaState(n) for n in cfg.sma_periods}
        self.ema = {n: EmaState(n) for n in cfg.ema_periods}
        self.rsi = RsiState(cfg.rsi_period)
        self.macd = MacdState(cfg.macd_fast, cfg.macd_slow, cfg.macd_signal)
        self.bbands = BBandsState(cfg.bbands_period, cfg.bbands_k)
        self.atr = AtrState(cfg.atr_period)
        self.obv = ObvState()
        self.stoch = StochState(cfg.stoch_fastk, cfg.stoch_slowk, cfg.stoch_slowd)
        self.returns = ReturnsState()
        self.volatility = VolatilityState(cfg.volatility_period, cfg.periods_per_year)
        self.vwap = VwapState()

    def update(self, bar: BarLike) -> dict[str, float]:
        """Advance every indicator by one bar; NaN marks values still warming up."""
        cfg = self.config
        high, low, close, volume = bar.high, bar.low, bar.close, bar.volume
        out: dict[str, float] = {}
        for n, sma in self.sma.items():
            out[f"sma_{n}"] = sma.update(close)
        for n, ema in self.ema.items():
            out[f"ema_{n}"] = ema.update(close)
        out[f"rsi_{cfg.rsi_period}"] = self.rsi.update(close)
        out["macd"], out["macd_signal"], out["macd_hist"] = self.macd.update(close)
        out["bb_upper"], out["bb_middle"], out["bb_lower"] = self.bbands.update(close)
        out[f"atr_{cfg.atr_period}"] = self.atr.update(high, low, close)
        out["obv"] = self.obv.update(close, volume)
        out["stoch_k"], out["stoch_d"] = self.stoch.update(high, low, close)
        out["return"], out["log_return"] = self.returns.update(close)
        out[f"volatility_{cfg.volatility_period}"] = self.volatility.update(close)
        out["vwap"] = self.vwap.update((high + low + close) / 3.0, volume)
        return out

    def to_dict(self) -> StateDict:
        """A JSON-ready snapshot (ints, floats, lists, None) of the config and states."""
        return {
            "config": self.config.to_dict(),
            "sma": [s.to_dict() for s in self.sma.values()],
            "ema": [s.to_dict() for s in self.ema.values()],
            "rsi": self.rsi.to_dict(),
            "macd": self.macd.to_dict(),
            "bbands": self.bbands.to_dict(),
            "atr": self.atr.to_dict(),
            "obv": self.obv.to_dict(),
            "stoch": self.stoch.to_dict(),
            "returns": self.returns.to_dict(),
            "volatility": self.volatility.to_dict(),
            "vwap": self.vwap.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: StateDict) -> IndicatorState:
        """Rebuild the state `to_dict` produced."""
        state = cls(IndicatorConfig.from_dict(data["config"]))
        state.sma = {s.n: s for s in (SmaState.from_dict(d) for d in data["sma"])}
        state.ema = {s.n: s for s in (EmaState.from_dict(d) for d in data["ema"])}
        state.rsi = RsiState.from_dict(data["rsi"])
        state.macd = MacdState.from_dict(data["macd"])
        state.bbands = BBandsState.from_dict(data["bbands"])
        state.atr = AtrState.from_dict(data["atr"])
        state.obv = ObvState.from_dict(data["obv"])
        state.stoch = StochState.from_dict(data["stoch"])
        state.returns = ReturnsState.from_dict(data["returns"])
        state.volatility = VolatilityState.from_dict(data["volatility"])
        state.vwap = VwapState.from_dict(data["vwap"])
        return state
