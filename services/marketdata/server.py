"""Builds the market-data server: MarketDataService plus health and reflection.

MarketDataService is SERVING once the lake is open: the catalog from settings, with the
lake tables created if missing, so the service starts useful on an empty lake (ListSymbols
answers an empty list, GetBars NOT_FOUND) and serves bars as soon as the stream or an
import writes some.
"""

from __future__ import annotations

import asyncio
import logging

import grpc

from financelake.gen.marketdata.v1 import marketdata_service_pb2_grpc as pb_grpc
from financelake.services import server as plumbing
from financelake.services.marketdata.bar_store import BarStore
from financelake.services.marketdata.live import LiveMarket
from financelake.services.marketdata.live_feed import LiveFeed
from financelake.services.marketdata.servicer import SERVICE_NAME, MarketDataServicer
from financelake.services.settings import Settings
from financelake.stream.lake.catalog import open_catalog
from financelake.stream.lake.tables import ensure_tables

logger = logging.getLogger(__name__)

_RETRY_DELAY_S = 5.0


class LakeBars:
    """Opens the catalog and hands the servicer its `BarStore` when the server starts (a
    dependency); retries in the background while the catalog cannot be reached."""

    def __init__(
        self, settings: Settings, servicer: MarketDataServicer, health: plumbing.ServerHealth
    ) -> None:
        self._settings = settings
        self._servicer = servicer
        self._health = health
        self._retrying: asyncio.Task[None] | None = None

    async def _open(self) -> None:
        # In a thread: a remote catalog (Glue, REST) does network I/O.
        catalog = await asyncio.to_thread(open_catalog, self._settings)
        await asyncio.to_thread(ensure_tables, catalog)
        store = BarStore(catalog)
        snapshot = await asyncio.to_thread(store.snapshot_id)
        if snapshot is None:
            logger.info("silver.bars is empty: serving an empty symbol list until bars arrive")
        self._servicer.use_store(store)
        await self._health.set_serving(SERVICE_NAME)

    async def start(self) -> None:
        """Open the lake now; if it cannot be reached, keep trying in the background."""
        try:
            await self._open()
        except Exception:
            logger.exception("the lake catalog cannot be opened yet; retrying")
            self._retrying = asyncio.create_task(self._retry(), name="lake-bars")

    async def _retry(self) -> None:
        while True:
            await asyncio.sleep(_RETRY_DELAY_S)
            try:
                await self._open()
                return
            except Exception as exc:  # any catalog failure: log and keep trying
                logger.warning("the lake catalog cannot be opened yet: %s", exc)

    async def stop(self) -> None:
        """Stop retrying; catalog reads hold nothing open."""
        if self._retrying is not None:
            self._retrying.cancel()


def build_server(settings: Settings, health: plumbing.ServerHealth) -> tuple[grpc.aio.Server, int]:
    """The market-data server on `settings.servers.marketdata_port`, not started."""
    live = LiveFeed(
        settings.bootstrap_servers, settings.topics.ticks, settings.topics.bars, LiveMarket()
    )
    servicer = MarketDataServicer(live=live)
    health.add_dependency(LakeBars(settings, servicer, health))
    health.add_dependency(live)
    return plumbing.build_server(
        settings,
        settings.servers.marketdata_port,
        plumbing.ServiceRegistration(
            pb_grpc.add_MarketDataServiceServicer_to_server,
            servicer,
            SERVICE_NAME,
            ready_on_start=False,  # SERVING once the lake is open
        ),
        health=health,
    )
