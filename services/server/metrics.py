"""RED metrics of a gRPC server: every RPC counted when it starts and when it ends, by its
final status, and timed (the series are `financelake.observability.metrics`')."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from financelake.observability.metrics import (
    RPC_HANDLED,
    RPC_MESSAGES_SENT,
    RPC_SECONDS,
    RPC_STARTED,
)
from financelake.services.server.handlers import (
    behavior_of,
    call_unary,
    final_code,
    iterate_stream,
    with_behavior,
)


def rpc_type(handler: grpc.RpcMethodHandler) -> str:
    """`unary`, `client_stream`, `server_stream` or `bidi_stream`."""
    if handler.request_streaming and handler.response_streaming:
        return "bidi_stream"
    if handler.request_streaming:
        return "client_stream"
    return "server_stream" if handler.response_streaming else "unary"


class _MethodMetrics:
    """One method's pre-bound series: the labels are resolved once, not per call."""

    def __init__(self, method: str, kind: str) -> None:
        service, _, name = method.lstrip("/").rpartition("/")
        self.labels = (service, name, kind)
        self.started = RPC_STARTED.labels(*self.labels)
        self.seconds = RPC_SECONDS.labels(*self.labels)
        self.sent = RPC_MESSAGES_SENT.labels(*self.labels)
        self._handled: dict[str, Any] = {}

    def handled(self, code: str) -> Any:
        child = self._handled.get(code)
        if child is None:
            child = self._handled[code] = RPC_HANDLED.labels(*self.labels, code)
        return child


class RpcMetricsInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Counts every RPC when it starts and when it ends (by final status) and times it.

    Register it outermost, so its time and status include every other interceptor's work
    (validation refusals are counted as INVALID_ARGUMENT).
    """

    def __init__(self) -> None:
        self._methods: dict[str, _MethodMetrics] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Any],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        """Wrap the method's behaviour with its counters and timer."""
        handler: grpc.RpcMethodHandler | None = await continuation(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method
        metrics = self._methods.get(method)
        if metrics is None:
            metrics = self._methods[method] = _MethodMetrics(method, rpc_type(handler))
        behavior = behavior_of(handler)

        if handler.response_streaming:

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                metrics.started.inc()
                started = time.perf_counter()
                raised: BaseException | None = None
                try:
                    async for response in iterate_stream(behavior, request, context):
                        metrics.sent.inc()
                        yield response
                except BaseException as exc:
                    raised = exc
                    raise
                finally:
                    metrics.seconds.observe(time.perf_counter() - started)
                    metrics.handled(final_code(context, raised)).inc()

            return with_behavior(handler, stream)

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            metrics.started.inc()
            started = time.perf_counter()
            raised: BaseException | None = None
            try:
                return await call_unary(behavior, request, context)
            except BaseException as exc:
                raised = exc
                raise
            finally:
                metrics.seconds.observe(time.perf_counter() - started)
                metrics.handled(final_code(context, raised)).inc()

        return with_behavior(handler, unary)
