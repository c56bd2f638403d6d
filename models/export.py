"""ONNX export of a trained model, and the check that ONNX Runtime computes what
scikit-learn does before the model may be registered.

Every exported model takes one float32 input, `features`, of shape [None, n_features] in the
order its metadata lists, and names its outputs (`OUTPUTS`):

    direction   label int64 [None] (1 = up), probabilities float32 [None, 2] (down, up)
    return      prediction float32 [None, 1]
    anomaly     label int64 [None, 1] (-1 = anomaly, 1 = normal), scores float32 [None, 1]
                (IsolationForest.decision_function: below 0 is anomalous)

Classifier probabilities are a plain tensor (skl2onnx's `zipmap` off) so that any ONNX client,
the Open Inference Protocol among them, can read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import numpy as np
import onnxruntime
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, Int64TensorType

from financelake.models.dataset import Float32s, Float64s, Int64s
from financelake.models.errors import OnnxMismatch
from financelake.models.training import Task, TrainedModel

__all__ = ["INPUT_NAME", "OUTPUTS", "OnnxCheck", "check_onnx", "library_versions", "to_onnx"]

INPUT_NAME = "features"
OUTPUTS: dict[Task, tuple[str, ...]] = {
    Task.DIRECTION: ("label", "probabilities"),
    Task.RETURN: ("prediction",),
    Task.ANOMALY: ("label", "scores"),
}
# Pinned so that a newer skl2onnx cannot emit opsets an older ONNX Runtime in serving lacks.
TARGET_OPSET = {"": 18, "ai.onnx.ml": 3}
# Float32 tolerance between ONNX Runtime and scikit-learn: relative to each value, plus an
# absolute part relative to the largest output (returns are ~1e-3, probabilities ~1).
_RTOL = 1e-4
_ATOL_OF_LARGEST = 1e-5
_LIBRARIES = ("scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy")


@dataclass(frozen=True, slots=True)
class OnnxCheck:
    """How closely ONNX Runtime reproduced scikit-learn."""

    rows: int
    max_abs_diff: float


def to_onnx(model: TrainedModel) -> bytes:
    """The fitted pipeline as a serialized ONNX model (see the module docstring)."""
    columns = len(model.feature_names)
    options: dict[int, dict[str, Any]] = {}
    if model.spec.task is Task.DIRECTION:
        options[id(model.estimator[-1])] = {"zipmap": False}
    converted = convert_sklearn(
        model.estimator,
        initial_types=[(INPUT_NAME, FloatTensorType([None, columns]))],
        final_types=_output_types(model.spec.task),
        options=options,
        target_opset=TARGET_OPSET,
    )
    serialized: bytes = converted.SerializeToString()
    return serialized


def check_onnx(model: TrainedModel, onnx: bytes) -> OnnxCheck:
    """Run the ONNX model with ONNX Runtime on the validation rows and compare it with
    scikit-learn; raise OnnxMismatch beyond float32 tolerance.

    Hard labels are compared only where the score is not within tolerance of the decision
    boundary, where float32 may legitimately fall on the other side.
    """
    features = model.check_features
    names = OUTPUTS[model.spec.task]
    session = onnxruntime.InferenceSession(onnx, providers=["CPUExecutionProvider"])
    outputs = dict(zip(names, session.run(list(names), {INPUT_NAME: features}), strict=True))
    pair = _pair(model.spec.task, model.estimator, outputs, features)
    if pair.onnx.shape != pair.sklearn.shape:
        raise OnnxMismatch(
            f"{model.spec.name}: ONNX Runtime returned shape {pair.onnx.shape}, "
            f"scikit-learn {pair.sklearn.shape}",
            metadata={"model": model.spec.name},
        )
    atol = _ATOL_OF_LARGEST * max(float(np.max(np.abs(pair.sklearn), initial=0.0)), 1e-30)
    diff = np.abs(pair.onnx - pair.sklearn)
    far = (diff > atol + _RTOL * np.abs(pair.sklearn)).any(axis=1)
    largest = float(np.max(diff, initial=0.0))
    if far.any():
        raise OnnxMismatch(
            f"{model.spec.name}: ONNX Runtime differs from scikit-learn on "
            f"{int(far.sum()):,} of {features.shape[0]:,} rows (largest difference {largest:.3g})",
            metadata={"model": model.spec.name},
        )
    if pair.labels is not None:
        margin, onnx_labels, sklearn_labels = pair.labels
        clear = np.abs(margin) > atol
        wrong = int(np.count_nonzero((onnx_labels != sklearn_labels)[clear]))
        if wrong:
            raise OnnxMismatch(
                f"{model.spec.name}: ONNX Runtime's label differs from scikit-learn's on "
                f"{wrong:,} of {features.shape[0]:,} rows",
                metadata={"model": model.spec.name},
            )
    return OnnxCheck(rows=int(features.shape[0]), max_abs_diff=largest)


@dataclass(frozen=True, eq=False)
class _Pair:
    """One model's output as ONNX Runtime and as scikit-learn computed it, as [rows, k]."""

    onnx: Float64s
    sklearn: Float64s
    labels: tuple[Float64s, Int64s, Int64s] | None = None
    """For models with a label output: the score's distance from the decision boundary, and
    the labels of ONNX Runtime and of scikit-learn."""


def _pair(task: Task, estimator: Any, outputs: dict[str, Any], features: Float32s) -> _Pair:
    def column(values: Any) -> Float64s:
        return np.asarray(values, dtype=np.float64).reshape(features.shape[0], -1)

    def labels(margin: Float64s) -> tuple[Float64s, Int64s, Int64s]:
        onnx_labels = np.asarray(outputs["label"], dtype=np.int64).ravel()
        return margin, onnx_labels, np.asarray(estimator.predict(features), dtype=np.int64)

    if task is Task.DIRECTION:
        expected = column(estimator.predict_proba(features))
        return _Pair(
            onnx=column(outputs["probabilities"]),
            sklearn=expected,
            labels=labels(expected[:, 1] - 0.5),
        )
    if task is Task.RETURN:
        return _Pair(
            onnx=column(outputs["prediction"]), sklearn=column(estimator.predict(features))
        )
    expected = column(estimator.decision_function(features))
    return _Pair(onnx=column(outputs["scores"]), sklearn=expected, labels=labels(expected[:, 0]))


def library_versions() -> dict[str, str]:
    """Versions of the libraries that train, export and run the models."""
    return {name: version(name) for name in _LIBRARIES}


def _output_types(task: Task) -> list[tuple[str, Any]]:
    if task is Task.DIRECTION:
        return [
            ("label", Int64TensorType([None])),
            ("probabilities", FloatTensorType([None, 2])),
        ]
    if task is Task.RETURN:
        return [("prediction", FloatTensorType([None, 1]))]
    return [("label", Int64TensorType([None, 1])), ("scores", FloatTensorType([None, 1]))]
