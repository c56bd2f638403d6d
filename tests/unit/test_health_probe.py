"""The supervisor's health probe reads each Check answer right, over a grpc_testing channel.

The test plays the server: the probe runs in a thread and blocks in `Check` until the test
takes that invocation off the channel and terminates it with the answer under test.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import grpc_testing
import pytest
from grpc_health.v1 import health_pb2

from financelake.services.supervisor import Health, probe_health

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]

HEALTH = health_pb2.DESCRIPTOR.services_by_name["Health"]
CHECK = HEALTH.methods_by_name["Check"]
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture
def channel() -> grpc_testing.Channel:
    return grpc_testing.channel([HEALTH], grpc_testing.strict_real_time())


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool


def _probe_answered(
    channel: grpc_testing.Channel,
    executor: ThreadPoolExecutor,
    response: health_pb2.HealthCheckResponse | None,
    code: grpc.StatusCode,
    details: str = "",
) -> Health:
    """Run the probe, answer its one Check with `response`/`code`, return what it reports."""
    probed = executor.submit(probe_health, channel, 1.0)
    _metadata, request, rpc = channel.take_unary_unary(CHECK)
    assert request == health_pb2.HealthCheckRequest(service="")  # the whole server
    rpc.terminate(response, (), code, details)
    return probed.result(timeout=5)


def test_serving_is_healthy(channel: grpc_testing.Channel, executor: ThreadPoolExecutor) -> None:
    answer = health_pb2.HealthCheckResponse(status=SERVING)
    health = _probe_answered(channel, executor, answer, grpc.StatusCode.OK)
    assert health == Health(serving=True, detail="SERVING")


def test_not_serving_is_unhealthy(
    channel: grpc_testing.Channel, executor: ThreadPoolExecutor
) -> None:
    answer = health_pb2.HealthCheckResponse(status=NOT_SERVING)
    health = _probe_answered(channel, executor, answer, grpc.StatusCode.OK)
    assert health == Health(serving=False, detail="NOT_SERVING")


def test_unavailable_is_unhealthy_with_the_code(
    channel: grpc_testing.Channel, executor: ThreadPoolExecutor
) -> None:
    health = _probe_answered(
        channel, executor, None, grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses"
    )
    assert health == Health(serving=False, detail="UNAVAILABLE")
