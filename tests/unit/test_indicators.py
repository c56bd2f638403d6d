"""Technical indicators: hand-computed cases, TA-Lib golden values, warm-up positions,
flat-market edge cases, and bar-by-bar states equal to the batch functions."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from financelake.stream import indicators as ind
from financelake.stream.indicators import OHLCV, IndicatorConfig, IndicatorState

pytestmark = pytest.mark.unit

NAN = math.nan


def _market(size: int, seed: int = 3) -> tuple[np.ndarray, ...]:
    """A random-walk bar series with consistent OHLC and some repeated closes."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, size)))
    close[rng.random(size) < 0.05] = np.nan  # filled below: exercises equal closes
    for i in range(size):
        if np.isnan(close[i]):
            close[i] = close[i - 1] if i else 100.0
    open_ = close * (1 + rng.normal(0, 0.002, size))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.003, size)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.003, size)))
    volume = rng.integers(0, 10_000, size).astype(np.float64)
    return open_, high, low, close, volume


def _golden_series() -> tuple[np.ndarray, ...]:
    i = np.arange(60.0)
    close = 100 + 5 * np.sin(i / 3) + 0.1 * i
    high = close + 1 + 0.5 * np.cos(i / 2) ** 2
    low = close - 1 - 0.3 * np.sin(i / 5) ** 2
    volume = 1000 + 10 * (i % 7)
    return high, low, close, volume


# TA-Lib 0.8.2 (the official `ta-lib` wheel) on `_golden_series`, at bars 35 and 59,
# default parameters (SMA/BBANDS 20, EMA 12, RSI/ATR 14, MACD 12/26/9, STOCH 14/3/3 SMA).
TALIB_GOLDEN = {
    "sma_20": (102.32069076300259, 105.15441025432247),
    "ema_12": (100.80620146388873, 105.06516626369974),
    "rsi_14": (43.376710398401144, 67.77577635556355),
    "macd": (-0.792114266560688, 0.8059140817164518),
    "macd_signal": (-0.17378032234220347, 0.24123928744878279),
    "macd_hist": (-0.6183339442184845, 0.5646747942676691),
    "bb_upper": (109.04324125168237, 111.7398269856326),
    "bb_middle": (102.32069076300259, 105.15441025432247),
    "bb_lower": (95.5981402743228, 98.56899352301234),
    "atr_14": (2.499272555995586, 2.620277770821883),
    "obv": (-90.0, 6080.0),
    "stoch_k": (13.861912946902997, 81.66724729289555),
    "stoch_d": (11.033963098879191, 66.49566042400251),
}


@pytest.mark.parametrize("key", sorted(TALIB_GOLDEN))
def test_matches_talib_golden_values(key: str) -> None:
    high, low, close, volume = _golden_series()
    result = ind.compute_batch(high, low, close, volume)[key]
    np.testing.assert_allclose(result[[35, 59]], TALIB_GOLDEN[key], rtol=1e-10)


# ---- hand-computed cases ----------------------------------------------------------------


def test_sma_of_one_to_ten() -> None:
    x = np.arange(1.0, 11.0)
    np.testing.assert_array_equal(ind.sma(x, 3), [NAN, NAN, 2, 3, 4, 5, 6, 7, 8, 9])
    np.testing.assert_array_equal(ind.sma(x, 10), [NAN] * 9 + [5.5])
    np.testing.assert_array_equal(ind.sma(x, 1), x)


def test_ema_of_one_to_ten_is_seeded_with_the_sma() -> None:
    x = np.arange(1.0, 11.0)
    # n = 3, k = 0.5: seed mean(1, 2, 3) = 2, then (4 - 2) * 0.5 + 2 = 3, ...
    np.testing.assert_allclose(ind.ema(x, 3), [NAN, NAN, *range(2, 10)])
    # n = 4, k = 0.4: seed 2.5, then (5 - 2.5) * 0.4 + 2.5 = 3.5: a constant lag of 1.5.
    np.testing.assert_allclose(ind.ema(x, 4), [NAN] * 3 + [v - 1.5 for v in range(4, 11)])


def test_rsi_small_case_with_wilder_smoothing() -> None:
    # Changes +1, -1, +1. n = 2: seed gain 0.5, loss 0.5 -> 50; then
    # gain (0.5 + 1) / 2 = 0.75, loss (0.5 + 0) / 2 = 0.25 -> 75.
    np.testing.assert_allclose(ind.rsi([1.0, 2.0, 1.0, 2.0], 2), [NAN, NAN, 50.0, 75.0])


def _reference_rsi(close: np.ndarray, n: int) -> np.ndarray:
    """RSI straight from Wilder's definition, independent of the implementation."""
    out = np.full(close.size, np.nan)
    changes = np.diff(close)
    gains = np.clip(changes, 0, None)
    losses = np.clip(-changes, 0, None)
    avg_gain = gains[:n].mean()
    avg_loss = losses[:n].mean()
    for i in range(n, close.size):
        if i > n:
            avg_gain = (avg_gain * (n - 1) + gains[i - 1]) / n
            avg_loss = (avg_loss * (n - 1) + losses[i - 1]) / n
        out[i] = 100 - 100 / (1 + avg_gain / avg_loss)
    return out


def test_rsi_matches_a_reference_implementation() -> None:
    close = _market(500)[3]
    np.testing.assert_allclose(ind.rsi(close, 14), _reference_rsi(close, 14), atol=1e-9)


def test_macd_histogram_and_talib_fast_seeding() -> None:
    close = _market(300)[3]
    result = ind.macd(close)
    np.testing.assert_array_equal(result.histogram, result.macd - result.signal)
    # TA-Lib seeds the fast EMA on bars 14..25, so it equals a stand-alone EMA(12) of the
    # series from bar 14 on, not EMA(12) of the whole series.
    fast = ind.ema(close[14:], 12)
    slow = ind.ema(close, 26)
    np.testing.assert_allclose(result.macd[33:], fast[19:] - slow[33:], atol=1e-12)
    signal = ind.ema((fast[11:] - slow[25:]), 9)
    np.testing.assert_allclose(result.signal[33:], signal[8:], atol=1e-12)


def test_bbands_use_the_population_std() -> None:
    bands = ind.bbands([1.0, 2.0, 3.0, 4.0], n=3, k=2.0)
    width = 2 * math.sqrt(2 / 3)
    np.testing.assert_allclose(bands.middle, [NAN, NAN, 2.0, 3.0])
    np.testing.assert_allclose(bands.upper, [NAN, NAN, 2 + width, 3 + width])
    np.testing.assert_allclose(bands.lower, [NAN, NAN, 2 - width, 3 - width])


def test_true_range_and_atr_small_case() -> None:
    high = [2.0, 3.0, 4.0, 6.0]
    low = [1.0, 1.0, 2.0, 3.0]
    close = [1.5, 2.0, 3.0, 4.0]
    # TR: max(H - L, |H - C_prev|, |L - C_prev|) = 2, 2, 3 from bar 1.
    np.testing.assert_array_equal(ind.true_range(high, low, close), [NAN, 2.0, 2.0, 3.0])
    # n = 2: seed mean(2, 2) = 2 at bar 2, then (2 * 1 + 3) / 2 = 2.5.
    np.testing.assert_array_equal(ind.atr(high, low, close, 2), [NAN, NAN, 2.0, 2.5])


def test_true_range_uses_the_gap_from_the_previous_close() -> None:
    # A gap up: the range from the previous close (10 -> 15) beats the bar's own range.
    np.testing.assert_array_equal(
        ind.true_range([10.0, 15.0], [9.0, 14.0], [10.0, 14.5]), [NAN, 5.0]
    )


def test_obv_small_case() -> None:
    close = [1.0, 2.0, 2.0, 1.0, 3.0]
    volume = [10.0, 20.0, 30.0, 40.0, 50.0]
    np.testing.assert_array_equal(ind.obv(close, volume), [10.0, 30.0, 30.0, -10.0, 40.0])


def test_stoch_fast_k_small_case() -> None:
    high = [3.0, 4.0, 5.0, 5.0]
    low = [1.0, 2.0, 3.0, 4.0]
    close = [2.0, 3.0, 4.0, 4.5]
    # With no smoothing %K is the fast %K: bar 2 (4 - 1) / (5 - 1) = 75%,
    # bar 3 (4.5 - 2) / (5 - 2) = 83.3%; %D = SMA(2) of %K.
    result = ind.stoch(high, low, close, fastk=3, slowk=1, slowd=2)
    np.testing.assert_allclose(result.k, [NAN, NAN, NAN, 250 / 3])
    np.testing.assert_allclose(result.d, [NAN, NAN, NAN, (75 + 250 / 3) / 2])


def _reference_stoch(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, fastk: int, slowk: int, slowd: int
) -> tuple[np.ndarray, np.ndarray]:
    size = close.size
    fast = np.full(size, np.nan)
    for i in range(fastk - 1, size):
        hh = high[i - fastk + 1 : i + 1].max()
        ll = low[i - fastk + 1 : i + 1].min()
        fast[i] = 100 * (close[i] - ll) / (hh - ll)
    k = np.convolve(fast, np.ones(slowk) / slowk)[:size]
    d = np.convolve(k, np.ones(slowd) / slowd)[:size]
    k[: fastk + slowk + slowd - 3] = np.nan
    return k, d


def test_stoch_matches_a_reference_implementation() -> None:
    _, high, low, close, _ = _market(300)
    k, d = ind.stoch(high, low, close)
    ref_k, ref_d = _reference_stoch(high, low, close, 14, 3, 3)
    np.testing.assert_allclose(k, ref_k, atol=1e-9)
    np.testing.assert_allclose(d, ref_d, atol=1e-9)


def test_returns_small_case() -> None:
    close = [100.0, 110.0, 99.0]
    np.testing.assert_allclose(ind.simple_returns(close), [NAN, 0.1, -0.1])
    np.testing.assert_allclose(ind.log_returns(close), [NAN, math.log(1.1), math.log(0.9)])


def test_rolling_volatility_is_the_sample_std_of_log_returns() -> None:
    close = _market(100)[3]
    logs = np.log(close[1:] / close[:-1])
    expected = np.full(100, np.nan)
    for i in range(5, 100):
        expected[i] = np.std(logs[i - 5 : i], ddof=1)
    np.testing.assert_allclose(ind.rolling_volatility(close, 5), expected, atol=1e-12)
    np.testing.assert_allclose(
        ind.rolling_volatility(close, 5, periods_per_year=252), expected * math.sqrt(252)
    )


def test_vwap_is_cumulative_and_nan_before_any_volume() -> None:
    np.testing.assert_allclose(
        ind.vwap([5.0, 10.0, 20.0], [0.0, 1.0, 3.0]), [NAN, 10.0, (10 + 60) / 4]
    )
    np.testing.assert_allclose(ind.typical_price([3.0], [1.0], [2.0]), [2.0])


# ---- warm-up and edge cases -------------------------------------------------------------

FIRST_VALID = {
    "sma_20": 19,
    "sma_50": 49,
    "ema_12": 11,
    "ema_26": 25,
    "rsi_14": 14,
    "macd": 33,
    "macd_signal": 33,
    "macd_hist": 33,
    "bb_upper": 19,
    "bb_middle": 19,
    "bb_lower": 19,
    "atr_14": 14,
    "obv": 0,
    "stoch_k": 17,
    "stoch_d": 17,
    "return": 1,
    "log_return": 1,
    "volatility_20": 20,
    "vwap": 0,
}


def test_warm_up_nan_positions_match_talib_lookbacks() -> None:
    _, high, low, close, volume = _market(200)
    volume[0] = 1.0  # VWAP is defined from the first bar that traded
    result = ind.compute_batch(high, low, close, volume)
    assert set(result) == set(FIRST_VALID)
    for key, first in FIRST_VALID.items():
        values = result[key]
        assert values.shape == (200,), key
        assert np.isnan(values[:first]).all(), key
        assert not np.isnan(values[first:]).any(), key


@pytest.mark.parametrize("size", [0, 1, 5, 33])
def test_short_series_keep_their_length_and_stay_nan(size: int) -> None:
    _, high, low, close, volume = _market(size) if size else (np.empty(0),) * 5
    result = ind.compute_batch(high, low, close, volume)
    for key, values in result.items():
        assert values.shape == (size,), key
        if FIRST_VALID[key] >= size:
            assert np.isnan(values).all(), key


def test_rsi_of_a_rising_market_is_100_falling_0_flat_0() -> None:
    rising = np.arange(1.0, 31.0)
    np.testing.assert_array_equal(ind.rsi(rising)[14:], 100.0)
    np.testing.assert_array_equal(ind.rsi(rising[::-1])[14:], 0.0)
    # No change at all: TA-Lib outputs 0 rather than dividing 0 by 0.
    np.testing.assert_array_equal(ind.rsi(np.full(30, 7.0))[14:], 0.0)


def test_flat_market_stochastic_bands_atr_and_volatility() -> None:
    flat = np.full(40, 5.0)
    k, d = ind.stoch(flat, flat, flat)
    # Zero range: TA-Lib writes fast %K = 0 instead of dividing by zero.
    np.testing.assert_array_equal(k[17:], 0.0)
    np.testing.assert_array_equal(d[17:], 0.0)
    bands = ind.bbands(flat)
    np.testing.assert_array_equal(bands.upper[19:], 5.0)
    np.testing.assert_array_equal(bands.lower[19:], 5.0)
    np.testing.assert_array_equal(ind.atr(flat, flat, flat)[14:], 0.0)
    np.testing.assert_array_equal(ind.rolling_volatility(flat, 20)[20:], 0.0)
    np.testing.assert_array_equal(ind.obv(flat, np.ones(40)), 1.0)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="slow"):
        ind.macd(np.ones(50), fast=26, slow=12)
    with pytest.raises(ValueError, match="one-dimensional"):
        ind.sma(np.ones((3, 3)), 2)
    with pytest.raises(ValueError, match=">= 1"):
        ind.ema(np.ones(3), 0)
    with pytest.raises(ValueError, match=">= 2"):
        ind.rolling_volatility(np.ones(3), 1)


# ---- incremental == batch ---------------------------------------------------------------

CONFIGS = [
    IndicatorConfig(),
    IndicatorConfig(
        sma_periods=(1, 3),
        ema_periods=(1, 2, 7),
        rsi_period=2,
        macd_fast=3,
        macd_slow=5,
        macd_signal=2,
        bbands_period=2,
        bbands_k=1.5,
        atr_period=1,
        stoch_fastk=1,
        stoch_slowk=1,
        stoch_slowd=1,
        volatility_period=2,
        periods_per_year=252.0,
    ),
]


def _assert_same(streamed: dict[str, list[float]], batch: dict[str, np.ndarray]) -> None:
    assert list(streamed) == list(batch)
    for key, values in batch.items():
        got = np.array(streamed[key])
        np.testing.assert_array_equal(np.isnan(got), np.isnan(values), err_msg=key)
        np.testing.assert_allclose(got, values, rtol=0, atol=1e-9, err_msg=key)


@pytest.mark.parametrize("config", CONFIGS, ids=["default", "tiny-periods"])
def test_incremental_state_equals_batch(config: IndicatorConfig) -> None:
    open_, high, low, close, volume = _market(2_000)
    volume[:3] = 0.0  # VWAP undefined until something trades
    state = IndicatorState(config)
    streamed: dict[str, list[float]] = {key: [] for key in config.output_names()}
    for bar in zip(open_, high, low, close, volume, strict=True):
        for key, value in state.update(OHLCV(*map(float, bar))).items():
            streamed[key].append(value)
    _assert_same(streamed, ind.compute_batch(high, low, close, volume, config))


@pytest.mark.parametrize("config", CONFIGS, ids=["default", "tiny-periods"])
@pytest.mark.parametrize("split", [0, 1, 10, 30, 700])
def test_state_round_trips_through_json_mid_stream(config: IndicatorConfig, split: int) -> None:
    open_, high, low, close, volume = _market(1_000, seed=11)
    state = IndicatorState(config)
    streamed: dict[str, list[float]] = {key: [] for key in config.output_names()}
    for i, bar in enumerate(zip(open_, high, low, close, volume, strict=True)):
        if i == split:
            snapshot = json.dumps(state.to_dict(), allow_nan=False)
            state = IndicatorState.from_dict(json.loads(snapshot))
        for key, value in state.update(OHLCV(*map(float, bar))).items():
            streamed[key].append(value)
    _assert_same(streamed, ind.compute_batch(high, low, close, volume, config))


def test_single_states_equal_their_batch_functions() -> None:
    _, high, low, close, volume = _market(500, seed=5)
    sma = ind.SmaState(10)
    ema = ind.EmaState(10)
    rsi = ind.RsiState(10)
    atr = ind.AtrState(10)
    vwap = ind.VwapState()
    got = np.array(
        [
            (sma.update(c), ema.update(c), rsi.update(c), atr.update(h, lo, c), vwap.update(c, v))
            for h, lo, c, v in zip(high, low, close, volume, strict=True)
        ]
    )
    expected = np.column_stack(
        [
            ind.sma(close, 10),
            ind.ema(close, 10),
            ind.rsi(close, 10),
            ind.atr(high, low, close, 10),
            ind.vwap(close, volume),
        ]
    )
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
