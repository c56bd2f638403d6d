"""Helpers for interceptors that wrap a method handler's behaviour.

`grpc.aio` accepts several handler shapes (coroutine, async generator, coroutine that
writes with `context.write`, plain functions such as the generated base-class stubs).
An interceptor that wraps a behaviour must call every shape correctly; these helpers
normalise them to "await one response" or "iterate the responses", so each interceptor
is written once per arity instead of once per shape.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any

import grpc

#: A handler behaviour: (request or request iterator, context) -> response, awaitable or
#: response iterator. The context is untyped because grpc ships no type information.
Behavior = Callable[[Any, Any], Any]


def behavior_of(handler: grpc.RpcMethodHandler) -> Behavior:
    """The one callable of a method handler, whatever its arity."""
    behavior: Behavior | None = (
        handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream
    )
    if behavior is None:
        raise ValueError("method handler carries no behaviour")
    return behavior


async def call_unary(behavior: Behavior, request: Any, context: Any) -> Any:
    """Call a behaviour that answers one response, awaiting it when it is async."""
    result = behavior(request, context)
    if inspect.isawaitable(result):
        return await result
    return result


async def iterate_stream(behavior: Behavior, request: Any, context: Any) -> AsyncIterator[Any]:
    """Yield the responses of a streaming behaviour, whichever shape it has."""
    result = behavior(request, context)
    if inspect.isawaitable(result):
        # Coroutine-style streaming handler (e.g. health Watch): it writes its
        # responses itself with `context.write`, nothing is left to yield.
        await result
        return
    if isinstance(result, AsyncIterable):
        async for response in result:
            yield response
        return
    # A synchronous generator; it runs on the event loop, which is acceptable only
    # because FinanceLake handlers are async (sync ones exist in generated stubs alone).
    for response in result:
        yield response


def with_behavior(
    handler: grpc.RpcMethodHandler,
    behavior: Behavior,
    request_deserializer: Callable[[bytes], Any] | None = None,
) -> grpc.RpcMethodHandler:
    """A copy of `handler` with the same arity and serialiser but a new behaviour (and,
    optionally, a new request deserialiser)."""
    if handler.request_streaming and handler.response_streaming:
        factory = grpc.stream_stream_rpc_method_handler
    elif handler.request_streaming:
        factory = grpc.stream_unary_rpc_method_handler
    elif handler.response_streaming:
        factory = grpc.unary_stream_rpc_method_handler
    else:
        factory = grpc.unary_unary_rpc_method_handler
    return factory(
        behavior,
        request_deserializer=request_deserializer or handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


# context.code() may give the numeric code.
_CODE_NAMES: dict[int, str] = {code.value[0]: code.name for code in grpc.StatusCode}


def final_code(context: grpc.aio.ServicerContext, raised: BaseException | None) -> str:
    """The status the client gets: what the handler set or aborted with, else OK; an
    exception no interceptor mapped is UNKNOWN, a cancellation CANCELLED."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    if isinstance(code, int) and code:
        return _CODE_NAMES.get(code, "UNKNOWN")
    if raised is None:
        return "OK"
    return "CANCELLED" if isinstance(raised, asyncio.CancelledError) else "UNKNOWN"
