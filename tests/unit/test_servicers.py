"""Every RPC of every servicer is overridden by an async handler.

The generated base-class methods raise a bare exception that the error interceptor would
report as INTERNAL; an RPC that somebody forgot to override would show up here.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from google.protobuf.descriptor import ServiceDescriptor

from financelake.gen.inference import grpc_predict_v2_pb2
from financelake.gen.ingestion.v1 import ingestion_service_pb2
from financelake.gen.marketdata.v1 import marketdata_service_pb2
from financelake.gen.prediction.v1 import prediction_service_pb2
from financelake.gen.stream.v1 import stream_service_pb2
from financelake.services.ingestion import servicer as ingestion
from financelake.services.marketdata import servicer as marketdata
from financelake.services.prediction import inference
from financelake.services.prediction import servicer as prediction
from financelake.services.stream import servicer as stream

pytestmark = pytest.mark.unit

CASES: list[tuple[type, Any, str]] = [
    (ingestion.IngestionServicer, ingestion_service_pb2, "IngestionService"),
    (marketdata.MarketDataServicer, marketdata_service_pb2, "MarketDataService"),
    (stream.StreamServicer, stream_service_pb2, "StreamService"),
    (prediction.PredictionServicer, prediction_service_pb2, "PredictionService"),
    (inference.InferenceServicer, grpc_predict_v2_pb2, "GRPCInferenceService"),
]


@pytest.mark.parametrize(("servicer_class", "module", "service"), CASES)
def test_every_rpc_is_overridden_by_an_async_handler(servicer_class, module, service) -> None:
    descriptor: ServiceDescriptor = module.DESCRIPTOR.services_by_name[service]

    for method in descriptor.methods:
        handler = vars(servicer_class).get(method.name)
        assert handler is not None, f"{service}.{method.name} is not overridden"
        is_async = inspect.iscoroutinefunction(handler) or inspect.isasyncgenfunction(handler)
        assert is_async, f"{service}.{method.name} is not async"
