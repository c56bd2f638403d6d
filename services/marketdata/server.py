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
from pyiceberg.catalog import Catalog

from financelake.gen.marketdata.v1 import marketdata_service_pb2_grpc as pb_grpc
from financelake.services import server as plumbing
from financelake.services.lake import LakeOpener
from financelake.services.marketdata.bar_store import BarStore
from financelake.services.marketdata.live import LiveMarket
from financelake.services.marketdata.live_feed import LiveFeed
from financelake.services.marketdata.servicer import SERVICE_NAME, MarketDataServicer
from financelake.services.settings import Settings

logger = logging.getLogger(__name__)


def build_server(settings: Settings, health: plumbing.ServerHealth) -> tuple[grpc.aio.Server, int]:
    """The market-data server on `settings.servers.marketdata_port`, not started."""
    live = LiveFeed(
        settings.bootstrap_servers,
        settings.topics.ticks,
        settings.topics.bars,
        LiveMarket(),
        kafka=settings.kafka,
    )
    servicer = MarketDataServicer(live=live)

    async def serve_lake(catalog: Catalog) -> None:
        store = BarStore(catalog)
        if await asyncio.to_thread(store.snapshot_id) is None:
            logger.info("silver.bars is empty: serving an empty symbol list until bars arrive")
        servicer.use_store(store)
        await health.set_serving(SERVICE_NAME)

    health.add_dependency(LakeOpener(settings, serve_lake))
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
