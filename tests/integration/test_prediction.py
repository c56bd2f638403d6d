"""PredictionService on a real server: models trained on a real on-disk lake and registry,
served by ONNX Runtime, picked up without a restart, and forecasts written back to the lake."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pyiceberg.expressions import GreaterThanOrEqual, Reference
from pyiceberg.expressions.literals import literal

from financelake.gen.common.v1 import bar_pb2
from financelake.gen.prediction.v1 import prediction_service_pb2 as pb
from financelake.gen.prediction.v1 import prediction_service_pb2_grpc as pb_grpc
from financelake.models.dataset import DIRECTION_FEATURES, direction_features, read_features
from financelake.models.inference import OnnxModel
from financelake.models.registry import ModelCard, ModelMetadata, ModelRegistry, open_registry
from financelake.services.prediction.server import build_server
from financelake.stream.lake.catalog import open_catalog
from financelake.stream.lake.tables import PREDICTIONS
from tests.fixtures.grpc import error_info, running_server, stub_for
from tests.fixtures.prediction import prediction_settings

pytestmark = pytest.mark.integration

SERVICE = "financelake.prediction.v1.PredictionService"


async def wait_serving(channel: grpc.aio.Channel) -> None:
    health = stub_for(health_pb2_grpc.HealthStub, channel)
    async with asyncio.timeout(20):
        while True:
            response = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE))
            if response.status == health_pb2.HealthCheckResponse.SERVING:
                return
            await asyncio.sleep(0.1)


async def predict_when_ready(stub: pb_grpc.PredictionServiceStub, request: pb.PredictRequest):
    """Predict, retried while the features are still being read (UNAVAILABLE)."""
    async with asyncio.timeout(20):
        while True:
            try:
                return await stub.Predict(request, timeout=5)
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
            await asyncio.sleep(0.1)


def expected_forecast(home: Path, symbol: str, direction: str) -> tuple[float, float, int]:
    """(probability up, expected return, feature time ns) computed apart from the server:
    the registry's newest direction and return models on the symbol's last row."""
    settings = prediction_settings(home)
    rows = read_features(open_catalog(settings), "1m", [symbol]).rows
    last = rows.slice(rows.num_rows - 1)
    features = direction_features(last)
    registry = open_registry(settings)
    p_up = OnnxModel(registry.load(direction)).run(features)["probabilities"][0, 1]
    expected = OnnxModel(registry.load("return-ridge")).run(features)["prediction"][0, 0]
    start_ns = last["start_time"][0].value * 1000
    return float(p_up), float(expected), start_ns


async def test_predict_answers_from_the_latest_features_with_the_best_direction_model(
    trained_home: Path,
) -> None:
    registry = open_registry(prediction_settings(trained_home))
    best = min(
        ("direction-logistic", "direction-gbm"),
        key=lambda name: registry.metadata(name).metrics["log_loss"],
    )
    async with running_server(build_server, prediction_settings(trained_home)) as running:
        await wait_serving(running.channel)
        stub = stub_for(pb_grpc.PredictionServiceStub, running.channel)
        response = await predict_when_ready(stub, pb.PredictRequest(symbol="BBB"))

    prediction = response.prediction
    p_up, expected, feature_ns = expected_forecast(trained_home, "BBB", best)
    assert prediction.model_version == f"{best}@1"
    assert prediction.probability_up == pytest.approx(p_up, abs=1e-6)
    assert prediction.expected_return == pytest.approx(expected, abs=1e-7)
    assert prediction.feature_time.ToNanoseconds() == feature_ns
    assert (prediction.symbol, prediction.interval) == ("BBB", bar_pb2.INTERVAL_1M)
    assert prediction.predicted_time.seconds > 0


async def test_predict_batch_keeps_request_order_and_pinned_versions(trained_home: Path) -> None:
    async with running_server(build_server, prediction_settings(trained_home)) as running:
        await wait_serving(running.channel)
        stub = stub_for(pb_grpc.PredictionServiceStub, running.channel)
        await predict_when_ready(stub, pb.PredictRequest(symbol="AAA"))
        batch = await stub.PredictBatch(
            pb.PredictBatchRequest(symbols=["DDD", "AAA", "CCC"], model_version="direction-gbm@1"),
            timeout=5,
        )

    assert [p.symbol for p in batch.predictions] == ["DDD", "AAA", "CCC"]
    assert {p.model_version for p in batch.predictions} == {"direction-gbm@1"}
    for prediction in batch.predictions:
        p_up, _, _ = expected_forecast(trained_home, prediction.symbol, "direction-gbm")
        assert prediction.probability_up == pytest.approx(p_up, abs=1e-6)


@pytest.mark.parametrize(
    ("request_fields", "code", "reason"),
    [
        ({"symbol": "ZZZ"}, grpc.StatusCode.NOT_FOUND, "SYMBOL_NOT_FOUND"),
        (
            {"symbol": "AAA", "model_version": "direction-gbm@9"},
            grpc.StatusCode.NOT_FOUND,
            "MODEL_NOT_FOUND",
        ),
        ({"symbol": "AAA", "model_version": "nope"}, grpc.StatusCode.NOT_FOUND, "MODEL_NOT_FOUND"),
        (
            {"symbol": "AAA", "model_version": "return-ridge"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_INPUT",
        ),
        (
            {"symbol": "AAA", "interval": bar_pb2.INTERVAL_1D},
            grpc.StatusCode.FAILED_PRECONDITION,
            "NO_MODEL_LOADED",
        ),
    ],
    ids=["unknown-symbol", "unknown-version", "unknown-model", "not-direction", "no-1d-model"],
)
async def test_predict_errors_carry_their_status_and_reason(
    trained_home: Path, request_fields: dict[str, Any], code: grpc.StatusCode, reason: str
) -> None:
    async with running_server(build_server, prediction_settings(trained_home)) as running:
        await wait_serving(running.channel)
        stub = stub_for(pb_grpc.PredictionServiceStub, running.channel)
        await predict_when_ready(stub, pb.PredictRequest(symbol="AAA"))
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.Predict(pb.PredictRequest(**request_fields), timeout=5)

    assert raised.value.code() == code
    assert error_info(raised.value).reason == reason


async def test_forecasts_are_written_to_gold_predictions(trained_home: Path) -> None:
    settings = prediction_settings(trained_home)
    began = datetime.now(UTC)
    async with running_server(build_server, settings) as running:
        await wait_serving(running.channel)
        stub = stub_for(pb_grpc.PredictionServiceStub, running.channel)
        first = await predict_when_ready(stub, pb.PredictRequest(symbol="CCC"))
        await stub.PredictBatch(pb.PredictBatchRequest(symbols=["AAA", "BBB"]), timeout=5)
    # Stopping the server flushed the buffered rows.

    rows = (
        open_catalog(settings)
        .load_table(PREDICTIONS.identifier)
        .scan(
            row_filter=GreaterThanOrEqual(
                term=Reference("predicted_time"), value=literal(began.isoformat())
            )
        )
        .to_arrow()
    )
    assert sorted(rows["symbol"].to_pylist()) == ["AAA", "BBB", "CCC"]
    ccc = rows.filter(np.array([s == "CCC" for s in rows["symbol"].to_pylist()])).to_pylist()[0]
    name, version = first.prediction.model_version.split("@")
    assert (ccc["model_name"], ccc["model_version"]) == (name, version)
    assert ccc["probability_up"] == pytest.approx(first.prediction.probability_up)
    assert ccc["interval"] == "1m"


async def test_a_new_version_is_served_without_restart_and_no_call_fails(
    trained_home: Path, tmp_path: Path
) -> None:
    models = copy_models(trained_home, tmp_path)
    registry = open_registry(prediction_settings(trained_home, models))
    async with running_server(build_server, prediction_settings(trained_home, models)) as running:
        await wait_serving(running.channel)
        stub = stub_for(pb_grpc.PredictionServiceStub, running.channel)
        request = pb.PredictRequest(symbol="AAA", model_version="direction-logistic")
        await predict_when_ready(stub, request)
        seen: list[str] = []

        async def caller() -> None:
            while "direction-logistic@2" not in seen:
                response = await stub.Predict(request, timeout=5)  # any failure fails the test
                seen.append(response.prediction.model_version)

        callers = [asyncio.create_task(caller()) for _ in range(8)]
        await asyncio.sleep(0.3)
        register_again(registry, "direction-logistic")
        async with asyncio.timeout(20):
            await asyncio.gather(*callers)

    assert seen[0] == "direction-logistic@1"
    assert set(seen) == {"direction-logistic@1", "direction-logistic@2"}


async def test_with_no_model_predict_says_how_to_train_one_until_one_is_registered(
    trained_home: Path, tmp_path: Path
) -> None:
    settings = prediction_settings(trained_home, tmp_path / "empty-registry")
    async with running_server(build_server, settings) as running:
        stub = stub_for(pb_grpc.PredictionServiceStub, running.channel)
        health = stub_for(health_pb2_grpc.HealthStub, running.channel)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.Predict(pb.PredictRequest(symbol="AAA"), timeout=5)
        status = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE))

        assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "financelake models train" in (raised.value.details() or "")
        assert status.status == health_pb2.HealthCheckResponse.NOT_SERVING

        source = open_registry(prediction_settings(trained_home))
        target = open_registry(settings)
        for name in ("direction-logistic", "return-ridge"):
            loaded = source.load(name)
            target.register(card_of(loaded.metadata), loaded.onnx)
        await wait_serving(running.channel)
        response = await predict_when_ready(stub, pb.PredictRequest(symbol="AAA"))
    assert response.prediction.model_version == "direction-logistic@1"


async def test_models_are_listed_newest_first_page_by_page_and_described(
    trained_home: Path,
) -> None:
    registry = open_registry(prediction_settings(trained_home))
    async with running_server(build_server, prediction_settings(trained_home)) as running:
        await wait_serving(running.channel)
        stub = stub_for(pb_grpc.PredictionServiceStub, running.channel)
        listed: list[str] = []
        request = pb.ListModelsRequest(page_size=3)
        while True:
            page = await stub.ListModels(request, timeout=5)
            listed += [f"{m.name}@{m.version}" for m in page.models]
            if not page.next_page_token:
                break
            request.page_token = page.next_page_token
        described = await stub.GetModel(pb.GetModelRequest(model="direction-gbm"), timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.GetModel(pb.GetModelRequest(model="direction-gbm@7"), timeout=5)

    assert listed == [m.reference for m in registry.list_models()]
    assert len(listed) == 4
    model = described.model_info
    metadata = registry.metadata("direction-gbm")
    assert (model.name, model.version, model.latest) == ("direction-gbm", 1, True)
    assert tuple(model.feature_names) == DIRECTION_FEATURES
    assert model.onnx_sha256 == metadata.onnx_sha256
    assert dict(model.metrics) == pytest.approx(metadata.metrics)
    assert {"roc_auc", "log_loss", "accuracy"} <= set(model.metrics)
    assert any(key.startswith("always_up.") for key in model.baseline_metrics)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def copy_models(home: Path, tmp_path: Path) -> Path:
    """A copy of the trained registry, for a test that registers versions."""
    return Path(shutil.copytree(home / "models", tmp_path / "models"))


def card_of(metadata: ModelMetadata) -> ModelCard:
    """The card a version was registered from."""
    return ModelCard(**{f.name: getattr(metadata, f.name) for f in dataclasses.fields(ModelCard)})


def register_again(registry: ModelRegistry, name: str) -> None:
    loaded = registry.load(name)
    registry.register(card_of(loaded.metadata), loaded.onnx)


async def test_a_model_named_without_version_is_its_newest_of_the_interval_asked_for(
    trained_home: Path, tmp_path: Path
) -> None:
    models = copy_models(trained_home, tmp_path)
    registry = open_registry(prediction_settings(trained_home, models))
    loaded = registry.load("direction-logistic")
    # Version 2 of the name is trained on 5-minute bars: a 1m forecast must keep using @1.
    registry.register(dataclasses.replace(card_of(loaded.metadata), interval="5m"), loaded.onnx)
    async with running_server(build_server, prediction_settings(trained_home, models)) as running:
        await wait_serving(running.channel)
        stub = stub_for(pb_grpc.PredictionServiceStub, running.channel)
        request = pb.PredictRequest(symbol="AAA", model_version="direction-logistic")
        response = await predict_when_ready(stub, request)

    assert response.prediction.model_version == "direction-logistic@1"
