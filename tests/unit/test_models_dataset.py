"""Training rows from gold.features: the newest computation of a bar wins, features are
scale-free and see nothing after their bar, labels look exactly one bar ahead, and the anomaly
features are the stream's own alert scores."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyarrow as pa
import pytest

from financelake.models.dataset import (
    ANOMALY_FEATURES,
    DIRECTION_FEATURES,
    FeatureRows,
    anomaly_dataset,
    direction_dataset,
    direction_features,
    latest_rows,
)
from financelake.stream.alert_rules import AlertConfig, AlertEngine
from tests.fixtures.market_features import MINUTE_US, Bars, features_rows, market_bars

pytestmark = pytest.mark.unit

# sma_50 is the slowest indicator: its first value is at the 50th bar.
WARM_UP_BARS = 49


def _source(rows: pa.Table) -> FeatureRows:
    return FeatureRows(latest_rows(rows), "1m", snapshot_id=None)


def _perturbed_after(market: list[Bars], index: int, seed: int = 99) -> list[Bars]:
    """Every bar after `index` moved: other closes, other volumes."""
    rng = np.random.default_rng(seed)
    moved = []
    for bars in market:
        close = bars.close.copy()
        close[index + 1 :] *= np.exp(rng.normal(0.0, 0.01, close.shape[0] - index - 1))
        volume = bars.volume.copy()
        volume[index + 1 :] *= rng.uniform(0.1, 10.0, volume.shape[0] - index - 1)
        moved.append(replace(bars, volume=volume).with_close(close))
    return moved


def test_the_latest_computation_of_an_amended_bar_wins():
    market = market_bars(bars=120)
    original = features_rows(market)
    amended_close = market[0].close.copy()
    amended_close[80] *= 1.01
    amended = features_rows([market[0].with_close(amended_close)], computed_us=2**52)
    late_row = amended.slice(80, 1)
    # The amendment arrives first in the table: order must not matter, computed_time must.
    rows = latest_rows(pa.concat_tables([late_row, original]))

    assert rows.num_rows == original.num_rows
    bar = rows.filter(
        pa.compute.and_(
            pa.compute.equal(rows["symbol"], market[0].symbol),
            pa.compute.equal(rows["start_time"], late_row["start_time"][0]),
        )
    )
    assert bar["close"].to_pylist() == [amended_close[80]]
    starts = rows["start_time"].to_numpy().astype(np.int64)
    symbols = rows["symbol"].to_numpy(zero_copy_only=False)
    assert (symbols[1:] >= symbols[:-1]).all()
    assert (np.diff(starts)[symbols[1:] == symbols[:-1]] > 0).all()


def test_warming_up_rows_are_dropped_and_each_series_last_bar_has_no_label():
    market = market_bars(bars=200)
    data = direction_dataset(_source(features_rows(market)))

    assert data.feature_names == DIRECTION_FEATURES
    assert data.features.shape == (len(market) * (200 - WARM_UP_BARS - 1), len(DIRECTION_FEATURES))
    assert data.features.dtype == np.float32
    assert np.isfinite(data.features).all()
    assert (np.diff(data.start_time.astype(np.int64)) >= 0).all()
    first, last = data.window
    assert int(first.timestamp() * 1e6) == market[0].start_us[WARM_UP_BARS]
    assert int(last.timestamp() * 1e6) == market[0].start_us[-2]
    for bars in market:
        mine = data.symbol == bars.symbol
        index = (data.start_time[mine].astype(np.int64) - bars.start_us[0]) // MINUTE_US
        expected_return = bars.close[index + 1] / bars.close[index] - 1.0
        np.testing.assert_allclose(data.next_return[mine], expected_return, rtol=1e-12)
        assert (data.up[mine] == (bars.close[index + 1] > bars.close[index])).all()
        assert (data.label_time[mine].astype(np.int64) == bars.start_us[index + 1]).all()


def test_features_are_scale_free():
    market = market_bars(bars=200)
    scaled = [
        replace(b, open=b.open * 1000, high=b.high * 1000, low=b.low * 1000, close=b.close * 1000)
        for b in market
    ]

    plain = direction_features(latest_rows(features_rows(market)))
    large = direction_features(latest_rows(features_rows(scaled)))

    finite = np.isfinite(plain).all(axis=1)
    assert finite.sum() > 0
    np.testing.assert_allclose(large[finite], plain[finite], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("cut", [60, 120, 150])
def test_no_feature_sees_a_later_bar(cut: int):
    """Perturb every bar after `cut`: every feature of every bar up to `cut` is unchanged, and
    so is every label up to the bar before it."""
    market = market_bars(bars=200)
    moved = _perturbed_after(market, cut)
    cut_time = market[0].start_us[cut]

    before = direction_dataset(_source(features_rows(market)))
    after = direction_dataset(_source(features_rows(moved)))
    anomalies_before = anomaly_dataset(_source(features_rows(market)), window=20)
    anomalies_after = anomaly_dataset(_source(features_rows(moved)), window=20)

    seen = before.start_time.astype(np.int64) <= cut_time
    assert seen.sum() > 0
    assert (after.start_time[seen] == before.start_time[seen]).all()
    np.testing.assert_array_equal(after.features[seen], before.features[seen])
    labelled = before.start_time.astype(np.int64) < cut_time
    np.testing.assert_array_equal(after.next_return[labelled], before.next_return[labelled])
    seen = anomalies_before.start_time.astype(np.int64) <= cut_time
    assert seen.sum() > 0
    np.testing.assert_array_equal(anomalies_after.features[seen], anomalies_before.features[seen])


def test_a_label_depends_on_the_next_bar_only():
    market = market_bars(bars=200)
    cut = 120
    cut_time = market[0].start_us[cut]
    beyond_next = _perturbed_after(market, cut + 1)
    next_close = [bars.close.copy() for bars in market]
    for close in next_close:
        close[cut + 1] *= 1.05
    next_moved = [bars.with_close(close) for bars, close in zip(market, next_close, strict=True)]

    base = direction_dataset(_source(features_rows(market)))
    far = direction_dataset(_source(features_rows(beyond_next)))
    near = direction_dataset(_source(features_rows(next_moved)))

    at_cut = base.start_time.astype(np.int64) == cut_time
    assert at_cut.sum() == len(market)
    np.testing.assert_array_equal(far.next_return[at_cut], base.next_return[at_cut])
    assert (near.next_return[at_cut] > base.next_return[at_cut]).all()
    np.testing.assert_array_equal(near.features[at_cut], base.features[at_cut])


def test_anomaly_features_are_the_stream_rules_scores():
    window = 20
    market = market_bars(bars=150)
    data = anomaly_dataset(_source(features_rows(market)), window=window)
    # A threshold near 0 makes the rules report nearly every score they compute.
    engine = AlertEngine(AlertConfig(window=window, z_threshold=1e-12))
    alerts = []
    for bars in market:
        alerts += engine.apply(
            [bars.symbol] * bars.close.shape[0],
            ["1m"] * bars.close.shape[0],
            bars.start_us * 1000,
            bars.close,
            bars.volume,
            np.zeros(bars.close.shape[0], dtype=np.int64),
            now_ns=0,
        )
    assert data.feature_names == ANOMALY_FEATURES
    index = {
        (symbol, int(start)): i
        for i, (symbol, start) in enumerate(
            zip(data.symbol, data.start_time.astype(np.int64), strict=True)
        )
    }
    compared = {"price_move": 0, "volume_spike": 0}
    first_bar_us = market[0].start_us[0]
    for alert in alerts:
        start_us = alert.event_time_ns // 1000
        if (alert.symbol, start_us) not in index:
            # The one bar whose volume is scored before its return can be.
            assert alert.kind == "volume_spike"
            assert start_us == first_bar_us + window * MINUTE_US
            continue
        row = index[(alert.symbol, start_us)]
        column = 0 if alert.kind == "price_move" else 1
        expected = abs(alert.score) if alert.kind == "price_move" else alert.score
        assert data.features[row, column] == pytest.approx(expected, rel=1e-5)
        compared[alert.kind] += 1
    # Every bar both rules score is in the data set.
    assert compared["price_move"] == len(data)
    assert compared["volume_spike"] > len(data) // 3
