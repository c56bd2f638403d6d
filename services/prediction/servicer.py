"""The gRPC adapters of `financelake.prediction.v1.PredictionService` and of
`inference.GRPCInferenceService` (Open Inference Protocol v2, for KServe/Triton clients).

No RPC is served yet and no model is loaded; each RPC answers UNIMPLEMENTED (via
`errors.Unimplemented` and the error-mapping interceptor) until its issue lands.
"""

from __future__ import annotations

import grpc

from financelake.gen.inference import grpc_predict_v2_pb2 as oip
from financelake.gen.inference import grpc_predict_v2_pb2_grpc as oip_grpc
from financelake.gen.prediction.v1 import prediction_service_pb2 as pb
from financelake.gen.prediction.v1 import prediction_service_pb2_grpc as pb_grpc
from financelake.services.errors import Unimplemented

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["PredictionService"].full_name
INFERENCE_SERVICE_NAME: str = oip.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name


class PredictionServicer(pb_grpc.PredictionServiceServicer):
    """Serves PredictionService over gRPC."""

    async def Predict(
        self, request: pb.PredictRequest, context: grpc.aio.ServicerContext
    ) -> pb.PredictResponse:
        """A prediction for one symbol from the latest features."""
        raise Unimplemented(f"{SERVICE_NAME}/Predict")

    async def PredictBatch(
        self, request: pb.PredictBatchRequest, context: grpc.aio.ServicerContext
    ) -> pb.PredictBatchResponse:
        """Predictions for several symbols at once."""
        raise Unimplemented(f"{SERVICE_NAME}/PredictBatch")

    async def ListModels(
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListModelsResponse:
        """The models of the registry, paged."""
        raise Unimplemented(f"{SERVICE_NAME}/ListModels")

    async def GetModel(
        self, request: pb.GetModelRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetModelResponse:
        """One model's metadata."""
        raise Unimplemented(f"{SERVICE_NAME}/GetModel")


class InferenceServicer(oip_grpc.GRPCInferenceServiceServicer):
    """Serves the Open Inference Protocol v2 over gRPC."""

    async def ServerLive(
        self, request: oip.ServerLiveRequest, context: grpc.aio.ServicerContext
    ) -> oip.ServerLiveResponse:
        """Whether the inference server is live."""
        raise Unimplemented(f"{INFERENCE_SERVICE_NAME}/ServerLive")

    async def ServerReady(
        self, request: oip.ServerReadyRequest, context: grpc.aio.ServicerContext
    ) -> oip.ServerReadyResponse:
        """Whether the inference server is ready to infer."""
        raise Unimplemented(f"{INFERENCE_SERVICE_NAME}/ServerReady")

    async def ModelReady(
        self, request: oip.ModelReadyRequest, context: grpc.aio.ServicerContext
    ) -> oip.ModelReadyResponse:
        """Whether one model is ready to infer."""
        raise Unimplemented(f"{INFERENCE_SERVICE_NAME}/ModelReady")

    async def ServerMetadata(
        self, request: oip.ServerMetadataRequest, context: grpc.aio.ServicerContext
    ) -> oip.ServerMetadataResponse:
        """Name, version and extensions of the inference server."""
        raise Unimplemented(f"{INFERENCE_SERVICE_NAME}/ServerMetadata")

    async def ModelMetadata(
        self, request: oip.ModelMetadataRequest, context: grpc.aio.ServicerContext
    ) -> oip.ModelMetadataResponse:
        """Inputs and outputs of one model."""
        raise Unimplemented(f"{INFERENCE_SERVICE_NAME}/ModelMetadata")

    async def ModelInfer(
        self, request: oip.ModelInferRequest, context: grpc.aio.ServicerContext
    ) -> oip.ModelInferResponse:
        """Run one model on the given tensors."""
        raise Unimplemented(f"{INFERENCE_SERVICE_NAME}/ModelInfer")
