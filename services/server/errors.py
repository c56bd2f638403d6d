"""Maps `financelake.services.errors` exceptions to gRPC status codes with rich details.

Every error leaves the server as a `google.rpc.Status` in the `grpc-status-details-bin`
trailer holding exactly one `google.rpc.ErrorInfo` (AIP-193), plus a `BadRequest` with
one `FieldViolation` per bad field for `InvalidInput`. Anything that is not a
`FinanceLakeError` is a bug: it is logged with its traceback and answered as INTERNAL
without leaking its text to the caller.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from financelake.services import errors
from financelake.services.server.handlers import (
    behavior_of,
    call_unary,
    iterate_stream,
    with_behavior,
)

logger = logging.getLogger(__name__)

#: `ErrorInfo.domain` of every FinanceLake error: the service family, not one host.
ERROR_DOMAIN = "financelake.io"

#: Status code per error class; subclasses inherit their nearest ancestor's entry.
STATUS_CODES: dict[type[errors.FinanceLakeError], grpc.StatusCode] = {
    errors.InvalidInput: grpc.StatusCode.INVALID_ARGUMENT,
    errors.OutOfRange: grpc.StatusCode.OUT_OF_RANGE,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Aborted: grpc.StatusCode.ABORTED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    errors.Unimplemented: grpc.StatusCode.UNIMPLEMENTED,
    # A bare FinanceLakeError names no category: the server failed, not the caller.
    errors.FinanceLakeError: grpc.StatusCode.INTERNAL,
}

_INTERNAL_REASON = "INTERNAL"
_INTERNAL_MESSAGE = "internal error; the server logged the details"


def code_for(error: errors.FinanceLakeError) -> grpc.StatusCode:
    """The status code an error maps to (nearest ancestor in `STATUS_CODES`)."""
    for cls in type(error).__mro__:
        code = STATUS_CODES.get(cls)
        if code is not None:
            return code
    return grpc.StatusCode.INTERNAL  # unreachable: FinanceLakeError is in the table


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def status_for(error: errors.FinanceLakeError) -> status_pb2.Status:
    """The `google.rpc.Status` an error is reported as: code, message and details."""
    code = code_for(error)
    details: list[any_pb2.Any] = []
    if isinstance(error, errors.InvalidInput) and error.violations:
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=violation.field,
                            description=violation.description,
                            reason=violation.reason,
                        )
                        for violation in error.violations
                    ]
                )
            )
        )
    details.append(
        _pack(
            error_details_pb2.ErrorInfo(
                reason=error.reason, domain=ERROR_DOMAIN, metadata=error.metadata
            )
        )
    )
    return status_pb2.Status(code=code.value[0], message=error.message, details=details)


def internal_status() -> status_pb2.Status:
    """What an unexpected exception is reported as; it says nothing about the exception."""
    info = error_details_pb2.ErrorInfo(reason=_INTERNAL_REASON, domain=ERROR_DOMAIN)
    return status_pb2.Status(
        code=code_pb2.INTERNAL, message=_INTERNAL_MESSAGE, details=[_pack(info)]
    )


async def abort_with(context: grpc.aio.ServicerContext, status: status_pb2.Status) -> NoReturn:
    """End the RPC with `status` (code, message, and details in the trailer)."""
    await context.abort_with_status(rpc_status.to_status(status))
    raise AssertionError("context.abort_with_status returned")  # it always raises


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Turns exceptions escaping any handler into a status with `google.rpc` details.

    Register it first (outermost) so that it also sees what later interceptors raise.
    """

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Any],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        """Wrap the method's behaviour so its exceptions become statuses."""
        handler: grpc.RpcMethodHandler | None = await continuation(handler_call_details)
        if handler is None:
            return None  # unknown method: grpc answers UNIMPLEMENTED itself
        method: str = handler_call_details.method
        behavior = behavior_of(handler)

        if handler.response_streaming:

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                try:
                    async for response in iterate_stream(behavior, request, context):
                        yield response
                except Exception as exc:  # mapping every exception is the point
                    await _abort_for(exc, method, context)

            return with_behavior(handler, stream)

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                return await call_unary(behavior, request, context)
            except Exception as exc:  # mapping every exception is the point
                await _abort_for(exc, method, context)

        return with_behavior(handler, unary)


async def _abort_for(exc: Exception, method: str, context: grpc.aio.ServicerContext) -> NoReturn:
    if isinstance(exc, grpc.aio.AbortError):
        # The RPC was already ended on purpose (context.abort, e.g. by validation).
        raise exc
    if isinstance(exc, errors.FinanceLakeError):
        code = code_for(exc)
        if code is grpc.StatusCode.INTERNAL:
            logger.error("%s failed: %s", method, exc.reason, exc_info=exc)
        else:
            logger.info("%s answered %s %s", method, code.name, exc.reason)
        await abort_with(context, status_for(exc))
    logger.error("%s raised an unexpected exception", method, exc_info=exc)
    await abort_with(context, internal_status())
