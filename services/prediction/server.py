"""Builds the prediction server: PredictionService, GRPCInferenceService, health, reflection.

Health: `""` reports the process (SERVING once it runs); both prediction services report
NOT_SERVING until a model is loaded, then SERVING. Two background loops keep the server
current without a restart:

* models: every `prediction.reload_interval_s` the registry is listed and new versions are
  loaded (`model_set`), so a `financelake models train` run is served seconds later;
* features: once the lake is open, gold.features is brought up to its current snapshot every
  `prediction.refresh_interval_s` (`latest_features`), and forecasts are appended to
  gold.predictions (`prediction_log`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import grpc
from pyiceberg.catalog import Catalog

from financelake.gen.inference import grpc_predict_v2_pb2_grpc as oip_grpc
from financelake.gen.prediction.v1 import prediction_service_pb2_grpc as pb_grpc
from financelake.models.model_set import ModelSet
from financelake.models.registry import open_registry
from financelake.services import server as plumbing
from financelake.services.lake import LakeOpener
from financelake.services.prediction.inference import INFERENCE_SERVICE_NAME, InferenceServicer
from financelake.services.prediction.latest_features import LatestFeatures
from financelake.services.prediction.prediction_log import PredictionLog
from financelake.services.prediction.servicer import SERVICE_NAME, PredictionServicer
from financelake.services.settings import Settings
from financelake.stream.lake.tables import FEATURES, PREDICTIONS

logger = logging.getLogger(__name__)


class Every:
    """A dependency that runs `step` now and then every `interval_s` in the background; a
    failing step is logged and tried again at the next tick."""

    def __init__(self, name: str, interval_s: float, step: Callable[[], Awaitable[None]]) -> None:
        self._name = name
        self._interval_s = interval_s
        self._step = step
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the loop."""
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def _run(self) -> None:
        while True:
            try:
                await self._step()
            except Exception:  # keep serving what is loaded; try again next tick
                logger.exception("%s failed; retrying in %.0f s", self._name, self._interval_s)
            await asyncio.sleep(self._interval_s)

    async def stop(self) -> None:
        """Stop the loop."""
        if self._task is not None:
            self._task.cancel()


class _LogFlusher:
    """Writes the buffered forecasts when the server stops."""

    def __init__(self, log: PredictionLog) -> None:
        self._log = log

    async def start(self) -> None:
        """Nothing to do until the lake is open."""

    async def stop(self) -> None:
        """Flush what is buffered."""
        await self._log.stop()


def build_server(settings: Settings, health: plumbing.ServerHealth) -> tuple[grpc.aio.Server, int]:
    """The prediction server on `settings.servers.prediction_port`, not started."""
    models = ModelSet(open_registry(settings))
    serving = settings.prediction
    features = LatestFeatures(lookback_s=serving.feature_lookback_days * 86_400)
    log = PredictionLog()

    async def reload_models() -> None:
        if await asyncio.to_thread(models.reload) and models.current.any_loaded:
            await health.set_serving(SERVICE_NAME)
            await health.set_serving(INFERENCE_SERVICE_NAME)

    lake: Catalog | None = None

    async def serve_lake(catalog: Catalog) -> None:
        nonlocal lake
        log.use_table(await asyncio.to_thread(catalog.load_table, PREDICTIONS.identifier))
        lake = catalog

    async def refresh_features() -> None:
        if lake is not None:
            table = await asyncio.to_thread(lake.load_table, FEATURES.identifier)
            await asyncio.to_thread(features.refresh, table)

    health.add_dependency(Every("models-reload", serving.reload_interval_s, reload_models))
    health.add_dependency(LakeOpener(settings, serve_lake))
    health.add_dependency(Every("features-refresh", serving.refresh_interval_s, refresh_features))
    health.add_dependency(_LogFlusher(log))
    return plumbing.build_server(
        settings,
        settings.servers.prediction_port,
        plumbing.ServiceRegistration(
            pb_grpc.add_PredictionServiceServicer_to_server,
            PredictionServicer(models, features, log),
            SERVICE_NAME,
            ready_on_start=False,  # SERVING once a model is loaded
        ),
        plumbing.ServiceRegistration(
            oip_grpc.add_GRPCInferenceServiceServicer_to_server,
            InferenceServicer(models),
            INFERENCE_SERVICE_NAME,
            ready_on_start=False,  # SERVING once a model is loaded
        ),
        health=health,
    )
