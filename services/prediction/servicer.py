"""The gRPC adapter of `financelake.prediction.v1.PredictionService`.

Predict and PredictBatch answer from memory (`forecast`): the served models (`model_set`)
and each symbol's newest features (`latest_features`); ONNX Runtime runs on the event loop,
since one small model run costs less than handing it to a thread. Every forecast is queued
for `gold.predictions` (`prediction_log`). ListModels and GetModel describe the registered
versions; ListModels pages newest first, `page_size` default 50, at most 500.
"""

from __future__ import annotations

import math

import grpc

from financelake.gen.common.v1 import bar_pb2
from financelake.gen.prediction.v1 import model_pb2
from financelake.gen.prediction.v1 import prediction_service_pb2 as pb
from financelake.gen.prediction.v1 import prediction_service_pb2_grpc as pb_grpc
from financelake.models.errors import ModelNotFound
from financelake.models.model_set import ModelSet
from financelake.models.registry import ModelMetadata
from financelake.services.ingestion.convert import INTERVAL_PROTOS, INTERVALS, timestamp
from financelake.services.ingestion.records import Interval
from financelake.services.page_tokens import decode_token, encode_token, invalid_token
from financelake.services.prediction.forecast import (
    Forecast,
    direction_model,
    feature_rows,
    forecast,
    parse_reference,
    served,
)
from financelake.services.prediction.latest_features import LatestFeatures
from financelake.services.prediction.prediction_log import PredictionLog, PredictionRecord

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["PredictionService"].full_name
DEFAULT_MODELS_PAGE_SIZE = 50
_MODELS = "models"


class PredictionServicer(pb_grpc.PredictionServiceServicer):
    """Serves PredictionService over gRPC."""

    def __init__(self, models: ModelSet, features: LatestFeatures, log: PredictionLog) -> None:
        self._models = models
        self._features = features
        self._log = log

    def _forecasts(
        self, symbols: list[str], number: bar_pb2.Interval, reference: str
    ) -> list[model_pb2.Prediction]:
        interval = INTERVALS[number].value if number else Interval.M1.value  # unset: 1m
        current = served(self._models)
        direction = direction_model(self._models, current, reference, interval)
        rows = feature_rows(self._features, symbols, interval)
        results = forecast(direction, current.newest_return(interval), rows, interval)
        self._log.add([_record(result) for result in results])
        return [_prediction(result) for result in results]

    async def Predict(
        self, request: pb.PredictRequest, context: grpc.aio.ServicerContext
    ) -> pb.PredictResponse:
        """A forecast of one symbol's next bar from its latest features."""
        (prediction,) = self._forecasts([request.symbol], request.interval, request.model_version)
        return pb.PredictResponse(prediction=prediction)

    async def PredictBatch(
        self, request: pb.PredictBatchRequest, context: grpc.aio.ServicerContext
    ) -> pb.PredictBatchResponse:
        """Forecasts of several symbols with one model, in request order."""
        predictions = self._forecasts(
            list(request.symbols), request.interval, request.model_version
        )
        return pb.PredictBatchResponse(predictions=predictions)

    async def ListModels(
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListModelsResponse:
        """Registered versions, newest first, optionally of one name, paged."""
        current = self._models.current
        versions = [m for m in current.registered if not request.name or m.name == request.name]
        if request.page_token:
            after = _models_cursor(request.page_token, request.name)
            keys = [(m.name, m.version) for m in versions]
            if after not in keys:
                raise invalid_token("points at a version that is no longer listed")
            versions = versions[keys.index(after) + 1 :]
        size = request.page_size or DEFAULT_MODELS_PAGE_SIZE
        page = versions[:size]
        token = ""
        if len(versions) > size:
            token = encode_token([_MODELS, request.name, page[-1].name, page[-1].version])
        served_now = {model.reference for model in current.newest.values()}
        return pb.ListModelsResponse(
            models=[model_message(m, m.reference in served_now) for m in page],
            next_page_token=token,
        )

    async def GetModel(
        self, request: pb.GetModelRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetModelResponse:
        """One registered version: the newest of the name unless `name@version`."""
        name, version = parse_reference(request.model)
        current = self._models.current
        versions = [m for m in current.registered if m.name == name]
        chosen = [m for m in versions if version is None or m.version == version]
        if not chosen:
            raise ModelNotFound(
                f"model {request.model} is not registered", metadata={"model": request.model}
            )
        metadata = max(chosen, key=lambda m: m.version)
        served_now = {model.reference for model in current.newest.values()}
        return pb.GetModelResponse(
            model_info=model_message(metadata, metadata.reference in served_now)
        )


def _models_cursor(token: str, name: str) -> tuple[str, int]:
    items = decode_token(token)
    if len(items) != 4 or items[0] != _MODELS or not isinstance(items[3], int):
        raise invalid_token("is not a token from a previous ListModels page")
    if items[1] != name:
        raise invalid_token("belongs to another request (the name differs)")
    return str(items[2]), items[3]


def _record(result: Forecast) -> PredictionRecord:
    return PredictionRecord(
        symbol=result.symbol,
        interval=result.interval,
        feature_time_ns=result.feature_time_ns,
        predicted_time_ns=result.predicted_time_ns,
        model_name=result.model.metadata.name,
        model_version=str(result.model.metadata.version),
        probability_up=result.probability_up,
        expected_return=result.expected_return,
    )


def _prediction(result: Forecast) -> model_pb2.Prediction:
    return model_pb2.Prediction(
        symbol=result.symbol,
        interval=INTERVAL_PROTOS[Interval(result.interval)],
        probability_up=result.probability_up,
        expected_return=result.expected_return,
        model_version=result.model.reference,
        feature_time=timestamp(result.feature_time_ns),
        predicted_time=timestamp(result.predicted_time_ns),
    )


def model_message(metadata: ModelMetadata, latest: bool) -> model_pb2.Model:
    """A registered version as the contract's Model."""
    message = model_pb2.Model(
        name=metadata.name,
        version=metadata.version,
        latest=latest,
        label=metadata.label,
        interval=INTERVAL_PROTOS[Interval(metadata.interval)],
        feature_names=metadata.feature_names,
        train_snapshot_id=metadata.train_snapshot_id or 0,
        metrics={k: v for k, v in metadata.metrics.items() if math.isfinite(v)},
        baseline_metrics={k: v for k, v in metadata.baseline_metrics.items() if math.isfinite(v)},
        onnx_sha256=metadata.onnx_sha256,
        library_versions=metadata.library_versions,
    )
    message.create_time.FromDatetime(metadata.created_time)
    message.train_start_time.FromDatetime(metadata.train_start_time)
    message.train_end_time.FromDatetime(metadata.train_end_time)
    return message
