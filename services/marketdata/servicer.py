"""The gRPC adapter of `financelake.marketdata.v1.MarketDataService`.

No RPC is served yet; each answers UNIMPLEMENTED (via `errors.Unimplemented` and the
error-mapping interceptor) until its issue lands.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from financelake.gen.marketdata.v1 import marketdata_service_pb2 as pb
from financelake.gen.marketdata.v1 import marketdata_service_pb2_grpc as pb_grpc
from financelake.services.errors import Unimplemented

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["MarketDataService"].full_name


class MarketDataServicer(pb_grpc.MarketDataServiceServicer):
    """Serves MarketDataService over gRPC."""

    async def ListSymbols(
        self, request: pb.ListSymbolsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListSymbolsResponse:
        """Symbols known to the lake, paged."""
        raise Unimplemented(f"{SERVICE_NAME}/ListSymbols")

    async def GetBars(
        self, request: pb.GetBarsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetBarsResponse:
        """Historical bars of one symbol and interval over a time range, paged."""
        raise Unimplemented(f"{SERVICE_NAME}/GetBars")

    async def GetQuote(
        self, request: pb.GetQuoteRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetQuoteResponse:
        """The latest quote of one symbol."""
        raise Unimplemented(f"{SERVICE_NAME}/GetQuote")

    async def GetIndicators(
        self, request: pb.GetIndicatorsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetIndicatorsResponse:
        """Technical indicators of one symbol."""
        raise Unimplemented(f"{SERVICE_NAME}/GetIndicators")

    async def WatchBars(
        self, request: pb.WatchBarsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WatchBarsResponse]:
        """Live bars as they close (an async generator once served)."""
        raise Unimplemented(f"{SERVICE_NAME}/WatchBars")
