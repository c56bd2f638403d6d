"""Domain errors map to status codes and `google.rpc` details (no server involved)."""

from __future__ import annotations

import math
from typing import Literal

import grpc
import protovalidate
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from protobuf import Oneof

from financelake.gen.common.v1 import tick_pb2
from financelake.gen.ingestion.v1 import ingestion_service_pb2 as ingestion_pb
from financelake.services import errors
from financelake.services.server.errors import (
    ERROR_DOMAIN,
    STATUS_CODES,
    code_for,
    internal_status,
    status_for,
)
from financelake.services.server.validation import field_path, invalid_input, violations_of
from tests.builders import tick_batch

pytestmark = pytest.mark.unit


def _details(
    status: status_pb2.Status,
) -> tuple[list[error_details_pb2.ErrorInfo], list[error_details_pb2.BadRequest]]:
    infos, bad_requests = [], []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            infos.append(info)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            bad_requests.append(bad_request)
        else:
            pytest.fail(f"unexpected detail {detail.type_url}")
    return infos, bad_requests


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.InvalidInput("bad"), grpc.StatusCode.INVALID_ARGUMENT),
        (errors.OutOfRange("late"), grpc.StatusCode.OUT_OF_RANGE),
        (errors.NotFound("no AAPL"), grpc.StatusCode.NOT_FOUND),
        (errors.AlreadyExists("twice"), grpc.StatusCode.ALREADY_EXISTS),
        (errors.FailedPrecondition("not yet"), grpc.StatusCode.FAILED_PRECONDITION),
        (errors.Aborted("conflict"), grpc.StatusCode.ABORTED),
        (errors.PermissionDenied("no"), grpc.StatusCode.PERMISSION_DENIED),
        (errors.Overloaded("queue full"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (errors.Unavailable("kafka down"), grpc.StatusCode.UNAVAILABLE),
        (errors.DeadlineExceeded("slow"), grpc.StatusCode.DEADLINE_EXCEEDED),
        (errors.Unimplemented("/x.v1.S/M"), grpc.StatusCode.UNIMPLEMENTED),
        (errors.FinanceLakeError("bug"), grpc.StatusCode.INTERNAL),
    ],
)
def test_each_error_maps_to_its_code_with_exactly_one_error_info(
    error: errors.FinanceLakeError, code: grpc.StatusCode
) -> None:
    status = status_for(error)

    assert status.code == code.value[0]
    assert status.message == error.message
    infos, _ = _details(status)
    assert len(infos) == 1
    assert infos[0].reason == error.default_reason
    assert infos[0].domain == ERROR_DOMAIN


def test_every_error_class_has_a_code() -> None:
    classes = [
        cls
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.FinanceLakeError)
    ]
    assert set(classes) == set(STATUS_CODES)


def test_subclass_keeps_its_parents_code_and_sets_its_own_reason() -> None:
    class UnknownSymbol(errors.NotFound):
        default_reason = "SYMBOL_NOT_FOUND"

    error = UnknownSymbol("no such symbol: ZZZZ", metadata={"symbol": "ZZZZ"})
    status = status_for(error)

    assert code_for(error) is grpc.StatusCode.NOT_FOUND
    (info,), _ = _details(status)
    assert info.reason == "SYMBOL_NOT_FOUND"
    assert dict(info.metadata) == {"symbol": "ZZZZ"}


def test_reason_must_be_upper_snake() -> None:
    with pytest.raises(ValueError, match="UPPER_SNAKE"):
        errors.NotFound("x", reason="not-found")


def test_invalid_input_carries_one_field_violation_per_violation() -> None:
    error = errors.InvalidInput(
        "two bad fields",
        violations=[
            errors.FieldViolation("batches[0].symbol", "must match pattern", "STRING_PATTERN"),
            errors.FieldViolation("batches[0].prices[1]", "must be greater than 0", "DOUBLE_GT"),
        ],
    )

    status = status_for(error)

    assert status.code == code_pb2.INVALID_ARGUMENT
    infos, (bad_request,) = _details(status)
    assert [info.reason for info in infos] == ["INVALID_INPUT"]
    assert [(v.field, v.description, v.reason) for v in bad_request.field_violations] == [
        ("batches[0].symbol", "must match pattern", "STRING_PATTERN"),
        ("batches[0].prices[1]", "must be greater than 0", "DOUBLE_GT"),
    ]


def test_status_round_trips_through_the_grpc_trailer() -> None:
    status = status_for(errors.Overloaded("ingest queue full", metadata={"limit": "64"}))

    carried = rpc_status.to_status(status)

    assert carried.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert carried.details == "ingest queue full"
    ((key, value),) = carried.trailing_metadata
    assert key == "grpc-status-details-bin"
    assert status_pb2.Status.FromString(value) == status


def test_internal_status_says_nothing_about_the_exception() -> None:
    status = internal_status()

    assert status.code == code_pb2.INTERNAL
    (info,), _ = _details(status)
    assert info.reason == "INTERNAL"


def test_protovalidate_violations_become_field_paths() -> None:
    request = ingestion_pb.PublishTicksRequest(
        batches=[tick_batch(symbol="", prices=(10.0, -1.0, math.nan))]
    )

    violations = violations_of(request, protovalidate.Validator())

    fields = {(v.field, v.reason) for v in violations}
    assert ("batches[0].symbol", "STRING_PATTERN") in fields
    assert ("batches[0].prices[1]", "DOUBLE_GT") in fields
    assert ("batches[0].prices[2]", "DOUBLE_FINITE") in fields
    error = invalid_input(request, violations)
    assert error.metadata == {"message_type": "financelake.ingestion.v1.PublishTicksRequest"}
    assert error.message.startswith("invalid PublishTicksRequest: ")


def test_field_path_renders_every_subscript_kind() -> None:
    # Subscripts are protobuf-py `Oneof`s: the runtime of protovalidate's own messages.
    element = protovalidate.FieldPathElementPb
    string_key: Oneof[Literal["string_key"], str] = Oneof("string_key", 'a"b')
    int_key: Oneof[Literal["int_key"], int] = Oneof("int_key", -3)
    bool_key: Oneof[Literal["bool_key"], bool] = Oneof("bool_key", True)
    index: Oneof[Literal["index"], int] = Oneof("index", 7)
    path = protovalidate.FieldPathPb(
        elements=[
            element(field_name="labels", subscript=string_key),
            element(field_name="by_id", subscript=int_key),
            element(field_name="flags", subscript=bool_key),
            element(field_name="rows", subscript=index),
            element(field_name="price"),
        ]
    )

    assert field_path(path) == 'labels["a\\"b"].by_id[-3].flags[true].rows[7].price'


def test_message_level_rule_points_at_the_message() -> None:
    request = ingestion_pb.PublishTicksRequest(
        batches=[
            tick_pb2.TickBatch(
                symbol="AAPL",
                event_time_unix_nanos=[1, 2],
                prices=[1.0],
                sizes=[1.0, 1.0],
                trade_ids=["a", "b"],
            )
        ]
    )

    (violation,) = violations_of(request, protovalidate.Validator())

    assert violation.field == "batches[0]"
    assert violation.reason == "TICK_BATCH_COLUMNS_SAME_LENGTH"
