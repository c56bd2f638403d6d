"""Technical indicators in pure numpy, matching TA-Lib: batch functions over a bar
series (`batch`), bar-by-bar states for the stream (`incremental`), and the whole set
per symbol (`features`). See `batch`'s docstring for the conventions followed.
"""

from __future__ import annotations

from financelake.stream.indicators.batch import (
    BollingerBands,
    Macd,
    Stochastic,
    atr,
    bbands,
    ema,
    log_returns,
    macd,
    obv,
    rolling_volatility,
    rsi,
    simple_returns,
    sma,
    stoch,
    true_range,
    typical_price,
    vwap,
)
from financelake.stream.indicators.features import (
    OHLCV,
    BarLike,
    IndicatorConfig,
    IndicatorState,
    compute_batch,
)
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

__all__ = [
    "OHLCV",
    "AtrState",
    "BBandsState",
    "BarLike",
    "BollingerBands",
    "EmaState",
    "IndicatorConfig",
    "IndicatorState",
    "Macd",
    "MacdState",
    "ObvState",
    "ReturnsState",
    "RsiState",
    "SmaState",
    "StateDict",
    "StochState",
    "Stochastic",
    "VolatilityState",
    "VwapState",
    "atr",
    "bbands",
    "compute_batch",
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
