"""The one interceptor that enforces the contracts' `buf.validate` rules (protovalidate).

Every request message is validated before the handler sees it: the request of unary and
server-streaming RPCs, and each message of client/bidi streams as the handler pulls it.
A violation ends the RPC with INVALID_ARGUMENT and a `google.rpc.BadRequest` holding one
`FieldViolation` per violation, `field` being protovalidate's path (`batches[0].prices[2]`).

The native validator compiles each message type's rules once and caches them, so a call
costs only the evaluation (about a microsecond for a message without rules).

The wire bytes a request was parsed from go to its type's fast path, and, in
`REQUEST_BYTES`, to the handler: a handler that forwards parts of a request (the ingestion
service's batches) slices them instead of serialising the parsed message again. A type with
a wire path is not even parsed when that path proves the bytes well-formed and valid: the
handler gets the message unparsed until first used, and what the path read in
`REQUEST_WIRE`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import grpc
import protovalidate
from google.protobuf.message import DecodeError, Message

from financelake.services import errors
from financelake.services.server.errors import abort_with, status_for
from financelake.services.server.handlers import (
    behavior_of,
    call_unary,
    iterate_stream,
    with_behavior,
)

#: A message type's columnar fast path, given the message and the wire bytes it was parsed
#: from: True only when every rule provably holds; False hands the message to protovalidate,
#: which stays the authority and reports violations.
FastPath = Callable[[Any, bytes], bool]

#: A message type's wire path, given a request's bytes alone: what it read from them when
#: they provably parse and every rule provably holds, else None (the request is then parsed
#: and validated as usual).
WirePath = Callable[[bytes], Any]

#: The wire bytes of the request message the handler was just given (in a client stream,
#: the message it pulled last); None outside a call this interceptor validated.
REQUEST_BYTES: ContextVar[bytes | None] = ContextVar("request_bytes", default=None)

#: What the message type's wire path read from that request; None when it was parsed.
REQUEST_WIRE: ContextVar[Any] = ContextVar("request_wire", default=None)

# How many violations the status message spells out; all of them are in the details.
_MESSAGE_VIOLATIONS = 3


def field_path(path: protovalidate.FieldPathPb) -> str:
    """Render a protovalidate field path as text: `batches[0].prices[2]`, `labels["k"]`."""
    parts: list[str] = []
    for element in path.elements:
        text = element.field_name
        subscript = element.subscript
        if subscript is not None:
            value = subscript.value
            if isinstance(value, bool):
                text += "[true]" if value else "[false]"
            elif isinstance(value, str):
                text += f"[{json.dumps(value)}]"
            else:
                text += f"[{value}]"
        parts.append(text)
    return ".".join(parts)


def _reason(rule_id: str) -> str:
    # BadRequest.FieldViolation.reason wants UPPER_SNAKE; protovalidate ids look like
    # `double.gt` or custom `tick_batch.sorted_times`.
    return "".join(c if c.isalnum() else "_" for c in rule_id).upper()


# Message-level rules (CEL across fields) carry no field path. The contracts name such a rule
# `<message>.<rule>`; a rule listed here is reported on the field a client has to change.
_MESSAGE_RULE_FIELDS = {"time_range": "end_time", "page_size": "page_size"}


def _field_of(violation: protovalidate.Violation) -> str:
    path = violation.proto.field
    if path is not None and path.elements:
        return field_path(path)
    return _MESSAGE_RULE_FIELDS.get(violation.proto.rule_id.rpartition(".")[2], "")


def violations_of(
    message: Message, validator: protovalidate.Validator
) -> list[errors.FieldViolation]:
    """The field violations of one message, empty when it is valid."""
    return [
        errors.FieldViolation(
            field=_field_of(violation),
            description=violation.proto.message or violation.proto.rule_id,
            reason=_reason(violation.proto.rule_id),
        )
        for violation in validator.collect_violations(message)
    ]


def invalid_input(
    message: Message, violations: list[errors.FieldViolation], stream_index: int | None = None
) -> errors.InvalidInput:
    """The error reported for an invalid request message."""
    shown = "; ".join(
        f"{v.field}: {v.description}" if v.field else v.description
        for v in violations[:_MESSAGE_VIOLATIONS]
    )
    more = len(violations) - _MESSAGE_VIOLATIONS
    if more > 0:
        shown += f" (and {more} more)"
    metadata = {"message_type": message.DESCRIPTOR.full_name}
    if stream_index is not None:
        # Field paths are relative to one streamed message; say which one.
        metadata["stream_index"] = str(stream_index)
    return errors.InvalidInput(
        f"invalid {message.DESCRIPTOR.name}: {shown}",
        violations=violations,
        reason="INVALID_REQUEST",
        metadata=metadata,
    )


@dataclass(frozen=True)
class Undecodable:
    """Stands in for a request whose bytes are not a valid message, so that the interceptor
    (not grpc's deserialiser, which would answer INTERNAL) reports it as INVALID_ARGUMENT."""

    message_type: str
    error: str


@dataclass(frozen=True, slots=True)
class _Received:
    """A request's wire bytes, and the message parsed from them unless its type has a wire
    path (`parse` then does it when needed)."""

    message: Message | None
    raw: bytes
    type_name: str
    parse: Callable[[bytes], Message]


class _Unparsed:
    """A request message proven valid from its bytes, parsed on first use: a handler that
    works from `REQUEST_WIRE` never pays for the parse."""

    __slots__ = ("_message", "_parse", "_raw")

    def __init__(self, parse: Callable[[bytes], Message], raw: bytes) -> None:
        self._parse = parse
        self._raw = raw
        self._message: Message | None = None

    def __getattr__(self, name: str) -> Any:
        if self._message is None:
            self._message = self._parse(self._raw)
        return getattr(self._message, name)


def _type_name(deserialize: Callable[[bytes], Any]) -> str:
    message_type = getattr(getattr(deserialize, "__self__", None), "DESCRIPTOR", None)
    return message_type.full_name if message_type is not None else "request"


def _tolerant(
    deserialize: Callable[[bytes], Any] | None, wire_paths: Mapping[str, WirePath]
) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None
    type_name = _type_name(deserialize)
    deferred = type_name in wire_paths

    def decode(raw: bytes) -> _Received | Undecodable:
        if deferred:
            return _Received(None, raw, type_name, deserialize)
        try:
            return _Received(deserialize(raw), raw, type_name, deserialize)
        except DecodeError as exc:
            return Undecodable(type_name, str(exc))

    return decode


def _undecodable(request: Undecodable, stream_index: int | None) -> errors.InvalidInput:
    metadata = {"message_type": request.message_type}
    if stream_index is not None:
        metadata["stream_index"] = str(stream_index)
    return errors.InvalidInput(
        f"the request bytes are not a valid {request.message_type}: {request.error}",
        reason="MALFORMED_REQUEST",
        metadata=metadata,
    )


class ValidationInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Validates every request message with protovalidate before the handler runs.

    Streaming handlers must consume the request iterator they are given (not
    `context.read()`), which is the form FinanceLake handlers take anyway.
    """

    def __init__(
        self,
        validator: protovalidate.Validator | None = None,
        fast_paths: Mapping[str, FastPath] | None = None,
        wire_paths: Mapping[str, WirePath] | None = None,
    ) -> None:
        # One validator per server: it caches the compiled rules of each message type.
        self._validator = validator or protovalidate.Validator()
        self._fast_paths = dict(fast_paths or {})
        self._wire_paths = dict(wire_paths or {})

    async def _check(
        self,
        request: _Received | Undecodable,
        context: grpc.aio.ServicerContext,
        stream_index: int | None = None,
    ) -> Message | _Unparsed:
        """The request's message once valid (its bytes in `REQUEST_BYTES`, what a wire path
        read in `REQUEST_WIRE`); else abort."""
        if isinstance(request, Undecodable):
            await abort_with(context, status_for(_undecodable(request, stream_index)))
        message = request.message
        if message is None:
            wire = self._wire_paths[request.type_name](request.raw)
            if wire is not None:
                REQUEST_BYTES.set(request.raw)
                REQUEST_WIRE.set(wire)
                return _Unparsed(request.parse, request.raw)
            try:
                message = request.parse(request.raw)
            except DecodeError as exc:
                undecodable = Undecodable(request.type_name, str(exc))
                await abort_with(context, status_for(_undecodable(undecodable, stream_index)))
        fast_path = self._fast_paths.get(message.DESCRIPTOR.full_name)
        if fast_path is None or not fast_path(message, request.raw):
            violations = violations_of(message, self._validator)
            if violations:
                error = invalid_input(message, violations, stream_index)
                await abort_with(context, status_for(error))
        REQUEST_BYTES.set(request.raw)
        REQUEST_WIRE.set(None)
        return message

    def _validated(
        self, requests: AsyncIterator[Any], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        async def validated() -> AsyncIterator[Any]:
            # An async generator runs in its consumer's context: the handler pulling a
            # message sees its bytes in REQUEST_BYTES.
            index = 0
            async for request in requests:
                message = await self._check(request, context, index)
                index += 1
                yield message

        return validated()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Any],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        """Wrap the method's behaviour so requests are validated first."""
        handler: grpc.RpcMethodHandler | None = await continuation(handler_call_details)
        if handler is None:
            return None
        behavior = behavior_of(handler)
        decode = _tolerant(handler.request_deserializer, self._wire_paths)

        if handler.request_streaming and handler.response_streaming:

            async def stream_stream(
                requests: AsyncIterator[Any], context: grpc.aio.ServicerContext
            ) -> AsyncIterator[Any]:
                async for response in iterate_stream(
                    behavior, self._validated(requests, context), context
                ):
                    yield response

            return with_behavior(handler, stream_stream, decode)

        if handler.request_streaming:

            async def stream_unary(
                requests: AsyncIterator[Any], context: grpc.aio.ServicerContext
            ) -> Any:
                return await call_unary(behavior, self._validated(requests, context), context)

            return with_behavior(handler, stream_unary, decode)

        if handler.response_streaming:

            async def unary_stream(
                request: Any, context: grpc.aio.ServicerContext
            ) -> AsyncIterator[Any]:
                message = await self._check(request, context)
                async for response in iterate_stream(behavior, message, context):
                    yield response

            return with_behavior(handler, unary_stream, decode)

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            message = await self._check(request, context)
            return await call_unary(behavior, message, context)

        return with_behavior(handler, unary_unary, decode)
