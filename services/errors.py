"""The named exceptions domain code raises; one server interceptor maps them to gRPC.

A flat list in the manner of `pyiceberg.exceptions`: every error subclasses
`FinanceLakeError` directly, carries a machine-readable `reason` (UPPER_SNAKE, the
`google.rpc.ErrorInfo.reason` clients switch on), a human message and string metadata.
This module imports neither grpc nor protobuf, so pure domain modules can raise these
errors; the status code each class stands for lives beside the interceptor
(`financelake.services.server.errors`), the one place that knows about gRPC.

Subclass one of these for a more specific error (e.g. `class UnknownSymbol(NotFound)`
with `default_reason = "SYMBOL_NOT_FOUND"`); it keeps its parent's status code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar

_REASON = re.compile(r"[A-Z][A-Z0-9_]*[A-Z0-9]")


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One invalid field of a request.

    Attributes:
        field: Path to the field in the request, protovalidate style: `batches[0].prices[2]`.
        description: Why the value is invalid, phrased for the caller.
        reason: Optional UPPER_SNAKE code of the broken rule (e.g. `DOUBLE_GT`).
    """

    field: str
    description: str
    reason: str = ""


class FinanceLakeError(Exception):
    """Base of every error FinanceLake reports to a caller.

    Attributes:
        message: What went wrong, safe to show to the caller.
        reason: UPPER_SNAKE identifier of the error, stable across releases.
        metadata: Extra context as strings (ids, limits), sent as `ErrorInfo.metadata`.
    """

    default_reason: ClassVar[str] = "FINANCELAKE_ERROR"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        # A malformed reason is a programming error; failing loudly here beats clients
        # receiving identifiers they cannot switch on.
        if not _REASON.fullmatch(self.reason):
            raise ValueError(f"error reason must be UPPER_SNAKE, got {self.reason!r}")
        self.metadata: dict[str, str] = dict(metadata or {})


class InvalidInput(FinanceLakeError):
    """The request is malformed; `violations` says which fields and why."""

    default_reason = "INVALID_INPUT"

    def __init__(
        self,
        message: str,
        *,
        violations: Iterable[FieldViolation] = (),
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, reason=reason, metadata=metadata)
        self.violations: tuple[FieldViolation, ...] = tuple(violations)


class OutOfRange(FinanceLakeError):
    """A valid value outside what exists now (a time range past the data, a stale page)."""

    default_reason = "OUT_OF_RANGE"


class NotFound(FinanceLakeError):
    """The named resource (symbol, model, table, job) does not exist."""

    default_reason = "NOT_FOUND"


class AlreadyExists(FinanceLakeError):
    """The resource the caller tries to create exists already."""

    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(FinanceLakeError):
    """The system is not in the state the operation needs; retrying as is will not help."""

    default_reason = "FAILED_PRECONDITION"


class Aborted(FinanceLakeError):
    """A concurrent change won (e.g. an Iceberg commit conflict); retry the whole operation."""

    default_reason = "ABORTED"


class PermissionDenied(FinanceLakeError):
    """The caller is known but not allowed to do this."""

    default_reason = "PERMISSION_DENIED"


class Overloaded(FinanceLakeError):
    """A limit or quota is exhausted (queue full, too many streams); back off and retry."""

    default_reason = "OVERLOADED"


class Unavailable(FinanceLakeError):
    """A dependency (Kafka, the catalog, the model) cannot be reached now; retry later."""

    default_reason = "UNAVAILABLE"


class DeadlineExceeded(FinanceLakeError):
    """The work could not finish within the caller's deadline or a server time limit."""

    default_reason = "DEADLINE_EXCEEDED"


class Unimplemented(FinanceLakeError):
    """The RPC is part of the contract but this server does not serve it."""

    default_reason = "RPC_NOT_IMPLEMENTED"

    def __init__(self, method: str) -> None:
        super().__init__(
            f"{method} is part of the API contract but is not served by this server release",
            metadata={"method": method},
        )
