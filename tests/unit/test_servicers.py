"""Every RPC of every servicer is overridden, and those not served yet answer
`Unimplemented` honestly.

The generated base-class methods raise a bare exception that the error interceptor
would report as INTERNAL; an RPC that somebody forgot to override would show up here.
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
from financelake.services.errors import Unimplemented
from financelake.services.ingestion import servicer as ingestion
from financelake.services.marketdata import servicer as marketdata
from financelake.services.prediction import servicer as prediction
from financelake.services.stream import servicer as stream

pytestmark = pytest.mark.unit

ALL = None  # every RPC of the service is still unimplemented
CASES: list[tuple[type, Any, str, set[str] | None]] = [
    (ingestion.IngestionServicer, ingestion_service_pb2, "IngestionService", set()),
    (
        marketdata.MarketDataServicer,
        marketdata_service_pb2,
        "MarketDataService",
        set(),  # every RPC is served
    ),
    (
        stream.StreamServicer,
        stream_service_pb2,
        "StreamService",
        set(),  # every RPC is served
    ),
    (prediction.PredictionServicer, prediction_service_pb2, "PredictionService", ALL),
    (prediction.InferenceServicer, grpc_predict_v2_pb2, "GRPCInferenceService", ALL),
]


@pytest.mark.parametrize(("servicer_class", "module", "service", "unimplemented"), CASES)
async def test_every_rpc_is_served_or_answers_unimplemented(
    servicer_class, module, service, unimplemented
) -> None:
    descriptor: ServiceDescriptor = module.DESCRIPTOR.services_by_name[service]
    # Unimplemented RPCs touch no state, so the servicer's dependencies are not needed.
    servicer = servicer_class.__new__(servicer_class)

    for method in descriptor.methods:
        handler = vars(servicer_class).get(method.name)
        assert handler is not None, f"{service}.{method.name} is not overridden"
        is_async = inspect.iscoroutinefunction(handler) or inspect.isasyncgenfunction(handler)
        assert is_async, f"{service}.{method.name} is not async"
        if unimplemented is not ALL and method.name not in unimplemented:
            continue
        with pytest.raises(Unimplemented) as raised:
            await getattr(servicer, method.name)(None, None)
        assert raised.value.metadata == {"method": f"{descriptor.full_name}/{method.name}"}
