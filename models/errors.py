"""The named errors of training and of the model registry.

Each subclasses one of `financelake.services.errors`, so a server that reports them maps
them to the right status code without knowing this package.
"""

from __future__ import annotations

from financelake.services.errors import Aborted, FailedPrecondition, FinanceLakeError, NotFound


class NotEnoughData(FailedPrecondition):
    """The lake holds too few usable rows to train and validate a model."""

    default_reason = "NOT_ENOUGH_TRAINING_DATA"


class OnnxMismatch(FinanceLakeError):
    """ONNX Runtime's output differs from scikit-learn's beyond float32 tolerance."""

    default_reason = "ONNX_OUTPUT_MISMATCH"


class ModelNotFound(NotFound):
    """No registered model has this name, or the name has no such version."""

    default_reason = "MODEL_NOT_FOUND"


class ModelChecksumMismatch(FinanceLakeError):
    """A stored ONNX file does not hash to the sha256 its metadata recorded."""

    default_reason = "MODEL_CHECKSUM_MISMATCH"


class RegistryConflict(Aborted):
    """Another registration took the version number this one was about to commit."""

    default_reason = "MODEL_VERSION_CONFLICT"
