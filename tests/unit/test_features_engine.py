"""The features engine: bar-by-bar indicators per (symbol, interval) equal the batch ones,
survive a JSON checkpoint, ignore redeliveries, recompute an amended last bar, and come out
as gold.features rows in the table's exact schema."""

from __future__ import annotations

import itertools
import json
import logging
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from financelake.stream.bar_sequence import DEFAULT_MEMORY
from financelake.stream.features_engine import FeatureEngine
from financelake.stream.indicators import IndicatorConfig, compute_batch
from financelake.stream.lake import FEATURES

pytestmark = pytest.mark.unit

S = 1_000_000_000
M = 60 * S
T0 = 1_700_000_040 * S  # a minute boundary
NOW = T0 + 10_000 * M
INDICATORS = IndicatorConfig().output_names()

Frame = dict[str, np.ndarray]


@dataclass(frozen=True)
class Series:
    """One key's bars: a seeded random walk with consistent OHLC."""

    symbol: str
    interval: str
    start: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def frame(self, index: np.ndarray | slice | list[int], revision: int = 0) -> Frame:
        start = self.start[index]
        n = len(start)
        return {
            "symbol": np.full(n, self.symbol),
            "interval": np.full(n, self.interval),
            "start_time_ns": start,
            "open": self.open[index],
            "high": self.high[index],
            "low": self.low[index],
            "close": self.close[index],
            "volume": self.volume[index],
            "revision": np.full(n, revision, dtype=np.int64),
        }

    def batch(self) -> dict[str, np.ndarray]:
        return compute_batch(self.high, self.low, self.close, self.volume)


def _walk(symbol: str, interval: str, size: int = 300, seed: int = 7, step: int = M) -> Series:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, size)))
    open_ = close * (1 + rng.normal(0, 0.002, size))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.003, size)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.003, size)))
    volume = rng.integers(0, 10_000, size).astype(np.float64)
    volume[:2] = 0.0  # VWAP stays undefined until something trades
    start = T0 + step * np.arange(size, dtype=np.int64)
    return Series(symbol, interval, start, open_, high, low, close, volume)


def _concat(*frames: Frame) -> Frame:
    return {name: np.concatenate([f[name] for f in frames]) for name in frames[0]}


def _shuffled(frame: Frame, rng: np.random.Generator) -> Frame:
    order = rng.permutation(len(frame["start_time_ns"]))
    return {name: column[order] for name, column in frame.items()}


def _apply(engine: FeatureEngine, frame: Frame, now: int = NOW) -> pa.Table:
    return engine.apply(**frame, now_ns=now)


def _key_rows(table: pa.Table, series: Series) -> pa.Table:
    mask = pc.and_(
        pc.equal(table["symbol"], series.symbol), pc.equal(table["interval"], series.interval)
    )
    return table.filter(mask).sort_by("start_time")


def _values(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table[name].to_numpy(zero_copy_only=False), dtype=np.float64)


def _assert_matches_batch(table: pa.Table, series: Series) -> None:
    rows = _key_rows(table, series)
    np.testing.assert_array_equal(
        rows["start_time"].cast(pa.int64()).to_numpy(), series.start // 1_000
    )
    np.testing.assert_array_equal(_values(rows, "close"), series.close)
    for name, expected in series.batch().items():
        got = _values(rows, name)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=name)
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=0, err_msg=name)


def test_feature_columns_are_the_default_indicator_outputs() -> None:
    fields = FEATURES.schema.fields
    names = [f.name for f in fields]
    assert names[:5] == ["symbol", "interval", "start_time", "close", "volume"]
    assert names[5:-1] == INDICATORS
    assert names[-1] == "computed_time"
    assert [f.name for f in fields if not f.required] == INDICATORS
    assert all(f.doc for f in fields)
    assert len({f.field_id for f in fields}) == len(fields)


def test_chunked_unsorted_mixed_keys_equal_the_batch_indicators() -> None:
    keys = [
        _walk("AAPL", "1m", seed=1),
        _walk("AAPL", "5m", seed=2, step=5 * M),
        _walk("MSFT", "1m", seed=3),
    ]
    rng = np.random.default_rng(0)
    engine = FeatureEngine()
    bounds = [0, 1, 7, 100, 101, 260, 300]
    tables = [
        _apply(engine, _shuffled(_concat(*(s.frame(slice(lo, hi)) for s in keys)), rng))
        for lo, hi in itertools.pairwise(bounds)
    ]
    table = pa.concat_tables(tables)

    assert table.num_rows == 900
    assert engine.key_count == 3
    for series in keys:
        _assert_matches_batch(table, series)
    # Each call's rows come sorted by key and start.
    for part in tables:
        assert part.equals(part.sort_by([("symbol", "ascending"), ("interval", "ascending")]))


def test_rows_have_the_table_schema_with_nulls_while_warming_up() -> None:
    series = _walk("AAPL", "1m")
    table = _apply(FeatureEngine(), series.frame(slice(0, 60)))

    assert table.schema.equals(FEATURES.schema.as_arrow(), check_metadata=True)
    assert table["sma_50"].null_count == 49
    assert table["obv"].null_count == 0
    assert table["vwap"].null_count == 2  # no volume traded in the first two bars
    for name in INDICATORS:  # no NaN hides behind a valid slot
        assert not pc.any(pc.is_nan(table[name])).as_py(), name
    assert set(table["computed_time"].cast(pa.int64()).to_pylist()) == {NOW // 1_000}

    empty = _apply(FeatureEngine(), series.frame(slice(0, 0)))
    assert empty.num_rows == 0
    assert empty.schema.equals(FEATURES.schema.as_arrow(), check_metadata=True)


@pytest.mark.parametrize("split", [1, 26, 150])
def test_a_json_checkpoint_mid_series_continues_identically(split: int) -> None:
    series = _walk("AAPL", "1m")
    amended = series.frame([split - 1], revision=1)
    amended["close"] = amended["close"] * 1.02
    rest = series.frame(slice(split, 300))

    straight = FeatureEngine()
    _apply(straight, series.frame(slice(0, split)))
    expected = [_apply(straight, amended), _apply(straight, rest)]

    first = FeatureEngine()
    _apply(first, series.frame(slice(0, split)))
    snapshot = json.dumps(first.to_dict(), allow_nan=False)
    restored = FeatureEngine.from_dict(json.loads(snapshot))
    got = [_apply(restored, amended), _apply(restored, rest)]

    assert [t.num_rows for t in got] == [1, 300 - split]
    for want, have in zip(expected, got, strict=True):
        assert have.equals(want)


def test_redelivered_bars_are_ignored() -> None:
    series = _walk("AAPL", "1m")
    engine = FeatureEngine()
    first = _apply(engine, series.frame(slice(0, 101)))
    remembered = slice(101 - DEFAULT_MEMORY, 101)

    assert _apply(engine, series.frame(remembered)).num_rows == 0
    assert _apply(engine, series.frame([100, 95, 90])).num_rows == 0
    assert engine.duplicates == DEFAULT_MEMORY + 3
    assert (engine.amendments_ignored, engine.out_of_order) == (0, 0)
    # Older than the memory, a redelivery cannot be told from a late bar; neither is applied.
    assert _apply(engine, series.frame([0])).num_rows == 0
    assert engine.out_of_order == 1
    rest = _apply(engine, series.frame(slice(101, 300)))
    _assert_matches_batch(pa.concat_tables([first, rest]), series)


def _corrected(series: Series, k: int) -> Series:
    close = series.close.copy()
    close[k] *= 0.97
    low = np.minimum(series.low, close)
    volume = series.volume.copy()
    volume[k] += 5_000
    return Series(
        series.symbol, series.interval, series.start, series.open, series.high, low, close, volume
    )


def test_amending_the_last_bar_recomputes_it_from_the_state_before() -> None:
    k = 120
    series = _walk("AAPL", "1m")
    fixed = _corrected(series, k)
    engine = FeatureEngine()
    _apply(engine, series.frame(slice(0, k + 1)))

    row = _apply(engine, fixed.frame([k], revision=1))

    reference = FeatureEngine()
    _apply(reference, fixed.frame(slice(0, k)))
    assert row.equals(_apply(reference, fixed.frame([k])))
    # The same revision again is a redelivery, and later bars build on the corrected one.
    assert _apply(engine, fixed.frame([k], revision=1)).num_rows == 0
    rest = _apply(engine, fixed.frame(slice(k + 1, 300)))
    _assert_matches_batch(
        pa.concat_tables([_apply(FeatureEngine(), fixed.frame(slice(0, k))), row, rest]), fixed
    )


def test_both_versions_of_a_bar_in_one_call_give_one_row() -> None:
    k = 40
    series = _walk("AAPL", "1m")
    fixed = _corrected(series, k)
    frame = _concat(fixed.frame([k], revision=1), series.frame(slice(0, k + 1)))

    table = _apply(FeatureEngine(), frame)

    assert table.num_rows == k + 1
    assert table.equals(_apply(FeatureEngine(), fixed.frame(slice(0, k + 1))))


def test_older_amendments_and_out_of_order_bars_are_counted_logged_and_not_applied(
    caplog: pytest.LogCaptureFixture,
) -> None:
    series = _walk("MSFT", "1m")
    engine = FeatureEngine()
    _apply(engine, series.frame([i for i in range(60) if i != 40]))

    with caplog.at_level(logging.WARNING, logger="financelake.stream.features_engine"):
        refused = _apply(engine, _concat(series.frame([50], revision=1), series.frame([40])))

    assert refused.num_rows == 0
    assert (engine.amendments_ignored, engine.out_of_order, engine.duplicates) == (1, 1, 0)
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "MSFT 1m late_amendment" in record.getMessage()
    assert "MSFT 1m out_of_order" in record.getMessage()
    # The state is as if neither had arrived.
    reference = FeatureEngine()
    _apply(reference, series.frame([i for i in range(60) if i != 40]))
    assert _apply(engine, series.frame([60])).equals(_apply(reference, series.frame([60])))


def test_bad_columns_are_refused() -> None:
    frame = _walk("AAPL", "1m").frame(slice(0, 3))
    with pytest.raises(ValueError, match="unknown interval"):
        _apply(FeatureEngine(), {**frame, "interval": np.full(3, "2m")})
    with pytest.raises(ValueError, match="same length"):
        _apply(FeatureEngine(), {**frame, "close": frame["close"][:2]})
