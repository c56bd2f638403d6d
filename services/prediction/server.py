"""Builds the prediction server: PredictionService, GRPCInferenceService, health, reflection.

Health: `""` reports the process (SERVING once it runs), while both prediction services
report NOT_SERVING until a model is loaded; nothing loads one yet, so they stay
NOT_SERVING. The model-serving issue calls `health.set_serving(...)` for both names
after the ONNX session is ready.
"""

from __future__ import annotations

import grpc

from financelake.gen.inference import grpc_predict_v2_pb2_grpc as oip_grpc
from financelake.gen.prediction.v1 import prediction_service_pb2_grpc as pb_grpc
from financelake.services import server as plumbing
from financelake.services.prediction.servicer import (
    INFERENCE_SERVICE_NAME,
    SERVICE_NAME,
    InferenceServicer,
    PredictionServicer,
)
from financelake.services.settings import Settings


def build_server(settings: Settings, health: plumbing.ServerHealth) -> tuple[grpc.aio.Server, int]:
    """The prediction server on `settings.servers.prediction_port`, not started."""
    return plumbing.build_server(
        settings,
        settings.servers.prediction_port,
        plumbing.ServiceRegistration(
            pb_grpc.add_PredictionServiceServicer_to_server,
            PredictionServicer(),
            SERVICE_NAME,
            ready_on_start=False,  # needs a loaded model
        ),
        plumbing.ServiceRegistration(
            oip_grpc.add_GRPCInferenceServiceServicer_to_server,
            InferenceServicer(),
            INFERENCE_SERVICE_NAME,
            ready_on_start=False,  # needs a loaded model
        ),
        health=health,
    )
