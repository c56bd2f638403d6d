"""Builds the market-data server: MarketDataService plus health and reflection."""

from __future__ import annotations

import grpc

from financelake.gen.marketdata.v1 import marketdata_service_pb2_grpc as pb_grpc
from financelake.services import server as plumbing
from financelake.services.marketdata.servicer import SERVICE_NAME, MarketDataServicer
from financelake.services.settings import Settings


def build_server(settings: Settings, health: plumbing.ServerHealth) -> tuple[grpc.aio.Server, int]:
    """The market-data server on `settings.servers.marketdata_port`, not started."""
    return plumbing.build_server(
        settings,
        settings.servers.marketdata_port,
        plumbing.ServiceRegistration(
            pb_grpc.add_MarketDataServiceServicer_to_server, MarketDataServicer(), SERVICE_NAME
        ),
        health=health,
    )
