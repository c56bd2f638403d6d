"""GetIndicators as a client sees it: indicators over `silver.bars` on a real SqlCatalog (the
settings' home in tmp_path), through a real server on port 0.

The lake holds known 1m bars of IDX, four sessions of 300 minutes (13:00-18:00 UTC) with
the nights between, and 10 001 consecutive 1m bars of DENSE for the bar limit. The values
are checked against references computed here from the written closes: pandas rolling means
and standard deviations, TA-Lib-seeded `ewm(adjust=False)`, an explicit Wilder RSI loop,
each over the bars its warm-up reaches back to (across the night before the range), and
`stream.indicators.batch.macd` for MACD.
"""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from financelake.gen.common.v1 import bar_pb2
from financelake.gen.marketdata.v1 import marketdata_pb2
from financelake.gen.marketdata.v1 import marketdata_service_pb2 as pb
from financelake.gen.marketdata.v1 import marketdata_service_pb2_grpc as pb_grpc
from financelake.services.marketdata.indicators import MAX_BARS
from financelake.services.marketdata.server import build_server
from financelake.services.settings import Settings
from financelake.stream.indicators import batch
from financelake.stream.lake import BARS, ensure_tables
from financelake.stream.lake.catalog import open_catalog
from tests.fixtures.grpc import RunningServer, StartServer, error_info, field_violations, stub_for

pytestmark = pytest.mark.integration

Floats = npt.NDArray[np.float64]
MINUTE = timedelta(minutes=1)
DAY0 = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)  # a Monday
SESSIONS = 4
SESSION_MINUTES = 300
# The range: 90 minutes of the third session from 13:30; 630 IDX bars come before it.
START = DAY0 + timedelta(days=2, minutes=30)
END = START + 90 * MINUTE
FIRST = 2 * SESSION_MINUTES + 30
LAST = FIRST + 90
DENSE0 = datetime(2026, 4, 1, tzinfo=UTC)
RTOL = 1e-9


def _row(symbol: str, start: datetime, close: float, volume: float) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "interval": "1m",
        "start_time": start,
        "open": close - 0.05,
        "high": close + 0.25 + (start.minute % 3) * 0.1,
        "low": close - 0.3 - (start.minute % 4) * 0.05,
        "close": close,
        "volume": volume,
        "vwap": close,
        "trade_count": 10,
        "source": "trades",
        "adjusted": False,
        "revision": 0,
    }


def _idx_rows() -> list[dict[str, Any]]:
    rng = np.random.default_rng(11)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, SESSIONS * SESSION_MINUTES)))
    volumes = rng.integers(100, 5000, closes.size)
    starts = [
        DAY0 + timedelta(days=day) + minute * MINUTE
        for day in range(SESSIONS)
        for minute in range(SESSION_MINUTES)
    ]
    return [
        _row("IDX", start, float(c), float(v))
        for start, c, v in zip(starts, closes, volumes, strict=True)
    ]


IDX = _idx_rows()
CLOSE: Floats = np.array([r["close"] for r in IDX])
HIGH: Floats = np.array([r["high"] for r in IDX])
LOW: Floats = np.array([r["low"] for r in IDX])
VOLUME: Floats = np.array([r["volume"] for r in IDX])


def _write(settings: Settings) -> None:
    table = ensure_tables(open_catalog(settings))[BARS.identifier]
    dense = [_row("DENSE", DENSE0 + i * MINUTE, 50.0 + i % 7, 10.0) for i in range(MAX_BARS + 1)]
    for rows in (IDX, dense):
        table.append(pa.Table.from_pylist(rows, schema=table.schema().as_arrow()))


@pytest.fixture
async def lake(grpc_server: StartServer, grpc_settings: Settings) -> RunningServer:
    await asyncio.to_thread(_write, grpc_settings)
    return await grpc_server(build_server)


def _ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


async def _indicators(
    running: RunningServer,
    specs: list[str],
    *,
    symbol: str = "IDX",
    interval: bar_pb2.Interval = bar_pb2.INTERVAL_1M,
    start: datetime = START,
    end: datetime = END,
) -> pb.GetIndicatorsResponse:
    request = pb.GetIndicatorsRequest(
        symbol=symbol,
        interval=interval,
        start_time=_ts(start),
        end_time=_ts(end),
        indicators=specs,
    )
    stub = stub_for(pb_grpc.MarketDataServiceStub, running.channel)
    response: pb.GetIndicatorsResponse = await stub.GetIndicators(request, timeout=30)
    return response


def _lines(series: marketdata_pb2.IndicatorSeries) -> dict[str, Floats]:
    return {line.name: np.array(line.values) for line in series.lines}


def _talib_ema(x: Floats, n: int) -> Floats:
    """TA-Lib's EMA: seeded with the mean of the first n values, then ewm(adjust=False)."""
    out = np.full(x.size, np.nan)
    seeded = np.concatenate(([x[:n].mean()], x[n:]))
    out[n - 1 :] = pd.Series(seeded).ewm(alpha=2 / (n + 1), adjust=False).mean().to_numpy()
    return out


def _wilder_rsi(x: Floats, n: int) -> Floats:
    out = np.full(x.size, np.nan)
    changes = np.diff(x)
    gain = sum(max(c, 0.0) for c in changes[:n]) / n
    loss = sum(max(-c, 0.0) for c in changes[:n]) / n
    out[n] = 100 * gain / (gain + loss)
    for i in range(n, changes.size):
        gain = (gain * (n - 1) + max(changes[i], 0.0)) / n
        loss = (loss * (n - 1) + max(-changes[i], 0.0)) / n
        out[i + 1] = 100 * gain / (gain + loss)
    return out


def _close(actual: Floats, expected: Floats) -> None:
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=0)


async def test_indicators_equal_references_over_their_warmup(lake: RunningServer) -> None:
    specs = [
        "sma(20)",
        "ema(10)",
        "ema(100)",
        "rsi(14)",
        "macd",
        "bbands(20,2.5)",
        "obv",
        "returns",
        "stoch(14,3)",
    ]

    response = await _indicators(lake, specs)

    assert [t.ToDatetime(tzinfo=UTC) for t in response.times] == [r["start_time"] for r in IDX][
        FIRST:LAST
    ]
    assert [s.indicator for s in response.series] == specs
    sma, ema10, ema100, rsi, macd, bbands, obv, returns, stoch = map(_lines, response.series)
    rolling = pd.Series(CLOSE).rolling(20)
    _close(sma["sma"], rolling.mean().to_numpy()[FIRST:LAST])
    # ema(10) reads 9 + 110 bars before the range: back across the night into session 2.
    warm = FIRST - 119
    assert warm < SESSION_MINUTES * 2
    _close(ema10["ema"], _talib_ema(CLOSE[warm:], 10)[119 : 119 + 90])
    # ema(100) wants 1109 bars, the lake has 630 before the range: from IDX's first bar.
    _close(ema100["ema"], _talib_ema(CLOSE, 100)[FIRST:LAST])
    warm = FIRST - 294
    _close(rsi["rsi"], _wilder_rsi(CLOSE[warm:], 14)[294 : 294 + 90])
    warm = FIRST - 403
    reference = batch.macd(CLOSE[warm:LAST])
    assert list(macd) == ["macd", "signal", "histogram"]
    for name, values in zip(macd, reference, strict=True):
        _close(macd[name], values[403:])
    middle = rolling.mean().to_numpy()[FIRST:LAST]
    width = 2.5 * rolling.std(ddof=0).to_numpy()[FIRST:LAST]
    assert list(bbands) == ["upper", "middle", "lower"]
    _close(bbands["upper"], middle + width)
    _close(bbands["middle"], middle)
    _close(bbands["lower"], middle - width)
    # OBV starts at the range's first bar, with its volume.
    direction = np.sign(np.diff(CLOSE[FIRST - 1 : LAST]))
    expected_obv = np.cumsum(
        np.concatenate(([VOLUME[FIRST]], (direction * VOLUME[FIRST:LAST])[1:]))
    )
    _close(obv["obv"], expected_obv)
    _close(returns["returns"], pd.Series(CLOSE).pct_change().to_numpy()[FIRST:LAST])
    fast_k = (
        100
        * (CLOSE - pd.Series(LOW).rolling(14).min())
        / (pd.Series(HIGH).rolling(14).max() - pd.Series(LOW).rolling(14).min())
    )
    slow_k = fast_k.rolling(3).mean()
    _close(stoch["k"], slow_k.to_numpy()[FIRST:LAST])
    _close(stoch["d"], slow_k.rolling(3).mean().to_numpy()[FIRST:LAST])


async def test_values_still_warming_up_are_nan(lake: RunningServer) -> None:
    response = await _indicators(lake, ["sma(20)", "vwap"], start=DAY0, end=DAY0 + 30 * MINUTE)

    sma, vwap = map(_lines, response.series)
    assert len(response.times) == 30
    assert np.isnan(sma["sma"][:19]).all()
    _close(sma["sma"][19:], pd.Series(CLOSE).rolling(20).mean().to_numpy()[19:30])
    typical = (HIGH[:30] + LOW[:30] + CLOSE[:30]) / 3
    _close(vwap["vwap"], np.cumsum(typical * VOLUME[:30]) / np.cumsum(VOLUME[:30]))


async def test_resampled_bars_feed_the_indicators(lake: RunningServer) -> None:
    response = await _indicators(lake, ["sma(4)"], interval=bar_pb2.INTERVAL_5M)

    five = pd.Series(CLOSE[FIRST - 15 : LAST]).groupby(np.arange(105) // 5).last()
    (sma,) = map(_lines, response.series)
    assert len(response.times) == 18
    _close(sma["sma"], five.rolling(4).mean().to_numpy()[3:])


async def test_an_empty_range_of_a_known_symbol_has_empty_lines(lake: RunningServer) -> None:
    night = DAY0 + timedelta(hours=8)

    response = await _indicators(lake, ["macd"], start=night, end=night + timedelta(hours=2))

    assert list(response.times) == []
    assert {line.name: list(line.values) for line in response.series[0].lines} == {
        "macd": [],
        "signal": [],
        "histogram": [],
    }


@pytest.mark.parametrize("bad", ["sma(1)", "macd(26,12)", "foo(3)", "sma(20, 2)"])
async def test_a_bad_spec_is_invalid_argument_on_its_index(lake: RunningServer, bad: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _indicators(lake, ["sma(20)", bad, "rsi"])

    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in field_violations(refused.value)] == ["indicators[1]"]


async def test_a_valid_pattern_with_bad_parameters_says_why(lake: RunningServer) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _indicators(lake, ["sma(20)", "macd(26,12)"])

    assert field_violations(refused.value) == [
        ("indicators[1]", "macd: slow (12) must be greater than fast (26)")
    ]
    assert error_info(refused.value).reason == "INVALID_INDICATOR_SPEC"


async def test_an_unknown_symbol_is_not_found(lake: RunningServer) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _indicators(lake, ["sma(20)"], symbol="NOPE")

    assert refused.value.code() is grpc.StatusCode.NOT_FOUND
    info = error_info(refused.value)
    assert (info.reason, info.metadata["symbol"]) == ("SYMBOL_NOT_FOUND", "NOPE")


async def test_more_bars_than_the_limit_is_invalid_argument(lake: RunningServer) -> None:
    most = await _indicators(
        lake, ["returns"], symbol="DENSE", start=DENSE0, end=DENSE0 + MAX_BARS * MINUTE
    )
    assert len(most.times) == MAX_BARS
    assert math.isnan(most.series[0].lines[0].values[0])

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _indicators(
            lake, ["returns"], symbol="DENSE", start=DENSE0, end=DENSE0 + (MAX_BARS + 1) * MINUTE
        )

    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in field_violations(refused.value)] == ["start_time", "end_time"]
    info = error_info(refused.value)
    assert (info.reason, info.metadata["max_bars"]) == ("TOO_MANY_BARS", str(MAX_BARS))
