"""The Open Inference Protocol v2 (`inference.GRPCInferenceService`) on the prediction server,
so KServe and Triton clients (tritonclient) call our ONNX models unchanged.

Models are the registry's names; `model_version` is a version number, empty for the newest
loaded version of the name. Every model takes one FP32 input `features` of shape
[batch, n_features] and names its outputs (ModelMetadata lists them, from the ONNX graph).
Inputs come as `raw_input_contents` (what tritonclient sends) or typed `fp32_contents`;
outputs always go back as `raw_output_contents`, little-endian, row-major.
"""

from __future__ import annotations

from importlib.metadata import version as package_version

import grpc
import numpy as np

from financelake.gen.inference import grpc_predict_v2_pb2 as oip
from financelake.gen.inference import grpc_predict_v2_pb2_grpc as oip_grpc
from financelake.models.errors import ModelNotFound
from financelake.models.inference import OnnxModel, TensorSpec
from financelake.models.model_set import ModelSet
from financelake.services.errors import FieldViolation, InvalidInput

INFERENCE_SERVICE_NAME: str = oip.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name
SERVER_NAME = "financelake"
PLATFORM = "onnxruntime_onnx"
MAX_BATCH_ROWS = 100_000


class InferenceServicer(oip_grpc.GRPCInferenceServiceServicer):
    """Serves the Open Inference Protocol v2 over gRPC from the served models."""

    def __init__(self, models: ModelSet) -> None:
        self._models = models

    def _model(self, name: str, version: str) -> OnnxModel:
        if version and not version.isdigit():
            raise InvalidInput(
                f"model version {version!r} is not a version number",
                violations=[FieldViolation("model_version", "must be digits, or empty")],
            )
        return self._models.named(name, int(version) if version else None)

    async def ServerLive(
        self, request: oip.ServerLiveRequest, context: grpc.aio.ServicerContext
    ) -> oip.ServerLiveResponse:
        """The server answers: live."""
        return oip.ServerLiveResponse(live=True)

    async def ServerReady(
        self, request: oip.ServerReadyRequest, context: grpc.aio.ServicerContext
    ) -> oip.ServerReadyResponse:
        """Ready once at least one model is loaded."""
        return oip.ServerReadyResponse(ready=self._models.current.any_loaded)

    async def ModelReady(
        self, request: oip.ModelReadyRequest, context: grpc.aio.ServicerContext
    ) -> oip.ModelReadyResponse:
        """Whether the named version (or the newest of the name) can infer now."""
        try:
            self._model(request.name, request.version)
        except ModelNotFound:
            return oip.ModelReadyResponse(ready=False)
        return oip.ModelReadyResponse(ready=True)

    async def ServerMetadata(
        self, request: oip.ServerMetadataRequest, context: grpc.aio.ServicerContext
    ) -> oip.ServerMetadataResponse:
        """Name and version of the server; no protocol extensions."""
        return oip.ServerMetadataResponse(
            name=SERVER_NAME, version=package_version("financelake"), extensions=[]
        )

    async def ModelMetadata(
        self, request: oip.ModelMetadataRequest, context: grpc.aio.ServicerContext
    ) -> oip.ModelMetadataResponse:
        """The model's registered versions, platform, and input and output tensors."""
        model = self._model(request.name, request.version)
        versions = [
            str(m.version) for m in self._models.current.registered if m.name == request.name
        ]
        return oip.ModelMetadataResponse(
            name=request.name,
            versions=sorted(versions, key=int),
            platform=PLATFORM,
            inputs=[_tensor_metadata(spec) for spec in model.inputs],
            outputs=[_tensor_metadata(spec) for spec in model.outputs],
        )

    async def ModelInfer(
        self, request: oip.ModelInferRequest, context: grpc.aio.ServicerContext
    ) -> oip.ModelInferResponse:
        """Run the model on one batch of FP32 features."""
        model = self._model(request.model_name, request.model_version)
        features = input_matrix(request, model)
        outputs = model.run(features)
        wanted = [output.name for output in request.outputs] or list(outputs)
        unknown = [name for name in wanted if name not in outputs]
        if unknown:
            raise InvalidInput(
                f"{model.reference} has no output {unknown[0]!r}; it has {', '.join(outputs)}",
                violations=[FieldViolation("outputs", f"unknown output {unknown[0]!r}")],
            )
        specs = {spec.name: spec for spec in model.outputs}
        response = oip.ModelInferResponse(
            model_name=request.model_name,
            model_version=str(model.metadata.version),
            id=request.id,
        )
        for name in wanted:
            values = outputs[name]
            response.outputs.add(name=name, datatype=specs[name].datatype, shape=values.shape)
            # Row-major in this platform's byte order: little-endian on x86-64 and arm64.
            response.raw_output_contents.append(np.ascontiguousarray(values).tobytes())
        return response


def input_matrix(request: oip.ModelInferRequest, model: OnnxModel) -> np.ndarray:
    """The request's one input as a (rows, n_features) float32 matrix, checked."""
    expected = model.inputs[0]
    if len(request.inputs) != 1 or request.inputs[0].name != expected.name:
        raise _bad_input(f"exactly one input named {expected.name!r}", "inputs")
    tensor = request.inputs[0]
    if tensor.datatype != "FP32":
        raise _bad_input(
            f"{expected.name} must be FP32, not {tensor.datatype}", "inputs[0].datatype"
        )
    shape = tuple(tensor.shape)
    columns = model.feature_count
    if len(shape) != 2 or shape[1] != columns or not 1 <= shape[0] <= MAX_BATCH_ROWS:
        raise _bad_input(
            f"{expected.name} must have shape [1..{MAX_BATCH_ROWS}, {columns}], not {list(shape)}",
            "inputs[0].shape",
        )
    if request.raw_input_contents:
        raw = request.raw_input_contents[0]
        if len(request.raw_input_contents) != 1 or len(raw) != shape[0] * columns * 4:
            raise _bad_input(
                f"raw_input_contents must hold {shape[0] * columns * 4} bytes of {expected.name}",
                "raw_input_contents",
            )
        values = np.frombuffer(raw, dtype="<f4")
    else:
        values = np.asarray(tensor.contents.fp32_contents, dtype=np.float32)
        if values.size != shape[0] * columns:
            raise _bad_input(
                f"contents.fp32_contents must hold {shape[0] * columns} values",
                "inputs[0].contents",
            )
    return values.reshape(shape).astype(np.float32, copy=False)


def _bad_input(message: str, field: str) -> InvalidInput:
    return InvalidInput(message, violations=[FieldViolation(field, message)])


def _tensor_metadata(spec: TensorSpec) -> oip.ModelMetadataResponse.TensorMetadata:
    return oip.ModelMetadataResponse.TensorMetadata(
        name=spec.name, datatype=spec.datatype, shape=spec.shape
    )
