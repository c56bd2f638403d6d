"""The gRPC adapter of `financelake.ingestion.v1.IngestionService`.

No RPC is served yet; each answers UNIMPLEMENTED (via `errors.Unimplemented` and the
error-mapping interceptor) until its issue lands, so clients see an honest status
instead of the generated stubs' exception.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from financelake.gen.ingestion.v1 import ingestion_service_pb2 as pb
from financelake.gen.ingestion.v1 import ingestion_service_pb2_grpc as pb_grpc
from financelake.services.errors import Unimplemented

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["IngestionService"].full_name


class IngestionServicer(pb_grpc.IngestionServiceServicer):
    """Serves IngestionService over gRPC."""

    async def IngestTicks(
        self,
        request_iterator: AsyncIterator[pb.IngestTicksRequest],
        context: grpc.aio.ServicerContext,
    ) -> pb.IngestTicksResponse:
        """Client stream of trade batches written to Kafka."""
        raise Unimplemented(f"{SERVICE_NAME}/IngestTicks")

    async def PublishTicks(
        self, request: pb.PublishTicksRequest, context: grpc.aio.ServicerContext
    ) -> pb.PublishTicksResponse:
        """One request of trade batches, acknowledged after Kafka acknowledged them."""
        raise Unimplemented(f"{SERVICE_NAME}/PublishTicks")

    async def ImportHistory(
        self, request: pb.ImportHistoryRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ImportHistoryResponse]:
        """Import bars from a source, streaming progress (an async generator once served)."""
        raise Unimplemented(f"{SERVICE_NAME}/ImportHistory")
