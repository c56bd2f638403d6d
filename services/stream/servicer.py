"""The gRPC adapter of `financelake.stream.v1.StreamService`.

No RPC is served yet; each answers UNIMPLEMENTED (via `errors.Unimplemented` and the
error-mapping interceptor) until its issue lands.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from financelake.gen.stream.v1 import stream_service_pb2 as pb
from financelake.gen.stream.v1 import stream_service_pb2_grpc as pb_grpc
from financelake.services.errors import Unimplemented

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["StreamService"].full_name


class StreamServicer(pb_grpc.StreamServiceServicer):
    """Serves StreamService over gRPC."""

    async def GetPipelineStatus(
        self, request: pb.GetPipelineStatusRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetPipelineStatusResponse:
        """Consumer lag, throughput and last commit per table."""
        raise Unimplemented(f"{SERVICE_NAME}/GetPipelineStatus")

    async def ListTables(
        self, request: pb.ListTablesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListTablesResponse:
        """The lake's Iceberg tables."""
        raise Unimplemented(f"{SERVICE_NAME}/ListTables")

    async def ListAlerts(
        self, request: pb.ListAlertsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListAlertsResponse:
        """Recorded alerts, paged."""
        raise Unimplemented(f"{SERVICE_NAME}/ListAlerts")

    async def WatchAlerts(
        self, request: pb.WatchAlertsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WatchAlertsResponse]:
        """Live alerts as they are raised (an async generator once served)."""
        raise Unimplemented(f"{SERVICE_NAME}/WatchAlerts")
