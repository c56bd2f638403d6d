"""An OTLP/gRPC trace receiver as its own process, for benchmarks that export traces:
`python -m tests.bench.otlp_sink PORT` serves until SIGTERM, then prints how many spans it
received. It keeps only the count, so a long run costs it no memory."""

from __future__ import annotations

import asyncio
import signal
import sys

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as otlp
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as otlp_grpc


class CountingReceiver(otlp_grpc.TraceServiceServicer):
    """Counts the spans every exporter sends."""

    def __init__(self) -> None:
        self.spans = 0

    async def Export(
        self, request: otlp.ExportTraceServiceRequest, context: grpc.aio.ServicerContext
    ) -> otlp.ExportTraceServiceResponse:
        self.spans += sum(
            len(scope.spans)
            for resource in request.resource_spans
            for scope in resource.scope_spans
        )
        return otlp.ExportTraceServiceResponse()


async def serve(port: int) -> None:
    receiver = CountingReceiver()
    server = grpc.aio.server()
    otlp_grpc.add_TraceServiceServicer_to_server(receiver, server)  # type: ignore[no-untyped-call]
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await server.stop(0)
    print(receiver.spans, flush=True)


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
