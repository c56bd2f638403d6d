"""The stream's alerts with the anomaly model: a model trained and registered by the real
workflow (on-disk registry) is picked up by the alerts engine and flags a bar both z-score
rules find extreme; without a registered model the rules run alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from financelake.models.model_set import ModelSet
from financelake.models.registry import ModelRegistry, open_registry
from financelake.stream.alert_rules import AlertConfig, AlertEngine, DetectedAlert
from financelake.stream.anomaly import ANOMALY_MODEL, AnomalyModels
from tests.fixtures.prediction import FAST, prediction_settings

pytestmark = pytest.mark.integration

MINUTE_NS = 60 * 10**9
T0 = 1_767_225_600 * 10**9


def scored_bars(engine: AlertEngine, close: np.ndarray, volume: np.ndarray) -> list[DetectedAlert]:
    n = close.shape[0]
    return engine.apply(
        ["AAA"] * n,
        ["1m"] * n,
        T0 + MINUTE_NS * np.arange(n),
        close,
        volume,
        np.zeros(n, dtype=np.int64),
        now_ns=T0 + n * MINUTE_NS,
    )


def quiet_then_spike() -> tuple[np.ndarray, np.ndarray]:
    """60 quiet bars, then a 3% jump on 40 times the volume."""
    rng = np.random.default_rng(11)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, 61)))
    close[-1] = close[-2] * 1.03
    volume = rng.lognormal(8.0, 0.5, 61)
    volume[-1] *= 40
    return close, volume


def engine_for(registry: ModelRegistry) -> AlertEngine:
    anomaly = AnomalyModels(ModelSet(registry, names=(ANOMALY_MODEL,)))
    return AlertEngine(AlertConfig(window=FAST.anomaly_window), anomaly)


def test_a_registered_anomaly_model_flags_the_spike_beside_the_rules(trained_home: Path) -> None:
    engine = engine_for(open_registry(prediction_settings(trained_home)))

    alerts = scored_bars(engine, *quiet_then_spike())

    spike = [a for a in alerts if a.event_time_ns == T0 + 60 * MINUTE_NS]
    assert {a.kind for a in spike} == {"price_move", "volume_spike", "anomaly"}
    flagged = next(a for a in spike if a.kind == "anomaly")
    assert flagged.score < 0
    assert (flagged.severity, flagged.threshold, flagged.value) == ("warning", 0.0, flagged.score)
    assert "anomaly@1" in flagged.message
    quiet = [a for a in alerts if a.kind == "anomaly" and a.event_time_ns < spike[0].event_time_ns]
    assert len(quiet) <= 2  # the model flags about 1% of ordinary bars


def test_without_a_registered_model_only_the_rules_fire(tmp_path: Path) -> None:
    engine = engine_for(open_registry(prediction_settings(tmp_path / "home")))

    alerts = scored_bars(engine, *quiet_then_spike())

    assert {a.kind for a in alerts} == {"price_move", "volume_spike"}
