"""A registered model loaded into ONNX Runtime, ready to serve: plain code, no gRPC.

One `InferenceSession` per model version, created once and shared by every call (ONNX
Runtime's `run` is thread-safe). Sessions run on one intra-op thread without spinning:
the serving process answers many small requests concurrently on a 2-core machine, where a
pool of spinning threads per call only steals the cores the gRPC event loop needs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import onnxruntime
from opentelemetry import trace

from financelake.models.registry import LoadedModel, ModelMetadata
from financelake.observability.metrics import INFERENCE_SECONDS
from financelake.observability.tracing import recording

__all__ = ["OnnxModel", "TensorSpec"]

_TRACER = trace.get_tracer(__name__)

# ONNX Runtime's element types as the Open Inference Protocol names them.
_DATATYPES = {
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(int64)": "INT64",
    "tensor(int32)": "INT32",
    "tensor(bool)": "BOOL",
    "tensor(string)": "BYTES",
}


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One input or output of a model: name, datatype (FP32, INT64...) and shape, -1 for a
    dimension of any size (the batch)."""

    name: str
    datatype: str
    shape: tuple[int, ...]


class OnnxModel:
    """A model version in an ONNX Runtime session, with its registry metadata."""

    def __init__(self, loaded: LoadedModel) -> None:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.metadata: ModelMetadata = loaded.metadata
        self._session = onnxruntime.InferenceSession(
            loaded.onnx, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.inputs = tuple(_spec(node) for node in self._session.get_inputs())
        self.outputs = tuple(_spec(node) for node in self._session.get_outputs())
        self._input_name = self.inputs[0].name
        self._output_names = [spec.name for spec in self.outputs]
        self._seconds = INFERENCE_SECONDS.labels(self.reference)

    @property
    def reference(self) -> str:
        """`name@version`."""
        return self.metadata.reference

    @property
    def feature_count(self) -> int:
        """Columns of the model's one input."""
        return len(self.metadata.feature_names)

    def run(self, features: npt.NDArray[np.float32]) -> dict[str, npt.NDArray[np.generic]]:
        """Every output for a (rows, feature_count) float32 matrix, by name."""
        if recording():  # a traced request: the model run is a span of its own
            with _TRACER.start_as_current_span(
                "onnxruntime run",
                attributes={"financelake.model": self.reference, "financelake.rows": len(features)},
            ):
                return self._run(features)
        return self._run(features)

    def _run(self, features: npt.NDArray[np.float32]) -> dict[str, npt.NDArray[np.generic]]:
        started = time.perf_counter()
        values = self._session.run(self._output_names, {self._input_name: features})
        self._seconds.observe(time.perf_counter() - started)
        return dict(zip(self._output_names, values, strict=True))


def _spec(node: onnxruntime.NodeArg) -> TensorSpec:
    shape = tuple(size if isinstance(size, int) else -1 for size in node.shape)
    return TensorSpec(node.name, _DATATYPES.get(node.type, node.type), shape)
