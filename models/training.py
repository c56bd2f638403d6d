"""The models, and their walk-forward validation and final fit: pure functions of a dataset.

Models (`MODELS`; the registry keeps each under its name):

    direction-logistic  StandardScaler + LogisticRegression    P(next bar closes up)
    direction-gbm       HistGradientBoostingClassifier          P(next bar closes up)
    return-ridge        StandardScaler + Ridge                  next-bar return
    anomaly             IsolationForest on (|return z|, volume z)  anomaly score

The boosted model is HistGradientBoosting rather than GradientBoosting: it fits large lake
tables several times faster, and skl2onnx converts it as long as protobuf stays below 7 (pinned
in pyproject.toml). It has no scaler in front: trees split on order, so scaling would change
nothing but add one float32 rounding step in which ONNX Runtime and scikit-learn can differ
and send a value to the other side of a split. Its internal early stopping is off because it
validates on a random split of the training rows.

Validation is walk-forward only. The distinct bar start times are cut into `folds + 1`
consecutive blocks; fold k validates on block k and trains on every earlier row whose label
was known before block k starts (a bar just before the boundary is purged, since its label
is the first validation bar's close). Rows of all symbols at one time fall in one block.
Metrics are pooled over every validation row, each beside naive baselines computed on the same
rows, whose probabilities come from the fold's training rows only:

    always_up       predicts up; P(up) = the training rows' share of up bars
    last_direction  predicts the direction of the bar just closed; P(that direction) = how
                    often the next bar repeated it in the training rows
    zero_return     predicts a return of 0 (for MAE)

Financial returns are mostly noise, so a model is said to have skill only when its per-row
loss (log loss, or absolute error) beats every baseline's by more than two standard errors
of the per-row difference. Rows are treated as independent, which if anything flatters the
model; two standard errors is the least to ask.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.ensemble import HistGradientBoostingClassifier, IsolationForest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from financelake.models.dataset import AnomalyDataset, Dataset, Float32s, Float64s, Int64s, Times
from financelake.models.errors import NotEnoughData

__all__ = [
    "MODELS",
    "Fold",
    "ModelSpec",
    "Progress",
    "Task",
    "TrainedModel",
    "TrainingConfig",
    "Validation",
    "model_spec",
    "no_progress",
    "train_anomaly",
    "train_supervised",
    "walk_forward_folds",
]

Progress = Callable[[str], None]
"""Called after each fitted fold and after the final fit, with what was just done."""

# Probabilities are clipped this far from 0 and 1 before the log, as sklearn's log_loss does.
_EPS = 1e-15
_SKILL_STANDARD_ERRORS = 2.0


class Task(enum.Enum):
    """What a model predicts; the value is the `label` recorded in its metadata."""

    DIRECTION = "next_return_direction"
    RETURN = "next_return"
    ANOMALY = "anomaly"


@dataclass(frozen=True, slots=True)
class TrainingConfig:
    """Validation and hyperparameters. The defaults suit noisy market data: strong
    regularisation, small trees, slow learning."""

    folds: int = 5
    """Walk-forward folds; the first of folds + 1 time blocks only ever trains."""
    min_rows: int = 1000
    """Fewest usable rows a model is trained on; fewer raise NotEnoughData."""
    logistic_c: float = 1.0
    gbm_iterations: int = 200
    gbm_learning_rate: float = 0.05
    gbm_max_leaf_nodes: int = 15
    gbm_min_samples_leaf: int = 100
    ridge_alpha: float = 1.0
    anomaly_trees: int = 100
    """scikit-learn's default; skl2onnx's conversion time grows faster than the tree count
    (about 1 s for 50 trees, 13 s for 200)."""
    anomaly_contamination: float = 0.01
    """Share of the training bars the anomaly model flags."""
    anomaly_window: int = 60
    """Bars of history behind each z-score (StreamSettings.alert_window, so the alerts agent
    computes the same input)."""
    anomaly_z_threshold: float = 4.0
    """|z| of the stream's rules, the anomaly model's baseline."""
    seed: int = 0

    def __post_init__(self) -> None:
        if self.folds < 2:
            raise ValueError(f"folds must be >= 2, got {self.folds}")
        if self.min_rows < 1:
            raise ValueError(f"min_rows must be >= 1, got {self.min_rows}")


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A model the trainer knows: its registry name, task and scikit-learn estimator."""

    name: str
    task: Task
    estimator: str
    """What it is, for people (`StandardScaler + LogisticRegression`)."""
    build: Callable[[TrainingConfig], Any]
    """A fresh, unfitted estimator (a Pipeline) for the config."""


def _logistic(config: TrainingConfig) -> Pipeline:
    return Pipeline(
        [
            ("scale", StandardScaler()),
            ("model", LogisticRegression(C=config.logistic_c, max_iter=1000)),
        ]
    )


def _gbm(config: TrainingConfig) -> Pipeline:
    model = HistGradientBoostingClassifier(
        max_iter=config.gbm_iterations,
        learning_rate=config.gbm_learning_rate,
        max_leaf_nodes=config.gbm_max_leaf_nodes,
        min_samples_leaf=config.gbm_min_samples_leaf,
        early_stopping=False,
        random_state=config.seed,
    )
    return Pipeline([("model", model)])


def _ridge(config: TrainingConfig) -> Pipeline:
    return Pipeline([("scale", StandardScaler()), ("model", Ridge(alpha=config.ridge_alpha))])


def _isolation_forest(config: TrainingConfig) -> Pipeline:
    model = IsolationForest(
        n_estimators=config.anomaly_trees,
        contamination=config.anomaly_contamination,
        random_state=config.seed,
    )
    return Pipeline([("model", model)])


MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        "direction-logistic", Task.DIRECTION, "StandardScaler + LogisticRegression", _logistic
    ),
    ModelSpec("direction-gbm", Task.DIRECTION, "HistGradientBoostingClassifier", _gbm),
    ModelSpec("return-ridge", Task.RETURN, "StandardScaler + Ridge", _ridge),
    ModelSpec("anomaly", Task.ANOMALY, "IsolationForest", _isolation_forest),
)


def model_spec(name: str) -> ModelSpec:
    """The spec of a model by name; ValueError names the known ones."""
    for spec in MODELS:
        if spec.name == name:
            return spec
    known = ", ".join(spec.name for spec in MODELS)
    raise ValueError(f"unknown model {name!r}; known: {known}")


@dataclass(frozen=True, slots=True)
class Fold:
    """Row indices one walk-forward step trains and validates on."""

    train: Int64s
    validate: Int64s


@dataclass(frozen=True)
class Validation:
    """Walk-forward results, pooled over every validation row."""

    metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    """Keyed `<baseline>.<metric>`."""
    skill: bool | None
    """Whether the model beats every baseline by more than two standard errors; None for
    the anomaly model, which has no label to be right about."""
    verdict: str
    """One sentence for people saying what the numbers show."""
    folds: int
    rows: int
    """Validation rows (each validated once, by a model that never saw it)."""


@dataclass(frozen=True, eq=False)
class TrainedModel:
    """A model fitted on every usable row after its walk-forward validation."""

    spec: ModelSpec
    estimator: Any
    """The fitted Pipeline."""
    validation: Validation
    check_features: Float32s
    """The validation rows' features, to compare ONNX Runtime with scikit-learn on."""
    feature_names: tuple[str, ...]
    interval: str
    snapshot_id: int | None
    train_rows: int
    window: tuple[datetime, datetime]
    symbols: tuple[str, ...]
    params: dict[str, float]
    """Settings the model's input depends on (the anomaly scores' window)."""


def walk_forward_folds(start_time: Times, known_time: Times, folds: int) -> list[Fold]:
    """Expanding-window folds over time-ordered rows (see the module docstring).

    `known_time` is when a row's target becomes known (the next bar's start for a next-bar
    label; the bar's own start when there is no label); a training row must be known before
    its fold's validation block starts.
    """
    n = start_time.shape[0]
    if np.any(start_time[1:] < start_time[:-1]):
        raise ValueError("rows must be ordered by start_time")
    times = np.unique(start_time)
    if times.shape[0] < folds + 1:
        raise NotEnoughData(
            f"{times.shape[0]} distinct bar times cannot make {folds} walk-forward folds",
            metadata={"bar_times": str(times.shape[0]), "folds": str(folds)},
        )
    cuts = np.linspace(0, times.shape[0], folds + 2).astype(np.int64)[1:-1]
    boundaries = times[cuts]
    first = np.searchsorted(start_time, boundaries, side="left")
    last = np.append(first[1:], n)
    return [
        Fold(
            train=np.flatnonzero(known_time[:lo] < boundary).astype(np.int64),
            validate=np.arange(lo, hi, dtype=np.int64),
        )
        for boundary, lo, hi in zip(boundaries, first, last, strict=True)
    ]


def train_supervised(
    spec: ModelSpec, data: Dataset, config: TrainingConfig, progress: Progress | None = None
) -> TrainedModel:
    """Validate a direction or return model walk-forward, then fit it on every row."""
    if spec.task is Task.ANOMALY:
        raise ValueError(f"{spec.name} has no label; use train_anomaly")
    _require_rows(spec, len(data), config)
    report = progress or no_progress
    folds = walk_forward_folds(data.start_time, data.label_time, config.folds)
    target = data.up if spec.task is Task.DIRECTION else data.next_return
    validated = np.concatenate([fold.validate for fold in folds])
    predictions = np.empty(validated.shape[0])
    offset = 0
    for k, fold in enumerate(folds, start=1):
        _require_fold(spec, fold, target, k)
        estimator = spec.build(config).fit(data.features[fold.train], target[fold.train])
        rows = fold.validate.shape[0]
        predictions[offset : offset + rows] = _predict(
            spec, estimator, data.features[fold.validate]
        )
        offset += rows
        report(f"{spec.name}: fold {k}/{len(folds)} fitted on {fold.train.shape[0]:,} rows")
    if spec.task is Task.DIRECTION:
        validation = _direction_validation(data, folds, predictions)
    else:
        validation = _return_validation(data.next_return[validated], predictions, len(folds))
    estimator = spec.build(config).fit(data.features, target)
    report(f"{spec.name}: final fit on {len(data):,} rows")
    return TrainedModel(
        spec=spec,
        estimator=estimator,
        validation=validation,
        check_features=data.features[validated],
        feature_names=data.feature_names,
        interval=data.interval,
        snapshot_id=data.snapshot_id,
        train_rows=len(data),
        window=data.window,
        symbols=tuple(sorted(set(data.symbol.tolist()))),
        params={},
    )


def train_anomaly(
    spec: ModelSpec, data: AnomalyDataset, config: TrainingConfig, progress: Progress | None = None
) -> TrainedModel:
    """Validate the anomaly model walk-forward (how much of the later bars it flags, beside
    the z-score rules), then fit it on every row."""
    if spec.task is not Task.ANOMALY:
        raise ValueError(f"{spec.name} is supervised; use train_supervised")
    _require_rows(spec, len(data), config)
    report = progress or no_progress
    folds = walk_forward_folds(data.start_time, data.start_time, config.folds)
    validated = np.concatenate([fold.validate for fold in folds])
    flagged = np.empty(validated.shape[0], dtype=np.bool_)
    offset = 0
    for k, fold in enumerate(folds, start=1):
        estimator = spec.build(config).fit(data.features[fold.train])
        rows = fold.validate.shape[0]
        flagged[offset : offset + rows] = estimator.predict(data.features[fold.validate]) == -1
        offset += rows
        report(f"{spec.name}: fold {k}/{len(folds)} fitted on {fold.train.shape[0]:,} rows")
    later = data.features[validated]
    by_rules = (later >= config.anomaly_z_threshold).any(axis=1)
    validation = _anomaly_validation(flagged, by_rules, len(folds))
    estimator = spec.build(config).fit(data.features)
    report(f"{spec.name}: final fit on {len(data):,} rows")
    return TrainedModel(
        spec=spec,
        estimator=estimator,
        validation=validation,
        check_features=later,
        feature_names=data.feature_names,
        interval=data.interval,
        snapshot_id=data.snapshot_id,
        train_rows=len(data),
        window=data.window,
        symbols=tuple(sorted(set(data.symbol.tolist()))),
        params={"window_bars": float(data.window_bars)},
    )


def no_progress(message: str) -> None:
    """The progress callback of callers that show none."""


def _require_rows(spec: ModelSpec, rows: int, config: TrainingConfig) -> None:
    if rows < config.min_rows:
        raise NotEnoughData(
            f"{spec.name}: {rows:,} usable rows in gold.features, at least "
            f"{config.min_rows:,} are needed",
            metadata={"model": spec.name, "rows": str(rows), "min_rows": str(config.min_rows)},
        )


def _require_fold(spec: ModelSpec, fold: Fold, target: npt.NDArray[Any], k: int) -> None:
    if fold.train.shape[0] == 0:
        raise NotEnoughData(f"{spec.name}: walk-forward fold {k} has no training rows")
    if spec.task is Task.DIRECTION and np.unique(target[fold.train]).shape[0] < 2:
        raise NotEnoughData(
            f"{spec.name}: walk-forward fold {k} trains on bars that all moved the same way"
        )


def _predict(spec: ModelSpec, estimator: Any, features: Float32s) -> Float64s:
    if spec.task is Task.DIRECTION:
        probabilities = estimator.predict_proba(features)
        return np.asarray(probabilities[:, 1], dtype=np.float64)
    return np.asarray(estimator.predict(features), dtype=np.float64)


def _direction_validation(data: Dataset, folds: list[Fold], p_model: Float64s) -> Validation:
    """Metrics of P(up) on the validation rows, beside the baselines fitted per fold."""
    p_always = np.concatenate(
        [np.full(f.validate.shape[0], data.up[f.train].mean()) for f in folds]
    )
    last_up = data.last_return > 0
    repeat_rate = [np.mean(last_up[f.train] == (data.up[f.train] == 1)) for f in folds]
    p_last = np.concatenate(
        [
            np.where(last_up[f.validate], rate, 1.0 - rate)
            for f, rate in zip(folds, repeat_rate, strict=True)
        ]
    )
    validated = np.concatenate([f.validate for f in folds])
    y = data.up[validated]
    if np.unique(y).shape[0] < 2:
        raise NotEnoughData("the validation bars all moved the same way; ROC AUC is undefined")
    last_up_validated = last_up[validated]

    auc = float(roc_auc_score(y, p_model))
    loss = _log_loss_rows(y, p_model)
    baselines = {
        "always_up": (np.ones_like(y, dtype=np.bool_), np.full(y.shape[0], 0.5), p_always),
        "last_direction": (last_up_validated, last_up_validated.astype(np.float64), p_last),
    }
    metrics = {
        "accuracy": float(np.mean((p_model > 0.5) == (y == 1))),
        "roc_auc": auc,
        "roc_auc_se": _auc_standard_error(auc, y),
        "log_loss": float(loss.mean()),
    }
    baseline_metrics: dict[str, float] = {}
    beats: dict[str, bool] = {}
    for name, (predicted_up, score, p_up) in baselines.items():
        baseline_loss = _log_loss_rows(y, p_up)
        baseline_metrics[f"{name}.accuracy"] = float(np.mean(predicted_up == (y == 1)))
        baseline_metrics[f"{name}.roc_auc"] = float(roc_auc_score(y, score))
        baseline_metrics[f"{name}.log_loss"] = float(baseline_loss.mean())
        beats[name] = _clearly_lower(loss, baseline_loss)
    skill = all(beats.values())
    summary = (
        f"log loss {metrics['log_loss']:.4f} vs always_up "
        f"{baseline_metrics['always_up.log_loss']:.4f} and last_direction "
        f"{baseline_metrics['last_direction.log_loss']:.4f}; ROC AUC {auc:.3f} ± "
        f"{metrics['roc_auc_se']:.3f} over {y.shape[0]:,} later bars"
    )
    return Validation(
        metrics=metrics,
        baseline_metrics=baseline_metrics,
        skill=skill,
        verdict=_verdict(skill, beats, summary),
        folds=len(folds),
        rows=int(y.shape[0]),
    )


def _return_validation(actual: Float64s, predicted: Float64s, folds: int) -> Validation:
    error = np.abs(actual - predicted)
    zero_error = np.abs(actual)
    beats = {"zero_return": _clearly_lower(error, zero_error)}
    skill = beats["zero_return"]
    metrics = {"mae": float(error.mean())}
    baseline_metrics = {"zero_return.mae": float(zero_error.mean())}
    summary = (
        f"MAE {metrics['mae']:.3g} vs zero_return {baseline_metrics['zero_return.mae']:.3g} "
        f"over {actual.shape[0]:,} later bars"
    )
    return Validation(
        metrics=metrics,
        baseline_metrics=baseline_metrics,
        skill=skill,
        verdict=_verdict(skill, beats, summary),
        folds=folds,
        rows=int(actual.shape[0]),
    )


def _anomaly_validation(
    flagged: npt.NDArray[np.bool_], by_rules: npt.NDArray[np.bool_], folds: int
) -> Validation:
    metrics = {"flagged_rate": float(flagged.mean())}
    if by_rules.any():
        metrics["rule_alert_recall"] = float(flagged[by_rules].mean())
    baseline_metrics = {"z_rule.flagged_rate": float(by_rules.mean())}
    recall = metrics.get("rule_alert_recall")
    caught = (
        "the z-score rules fired on none of them"
        if recall is None
        else f"it flags {recall:.0%} of the bars the z-score rules flag"
    )
    verdict = (
        f"flags {metrics['flagged_rate']:.2%} of {flagged.shape[0]:,} later bars "
        f"(z-score rules: {baseline_metrics['z_rule.flagged_rate']:.2%}); {caught}"
    )
    return Validation(
        metrics=metrics,
        baseline_metrics=baseline_metrics,
        skill=None,
        verdict=verdict,
        folds=folds,
        rows=int(flagged.shape[0]),
    )


def _verdict(skill: bool, beats: dict[str, bool], summary: str) -> str:
    if skill:
        return f"beats every baseline by more than 2 standard errors: {summary}"
    missed = ", ".join(name for name, won in beats.items() if not won)
    return f"no evidence of skill (not clearly better than {missed}): {summary}"


def _log_loss_rows(y: npt.NDArray[np.int8], p_up: Float64s) -> Float64s:
    p = np.clip(p_up, _EPS, 1.0 - _EPS)
    loss: Float64s = -np.where(y == 1, np.log(p), np.log1p(-p))
    return loss


def _clearly_lower(loss: Float64s, baseline_loss: Float64s) -> bool:
    """Whether the per-row loss is lower than the baseline's by more than 2 standard errors."""
    gain = baseline_loss - loss
    if gain.shape[0] < 2:
        return False
    standard_error = gain.std(ddof=1) / math.sqrt(gain.shape[0])
    return bool(gain.mean() > _SKILL_STANDARD_ERRORS * standard_error)


def _auc_standard_error(auc: float, y: npt.NDArray[np.int8]) -> float:
    """Hanley & McNeil (1982) standard error of a ROC AUC."""
    positives = int(np.count_nonzero(y == 1))
    negatives = int(y.shape[0] - positives)
    q1 = auc / (2.0 - auc)
    q2 = 2.0 * auc * auc / (1.0 + auc)
    variance = (
        auc * (1.0 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)
    ) / (positives * negatives)
    return math.sqrt(max(variance, 0.0))
