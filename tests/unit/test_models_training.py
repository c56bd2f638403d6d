"""Training: walk-forward folds never validate on the past, a planted signal is found and
beats the naive baselines, pure noise is reported as no skill, and ONNX Runtime reproduces
scikit-learn (or the model is refused)."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import onnxruntime
import pytest

from financelake.models.dataset import (
    AnomalyDataset,
    Dataset,
    FeatureRows,
    anomaly_dataset,
    direction_dataset,
    latest_rows,
)
from financelake.models.errors import NotEnoughData, OnnxMismatch
from financelake.models.export import INPUT_NAME, OUTPUTS, check_onnx, to_onnx
from financelake.models.training import (
    MODELS,
    Task,
    TrainedModel,
    TrainingConfig,
    model_spec,
    train_anomaly,
    train_supervised,
    walk_forward_folds,
)
from tests.fixtures.market_features import features_rows, market_bars

pytestmark = [
    pytest.mark.unit,
    # skl2onnx's HistGradientBoosting converter; harmless under protobuf < 7 (pyproject.toml).
    pytest.mark.filterwarnings("ignore:Field onnx.AttributeProto.ints:DeprecationWarning"),
]

# Small, fast models: the properties under test do not depend on their size.
FAST = TrainingConfig(gbm_iterations=40, anomaly_trees=25, anomaly_window=30)
DIRECTION_MODELS = ("direction-logistic", "direction-gbm")


def _datasets(reversal: float, seed: int) -> tuple[Dataset, AnomalyDataset]:
    source = FeatureRows(
        latest_rows(features_rows(market_bars(seed=seed, reversal=reversal))), "1m", None
    )
    return direction_dataset(source), anomaly_dataset(source, FAST.anomaly_window)


def _train_all(reversal: float, seed: int) -> dict[str, TrainedModel]:
    direction, anomalies = _datasets(reversal, seed)
    return {
        spec.name: (
            train_anomaly(spec, anomalies, FAST)
            if spec.task is Task.ANOMALY
            else train_supervised(spec, direction, FAST)
        )
        for spec in MODELS
    }


def _minutes(count: int) -> np.ndarray:
    return np.arange(count).astype("datetime64[m]").astype("datetime64[us]")


@pytest.fixture(scope="module")
def planted() -> dict[str, TrainedModel]:
    """Every model trained on a market whose next return reverses half of the last one."""
    return _train_all(reversal=0.5, seed=7)


@pytest.fixture(scope="module")
def noise() -> dict[str, TrainedModel]:
    """Every supervised model trained on independent returns: nothing to find."""
    direction, _ = _datasets(reversal=0.0, seed=11)
    return {
        spec.name: train_supervised(spec, direction, FAST)
        for spec in MODELS
        if spec.task is not Task.ANOMALY
    }


def test_walk_forward_folds_validate_only_on_later_bars():
    times = np.repeat(_minutes(100), 3)  # three symbols per bar time
    label_times = (times + np.timedelta64(1, "m")).astype("datetime64[us]")

    folds = walk_forward_folds(times, label_times, folds=4)

    assert len(folds) == 4
    validated = np.concatenate([fold.validate for fold in folds])
    assert (np.diff(validated) == 1).all()  # consecutive blocks up to the last row
    assert validated[-1] == times.shape[0] - 1
    assert times[validated[0]] == np.datetime64("1970-01-01T00:20", "us")
    for earlier, later in itertools.pairwise(folds):
        assert earlier.train.shape[0] < later.train.shape[0]  # an expanding window
    for fold in folds:
        start = times[fold.validate].min()
        # Every training row, and the bar its label needs, is before the validation block;
        # the bar just before the block is purged since its label is the block's first close.
        assert (times[fold.train] < start).all()
        assert (label_times[fold.train] < start).all()
        assert times[fold.train].max() == start - np.timedelta64(2, "m")
        # All symbols of one time fall in one block.
        assert np.isin(times[fold.validate], times[fold.train]).sum() == 0


def test_folds_need_enough_distinct_bar_times():
    times = _minutes(4)
    with pytest.raises(NotEnoughData, match="cannot make 5 walk-forward folds"):
        walk_forward_folds(times, times, folds=5)


def test_too_few_rows_raise_not_enough_data():
    direction, _ = _datasets(reversal=0.0, seed=3)
    config = replace(FAST, min_rows=len(direction) + 1)
    with pytest.raises(NotEnoughData, match="usable rows") as raised:
        train_supervised(model_spec("direction-logistic"), direction, config)
    assert raised.value.reason == "NOT_ENOUGH_TRAINING_DATA"


@pytest.mark.parametrize("name", DIRECTION_MODELS)
def test_a_planted_signal_is_found_and_beats_every_baseline(
    planted: dict[str, TrainedModel], name: str
):
    validation = planted[name].validation
    metrics, baselines = validation.metrics, validation.baseline_metrics

    assert metrics["roc_auc"] > 0.65
    assert metrics["roc_auc"] - 3 * metrics["roc_auc_se"] > 0.5
    for baseline in ("always_up", "last_direction"):
        assert metrics["roc_auc"] > baselines[f"{baseline}.roc_auc"]
        assert metrics["accuracy"] > baselines[f"{baseline}.accuracy"]
        assert metrics["log_loss"] < baselines[f"{baseline}.log_loss"]
    assert validation.skill is True
    assert validation.verdict.startswith("beats every baseline")
    assert validation.folds == FAST.folds
    assert validation.rows == planted[name].check_features.shape[0]


def test_the_return_model_finds_the_planted_signal(planted: dict[str, TrainedModel]):
    validation = planted["return-ridge"].validation
    assert validation.metrics["mae"] < validation.baseline_metrics["zero_return.mae"]
    assert validation.skill is True


@pytest.mark.parametrize("name", DIRECTION_MODELS)
def test_pure_noise_shows_no_skill(noise: dict[str, TrainedModel], name: str):
    validation = noise[name].validation

    assert 0.45 < validation.metrics["roc_auc"] < 0.55
    assert 0.45 < validation.metrics["accuracy"] < 0.55
    assert validation.skill is False
    assert validation.verdict.startswith("no evidence of skill")


def test_the_return_model_finds_nothing_in_noise(noise: dict[str, TrainedModel]):
    validation = noise["return-ridge"].validation
    assert validation.skill is False
    assert validation.metrics["mae"] == pytest.approx(
        validation.baseline_metrics["zero_return.mae"], rel=0.05
    )


@pytest.mark.parametrize("name", [spec.name for spec in MODELS])
def test_onnx_runtime_computes_what_scikit_learn_does(planted: dict[str, TrainedModel], name: str):
    model = planted[name]
    onnx = to_onnx(model)

    check = check_onnx(model, onnx)

    assert check.rows == model.check_features.shape[0] > 1000
    session = onnxruntime.InferenceSession(onnx, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == [INPUT_NAME]
    assert session.get_inputs()[0].shape[1] == len(model.feature_names)
    assert tuple(o.name for o in session.get_outputs()) == OUTPUTS[model.spec.task]
    outputs = session.run(None, {INPUT_NAME: model.check_features})
    estimator = model.estimator
    if model.spec.task is Task.DIRECTION:
        expected = estimator.predict_proba(model.check_features)
        np.testing.assert_allclose(outputs[1], expected, atol=1e-5)
    elif model.spec.task is Task.RETURN:
        expected = estimator.predict(model.check_features)
        np.testing.assert_allclose(outputs[0].ravel(), expected, rtol=1e-4, atol=1e-9)
    else:
        expected = estimator.decision_function(model.check_features)
        np.testing.assert_allclose(outputs[1].ravel(), expected, atol=1e-5)
        assert (outputs[0].ravel() == estimator.predict(model.check_features)).mean() > 0.999


def test_an_onnx_model_that_computes_something_else_is_refused(
    planted: dict[str, TrainedModel],
):
    logistic = to_onnx(planted["direction-logistic"])
    with pytest.raises(OnnxMismatch, match="differs from scikit-learn") as raised:
        check_onnx(planted["direction-gbm"], logistic)
    assert raised.value.reason == "ONNX_OUTPUT_MISMATCH"


def test_the_anomaly_model_flags_planted_spikes():
    market = market_bars(seed=5)
    spikes = np.arange(1200, 1500, 60)
    # A 3% jump (about 15 sigma) that stays, on 40 times the usual volume.
    jumps = np.cumprod(np.where(np.isin(np.arange(market[0].close.shape[0]), spikes), 1.03, 1.0))
    shocked = []
    for bars in market:
        volume = bars.volume.copy()
        volume[spikes] *= 40.0
        shocked.append(replace(bars, volume=volume).with_close(bars.close * jumps))
    source = FeatureRows(latest_rows(features_rows(shocked)), "1m", None)
    data = anomaly_dataset(source, FAST.anomaly_window)
    model = train_anomaly(model_spec("anomaly"), data, FAST)
    session = onnxruntime.InferenceSession(to_onnx(model), providers=["CPUExecutionProvider"])

    labels, scores = session.run(None, {INPUT_NAME: data.features})

    spike_times = market[0].start_us[spikes]
    at_spike = np.isin(data.start_time.astype(np.int64), spike_times)
    assert at_spike.sum() == len(spikes) * len(market)
    assert (labels.ravel()[at_spike] == -1).all()
    assert scores.ravel()[at_spike].max() < np.quantile(scores, 0.02)
    # The spikes, and nearly every other bar the z-score rules would flag.
    assert model.validation.metrics["rule_alert_recall"] > 0.9
    assert model.params == {"window_bars": float(FAST.anomaly_window)}
