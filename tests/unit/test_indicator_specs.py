"""GetIndicators' specs without gRPC: the grammar and TA-Lib defaults, errors naming the
offending `indicators[i]`, the warm-up of each indicator, and `compute` cutting the warm-up
off after computing each spec on its own warm-up bars."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from financelake.services.errors import InvalidInput
from financelake.services.marketdata.indicators import (
    MAX_PERIOD,
    Indicator,
    SpecError,
    compute,
    parse_spec,
    parse_specs,
    warmup_bars,
)
from financelake.stream.indicators import batch

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "indicator", "params"),
    [
        ("sma", Indicator.SMA, {"n": 30}),
        ("sma(20)", Indicator.SMA, {"n": 20}),
        ("ema(12)", Indicator.EMA, {"n": 12}),
        ("rsi", Indicator.RSI, {"n": 14}),
        ("macd", Indicator.MACD, {"fast": 12, "slow": 26, "signal": 9}),
        ("macd(5,35)", Indicator.MACD, {"fast": 5, "slow": 35, "signal": 9}),
        ("bbands", Indicator.BBANDS, {"n": 20, "k": 2.0}),
        ("bbands(20,2.5)", Indicator.BBANDS, {"n": 20, "k": 2.5}),
        ("atr", Indicator.ATR, {"n": 14}),
        ("stoch(14,3)", Indicator.STOCH, {"fastk": 14, "slowk": 3, "slowd": 3}),
        ("stoch(5,1,2)", Indicator.STOCH, {"fastk": 5, "slowk": 1, "slowd": 2}),
        ("obv", Indicator.OBV, {}),
        ("vwap", Indicator.VWAP, {}),
        ("returns", Indicator.RETURNS, {}),
        ("volatility", Indicator.VOLATILITY, {"n": 20}),
        (f"ema({MAX_PERIOD})", Indicator.EMA, {"n": MAX_PERIOD}),
    ],
)
def test_specs_fill_trailing_parameters_with_talib_defaults(
    text: str, indicator: Indicator, params: dict[str, float]
) -> None:
    spec = parse_spec(text)

    assert (spec.text, spec.indicator, spec.params) == (text, indicator, params)
    assert all(type(v) is (float if k == "k" else int) for k, v in spec.params.items())


def test_lines_are_named_as_the_contract_says() -> None:
    assert parse_spec("macd").lines == ("macd", "signal", "histogram")
    assert parse_spec("bbands").lines == ("upper", "middle", "lower")
    assert parse_spec("stoch").lines == ("k", "d")
    assert parse_spec("returns").lines == ("returns",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("foo(3)", "is not an indicator spec"),
        ("log_returns", "is not an indicator spec"),  # outside the contract's pattern
        ("sma( 20)", "is not an indicator spec"),
        ("SMA(20)", "is not an indicator spec"),
        ("sma()", "is not an indicator spec"),
        ("sma(-3)", "is not an indicator spec"),
        ("sma(1)", "n must be between 2 and 1000, got 1"),
        ("ema(1001)", "n must be between 2 and 1000"),
        ("sma(20.5)", "n must be a whole number, got 20.5"),
        ("sma(20.0)", "n must be a whole number"),
        ("sma(20,3)", "sma takes at most 1 parameters (n)"),
        ("obv(3)", "obv takes no parameters"),
        ("returns(1)", "returns takes no parameters"),
        ("macd(26,12)", "slow (12) must be greater than fast (26)"),
        ("macd(12,12,9)", "slow (12) must be greater than fast (12)"),
        ("macd(12,26,0)", "signal must be between 1 and 1000"),
        ("stoch(0)", "fastk must be between 1 and 1000"),
        ("volatility(1)", "n must be between 2 and 1000"),
        ("bbands(20,2,1)", "bbands takes at most 2 parameters (n, k)"),
    ],
)
def test_invalid_specs_say_why(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_spec(text)


def test_parse_specs_names_every_offending_index() -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_specs(["sma(20)", "sma(1)", "rsi", "obv(2)"])

    error = raised.value
    assert error.reason == "INVALID_INDICATOR_SPEC"
    assert [v.field for v in error.violations] == ["indicators[1]", "indicators[3]"]
    assert "indicators[1]: sma: n must be between 2 and 1000" in error.message
    assert [s.text for s in parse_specs(["sma(20)", "rsi"])] == ["sma(20)", "rsi"]


@pytest.mark.parametrize(
    ("text", "bars"),
    [
        ("sma(20)", 19),
        ("bbands(20,2)", 19),
        ("stoch", 14 + 3 + 3 - 3),
        ("returns", 1),
        ("volatility(20)", 20),
        ("obv", 0),
        ("vwap", 0),
        # Recursive: lookback + 20 time constants (10 (n + 1) for an EMA, 20 n for Wilder).
        ("ema(12)", 11 + 130),
        ("rsi(14)", 14 + 280),
        ("atr(14)", 14 + 280),
        ("macd", 33 + 270 + 100),
    ],
)
def test_warmup_bars(text: str, bars: int) -> None:
    assert warmup_bars(parse_spec(text)) == bars


@pytest.mark.parametrize("text", ["ema(2)", "ema(12)", "ema(200)", "rsi(2)", "rsi(14)", "macd"])
def test_the_recursive_warmup_leaves_a_seed_weight_below_e_minus_20(text: str) -> None:
    spec = parse_spec(text)
    n = spec.period("slow" if spec.indicator is Indicator.MACD else "n")
    lookback = {"ema": n - 1, "rsi": n, "macd": 33}[spec.indicator.value]
    k = 1 / n if spec.indicator is Indicator.RSI else 2 / (n + 1)
    extra = warmup_bars(spec) - lookback
    assert (1 - k) ** extra < math.exp(-20)


MINUTE = timedelta(minutes=1)
T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def _bars(size: int) -> pa.Table:
    rng = np.random.default_rng(7)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, size)))
    return pa.table(
        {
            "start_time": pa.array(
                [T0 + i * MINUTE for i in range(size)], pa.timestamp("us", "UTC")
            ),
            "high": close + 0.4,
            "low": close - 0.6,
            "close": close,
            "volume": rng.integers(100, 1000, size).astype(np.float64),
        }
    )


def test_compute_runs_each_spec_on_its_own_warmup_and_cuts_it_off() -> None:
    bars = _bars(600)
    first = 500  # the range is the last 100 bars
    start_ns = int((T0 + first * MINUTE).timestamp()) * 1_000_000_000
    specs = parse_specs(["sma(20)", "ema(12)", "obv", "ema(100)", "returns"])
    close = bars["close"].to_numpy()

    result = compute(specs, bars, start_ns)

    assert result.times_ns[0] == start_ns
    assert len(result.times_ns) == 100
    sma, ema12, obv, ema100, returns = (s.lines for s in result.series)
    # Windows: exactly the full-history value.
    np.testing.assert_array_equal(sma["sma"], batch.sma(close, 20)[first:])
    np.testing.assert_array_equal(returns["returns"], batch.simple_returns(close)[first:])
    # EMA(12) starts 141 bars before the range, not at the first bar, and that shows...
    own = batch.ema(close[first - 141 :], 12)[141:]
    np.testing.assert_array_equal(ema12["ema"], own)
    assert not np.array_equal(own, batch.ema(close, 12)[first:])
    # ...only in the seed's e^-20 weight: well within 1e-9 relative of the full history.
    np.testing.assert_allclose(own, batch.ema(close, 12)[first:], rtol=1e-9)
    # EMA(100) wants 1109 bars and has 500: it starts from the first bar.
    np.testing.assert_array_equal(ema100["ema"], batch.ema(close, 100)[first:])
    # OBV starts at the range's first bar.
    np.testing.assert_array_equal(obv["obv"], batch.obv(close[first:], bars["volume"][first:]))


def test_values_still_warming_up_in_the_range_are_nan() -> None:
    bars = _bars(30)
    start_ns = int(T0.timestamp()) * 1_000_000_000

    (series,) = compute(parse_specs(["sma(20)"]), bars, start_ns).series

    assert np.isnan(series.lines["sma"][:19]).all()
    assert not np.isnan(series.lines["sma"][19:]).any()
