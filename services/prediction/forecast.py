"""Forecasts from the served models and the latest features: plain code, no gRPC.

A forecast of a symbol's next bar at one interval: the probability that it closes up (the
direction model's `probabilities[:, 1]`) and the expected close-to-close return (the newest
return model of the interval; NaN when none is registered), from the symbol's newest bar in
`gold.features`. All symbols of a call go through each model in one batched run.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from financelake.models.inference import OnnxModel
from financelake.models.model_set import ModelSet, ServedModels
from financelake.models.training import Task
from financelake.services.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidInput,
    NotFound,
    Unavailable,
)
from financelake.services.prediction.latest_features import FeatureRow, LatestFeatures

TRAIN_HINT = "train one with `financelake models train --interval {interval}`"
_REFERENCE = re.compile(r"(?P<name>[a-z][a-z0-9\-]{0,62})(?:@(?P<version>[1-9][0-9]{0,8}))?")


class NoModel(FailedPrecondition):
    """No model is registered that can answer (none yet, or none for the interval)."""

    default_reason = "NO_MODEL_LOADED"


class UnknownSymbol(NotFound):
    """gold.features holds no recent bar of the symbol at the interval."""

    default_reason = "SYMBOL_NOT_FOUND"


class FeaturesWarmingUp(FailedPrecondition):
    """The symbol's newest bar still has indicators warming up."""

    default_reason = "FEATURES_WARMING_UP"


@dataclass(frozen=True, slots=True)
class Forecast:
    """One symbol's forecast and where it came from."""

    symbol: str
    interval: str
    probability_up: float
    expected_return: float
    model: OnnxModel
    """The direction model that gave `probability_up`."""
    feature_time_ns: int
    predicted_time_ns: int


def parse_reference(reference: str) -> tuple[str, int | None]:
    """("name", version or None) of "name" or "name@version"."""
    match = _REFERENCE.fullmatch(reference)
    if match is None:
        raise InvalidInput(
            f"{reference!r} is not a model name or name@version",
            violations=[FieldViolation("model_version", "must be name or name@version")],
        )
    version = match["version"]
    return match["name"], None if version is None else int(version)


def served(models: ModelSet) -> ServedModels:
    """The models now served; FAILED_PRECONDITION saying how to train one when none is."""
    current = models.current
    if not current.any_loaded:
        raise NoModel(f"no model is registered yet; {TRAIN_HINT.format(interval='1m')}")
    return current


def direction_model(
    models: ModelSet, current: ServedModels, reference: str, interval: str
) -> OnnxModel:
    """The direction model a call asked for (`reference`), else the interval's default."""
    if not reference:
        model = current.default_direction(interval)
        if model is None:
            raise NoModel(
                f"no direction model is trained on {interval} bars; "
                + TRAIN_HINT.format(interval=interval),
                metadata={"interval": interval},
            )
        return model
    name, version = parse_reference(reference)
    unpinned = current.newest.get((name, interval)) if version is None else None
    # Unpinned: the newest version trained on the interval asked for, if the name has one.
    model = unpinned or models.named(name, version)
    if model.metadata.label != Task.DIRECTION.value:
        raise InvalidInput(
            f"{model.reference} predicts {model.metadata.label}, not the next bar's direction",
            violations=[FieldViolation("model_version", "must name a direction model")],
        )
    return model


def feature_rows(
    features: LatestFeatures, symbols: Sequence[str], interval: str
) -> list[FeatureRow]:
    """Each symbol's newest features row at `interval`, in order."""
    if not features.loaded:
        raise Unavailable("gold.features is still being read; retry in a moment")
    rows: list[FeatureRow] = []
    for symbol in symbols:
        row = features.get(symbol, interval)
        if row is None:
            raise UnknownSymbol(
                f"gold.features holds no recent {interval} bar of {symbol}",
                metadata={"symbol": symbol, "interval": interval},
            )
        if not row.complete:
            raise FeaturesWarmingUp(
                f"{symbol}'s indicators at {interval} are still warming up; the stream needs "
                "about 50 bars of a symbol before a model can use them",
                metadata={"symbol": symbol, "interval": interval},
            )
        rows.append(row)
    return rows


def forecast(
    direction: OnnxModel,
    returns: OnnxModel | None,
    rows: Sequence[FeatureRow],
    interval: str,
) -> list[Forecast]:
    """Forecasts of `rows` in one run of each model."""
    if direction.metadata.interval != interval:
        raise InvalidInput(
            f"{direction.reference} is trained on {direction.metadata.interval} bars, "
            f"not {interval}",
            violations=[FieldViolation("model_version", f"must be a model of {interval} bars")],
        )
    matrix = np.stack([row.features for row in rows])
    p_up = direction.run(matrix)["probabilities"][:, 1].astype(np.float64)
    if returns is None:
        expected = np.full(len(rows), np.nan)
    else:
        expected = returns.run(matrix)["prediction"][:, 0].astype(np.float64)
    now = time.time_ns()
    return [
        Forecast(row.symbol, interval, float(p), float(r), direction, row.start_time_ns, now)
        for row, p, r in zip(rows, p_up.tolist(), expected.tolist(), strict=True)
    ]
