"""Z-score alert rules: a big move or volume spike fires once with the right sign, severity
and a stable id; noise, flat markets and short histories stay quiet; redeliveries and
amendments never fire twice; the state survives a JSON checkpoint; rows fit gold.alerts."""

from __future__ import annotations

import json
import math
import uuid

import numpy as np
import pyarrow as pa
import pytest

from financelake.stream.alert_rules import (
    AlertConfig,
    AlertEngine,
    DetectedAlert,
    alert_id,
    alerts_table,
)
from financelake.stream.lake import ALERTS

pytestmark = pytest.mark.unit

S = 1_000_000_000
M = 60 * S
T0 = 1_700_000_040 * S
NOW = T0 + 10_000 * M
SIGMA = 0.001  # per-bar return volatility of the quiet market

Frame = dict[str, np.ndarray]


def _quiet(size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Closes of a random walk with SIGMA returns, and volumes around 1000."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, SIGMA, size)))
    volume = np.round(rng.lognormal(math.log(1000), 0.2, size))
    return close, volume


def _jump(close: np.ndarray, at: int, sigmas: float) -> np.ndarray:
    """`close` with a level shift of `sigmas` quiet-market sigmas from bar `at` on (one move,
    not a spike that reverts on the next bar)."""
    moved = close.copy()
    moved[at:] *= math.exp(sigmas * SIGMA)
    return moved


def _log_returns(close: np.ndarray) -> np.ndarray:
    returns: np.ndarray = np.log(close[1:] / close[:-1])
    return returns


def _frame(
    close: np.ndarray,
    volume: np.ndarray,
    index: slice | list[int] | None = None,
    *,
    symbol: str = "AAPL",
    revision: int = 0,
) -> Frame:
    rows = np.arange(len(close))[index if index is not None else slice(None)]
    n = len(rows)
    return {
        "symbol": np.full(n, symbol),
        "interval": np.full(n, "1m"),
        "start_time_ns": T0 + M * rows.astype(np.int64),
        "close": close[rows],
        "volume": volume[rows],
        "revision": np.full(n, revision, dtype=np.int64),
    }


def _apply(engine: AlertEngine, frame: Frame) -> list[DetectedAlert]:
    return engine.apply(**frame, now_ns=NOW)


def _expected_z(series: np.ndarray, at: int, window: int) -> float:
    baseline = series[at - window : at]
    return float((series[at] - baseline.mean()) / baseline.std(ddof=1))


@pytest.mark.parametrize(
    ("sigmas", "severity"), [(12.0, "critical"), (-12.0, "critical"), (6.0, "warning")]
)
def test_a_big_move_after_a_quiet_walk_fires_one_price_move(sigmas: float, severity: str) -> None:
    quiet, volume = _quiet(210, seed=4)
    close = _jump(quiet, 200, sigmas)
    alerts = _apply(AlertEngine(), _frame(close, volume))

    (alert,) = alerts
    r = _log_returns(close)[199]
    z = _expected_z(_log_returns(close), 199, 60)
    assert alert.kind == "price_move"
    assert alert.severity == severity
    assert alert.value == pytest.approx(r, rel=1e-12)
    assert alert.score == pytest.approx(z, rel=1e-9)
    assert math.copysign(1, alert.score) == math.copysign(1, sigmas)
    assert (alert.symbol, alert.interval, alert.threshold) == ("AAPL", "1m", 4.0)
    assert (alert.event_time_ns, alert.detected_time_ns) == (T0 + 200 * M, NOW)
    assert alert.message == f"AAPL 1m close moved {math.expm1(r):+.2%} (z = {z:+.1f})"
    # The same bar always gets the same id, whatever engine sees it.
    assert alert.alert_id == alert_id("AAPL", "1m", "price_move", T0 + 200 * M)
    assert alert.alert_id == _apply(AlertEngine(), _frame(close, volume))[0].alert_id
    assert uuid.UUID(alert.alert_id).version == 5


def test_alert_ids_differ_by_symbol_kind_and_bar() -> None:
    ids = {
        alert_id(symbol, "1m", kind, T0 + minute * M)
        for symbol in ("AAPL", "MSFT")
        for kind in ("price_move", "volume_spike")
        for minute in (0, 1)
    }
    assert len(ids) == 8


def test_a_volume_spike_fires_volume_spike_but_a_drought_does_not() -> None:
    close, volume = _quiet(202, seed=4)
    volume[200] = 20_000
    volume[201] = 10
    alerts = _apply(AlertEngine(), _frame(close, volume))

    (alert,) = alerts
    assert (alert.kind, alert.value, alert.event_time_ns) == ("volume_spike", 20_000, T0 + 200 * M)
    z = _expected_z(np.log1p(volume), 200, 60)
    assert alert.score == pytest.approx(z, rel=1e-9)
    assert alert.severity == "critical"  # z is about 13, beyond twice the threshold
    assert alert.message == f"AAPL 1m volume 20,000 spiked (z = {z:+.1f})"


def test_noise_alone_stays_below_the_threshold() -> None:
    # A rolling 60-bar z-score has fat tails: about one seed in three crosses 4 somewhere in
    # 500 bars. This one does not.
    close, volume = _quiet(500, seed=2)

    assert _apply(AlertEngine(AlertConfig(z_threshold=4.0)), _frame(close, volume)) == []
    # The rules did run: at 2 sigma the same noise fires now and then.
    assert len(_apply(AlertEngine(AlertConfig(z_threshold=2.0)), _frame(close, volume))) > 5


def test_a_flat_market_fires_nothing_even_on_a_jump() -> None:
    close = np.full(100, 100.0)
    volume = np.full(100, 1234.5)
    close[99] = 150.0
    volume[99] = 1e6

    assert _apply(AlertEngine(), _frame(close, volume)) == []


def test_nothing_fires_before_the_window_is_full() -> None:
    window = 10
    close, volume = _quiet(13, seed=2)
    big_close, big_volume = close.copy(), volume.copy()
    big_close[10] = big_close[11] = close[9] * 1.5  # bar 10 is a move, bar 11 flat
    big_volume[10] = 1e7

    def kinds(bars: int, c: np.ndarray, v: np.ndarray) -> list[str]:
        engine = AlertEngine(AlertConfig(window=window))
        return [a.kind for a in _apply(engine, _frame(c, v, slice(0, bars)))]

    # Bar 10 has 10 volumes but only 9 returns before it.
    assert kinds(11, big_close, volume) == []
    assert kinds(11, close, big_volume) == ["volume_spike"]
    moved = close.copy()
    moved[11] = close[10] * 1.5
    assert kinds(12, moved, volume) == ["price_move"]
    assert kinds(10, close, big_volume) == []


def test_redeliveries_and_amendments_never_fire_again() -> None:
    quiet, volume = _quiet(201, seed=4)
    close = _jump(quiet, 200, 12)
    engine = AlertEngine()
    assert len(_apply(engine, _frame(close, volume))) == 1

    assert _apply(engine, _frame(close, volume, [200])) == []
    assert _apply(engine, _frame(close, volume, [200], revision=1)) == []
    assert _apply(engine, _frame(close, volume, [190], revision=2)) == []
    assert (engine.duplicates, engine.amendments_ignored, engine.out_of_order) == (1, 2, 0)
    assert _apply(engine, _frame(close, volume, [0])) == []  # older than the memory
    assert engine.out_of_order == 1


def test_keys_are_independent() -> None:
    quiet, volume = _quiet(201, seed=4)
    close = _jump(quiet, 200, 12)
    quiet_close, quiet_volume = _quiet(201, seed=5)
    frame = {
        name: np.concatenate([a, b])
        for (name, a), b in zip(
            _frame(close, volume).items(),
            _frame(quiet_close, quiet_volume, symbol="MSFT").values(),
            strict=True,
        )
    }
    order = np.random.default_rng(0).permutation(len(frame["close"]))
    engine = AlertEngine()

    alerts = _apply(engine, {name: column[order] for name, column in frame.items()})

    assert [(a.symbol, a.kind) for a in alerts] == [("AAPL", "price_move")]
    assert engine.key_count == 2


def test_a_json_checkpoint_mid_series_continues_identically() -> None:
    quiet, volume = _quiet(300, seed=4)
    close = _jump(_jump(quiet, 120, -12), 250, 9)
    volume[260] = 50_000
    straight = _apply(AlertEngine(), _frame(close, volume))

    first = AlertEngine()
    before = _apply(first, _frame(close, volume, slice(0, 170)))
    snapshot = json.dumps(first.to_dict(), allow_nan=False)
    restored = AlertEngine.from_dict(json.loads(snapshot), AlertConfig())
    after = _apply(restored, _frame(close, volume, slice(170, 300)))

    assert [a.kind for a in straight] == ["price_move", "price_move", "volume_spike"]
    assert before + after == straight
    assert _apply(restored, _frame(close, volume, [299])) == []  # its memory came along


def test_restoring_under_a_shorter_window_keeps_the_latest_values() -> None:
    close, volume = _quiet(100, seed=4)
    engine = AlertEngine()
    _apply(engine, _frame(close, volume))

    restored = AlertEngine.from_dict(engine.to_dict(), AlertConfig(window=5))

    (key,) = restored.to_dict()["keys"]
    assert key["returns"] == [
        math.log(a / b) for a, b in zip(close[-5:], close[-6:-1], strict=True)
    ]
    assert key["log_volumes"] == [math.log1p(v) for v in volume[-5:]]


def test_alerts_table_matches_the_gold_alerts_schema() -> None:
    quiet, volume = _quiet(202, seed=4)
    close = _jump(quiet, 200, 12)
    volume[201] = 30_000
    alerts = _apply(AlertEngine(), _frame(close, volume))

    table = alerts_table(alerts)

    assert table.schema.equals(ALERTS.schema.as_arrow(), check_metadata=True)
    assert table["kind"].to_pylist() == ["price_move", "volume_spike"]
    assert table["event_time"].cast(pa.int64()).to_pylist() == [
        (T0 + 200 * M) // 1_000,
        (T0 + 201 * M) // 1_000,
    ]
    assert table["detected_time"].cast(pa.int64()).to_pylist() == [NOW // 1_000] * 2
    assert table["alert_id"].to_pylist() == [a.alert_id for a in alerts]
    assert table["message"].to_pylist() == [a.message for a in alerts]
    empty = alerts_table([])
    assert empty.num_rows == 0
    assert empty.schema.equals(ALERTS.schema.as_arrow(), check_metadata=True)


def test_meaningless_configs_are_refused() -> None:
    with pytest.raises(ValueError, match="window"):
        AlertConfig(window=1)
    with pytest.raises(ValueError, match="z_threshold"):
        AlertConfig(z_threshold=0.0)
