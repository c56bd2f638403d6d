"""The four servers as a client sees them: health, reflection, honest UNIMPLEMENTED, validation.

In-process over a real `grpc.aio` channel first; then each server as the real process
`python -m financelake.services.<name>`, probed with grpcurl through reflection alone,
and stopped with SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from financelake.gen.ingestion.v1 import ingestion_service_pb2 as ingestion_pb
from financelake.gen.ingestion.v1 import ingestion_service_pb2_grpc as ingestion_grpc
from financelake.services.ingestion.server import build_server as build_ingestion
from financelake.services.marketdata.server import build_server as build_marketdata
from financelake.services.prediction.server import build_server as build_prediction
from financelake.services.server import ServerBuilder
from financelake.services.settings import Settings
from financelake.services.stream.server import build_server as build_stream
from tests.builders import tick_batch
from tests.fixtures.grpc import RunningServer, StartServer, error_info, field_violations, stub_for

pytestmark = pytest.mark.integration

HEALTH = "grpc.health.v1.Health"
REFLECTION = "grpc.reflection.v1alpha.ServerReflection"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
DEADLINE_S = 5.0


@dataclass(frozen=True)
class ServerCase:
    """One server: how to build it and what a client must find on it."""

    name: str
    build: ServerBuilder
    #: Application services -> health status they report with no dependency ready.
    services: dict[str, int]


CASES = [
    ServerCase(
        "ingestion",
        build_ingestion,
        # No Kafka in these tests: IngestionService waits for it.
        {"financelake.ingestion.v1.IngestionService": NOT_SERVING},
    ),
    ServerCase(
        "marketdata",
        build_marketdata,
        # The lake (a local SqlCatalog under the test's home) opens at start.
        {"financelake.marketdata.v1.MarketDataService": SERVING},
    ),
    ServerCase(
        "stream",
        build_stream,
        {"financelake.stream.v1.StreamService": SERVING},
    ),
    ServerCase(
        "prediction",
        build_prediction,
        # No model is registered in the test's home, so both stay NOT_SERVING.
        {
            "financelake.prediction.v1.PredictionService": NOT_SERVING,
            "inference.GRPCInferenceService": NOT_SERVING,
        },
    ),
]
IDS = [case.name for case in CASES]


async def _list_services(channel: grpc.aio.Channel) -> set[str]:
    reflection = stub_for(reflection_pb2_grpc.ServerReflectionStub, channel)
    call = reflection.ServerReflectionInfo(timeout=DEADLINE_S)
    await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
    response = await call.read()
    await call.done_writing()
    return {service.name for service in response.list_services_response.service}


async def _health(channel: grpc.aio.Channel, service: str) -> int:
    request = health_pb2.HealthCheckRequest(service=service)
    response = await stub_for(health_pb2_grpc.HealthStub, channel).Check(
        request, timeout=DEADLINE_S
    )
    status: int = response.status
    return status


# ---- in process ---------------------------------------------------------------------------


@pytest.fixture(params=CASES, ids=IDS)
async def case_server(request, grpc_server: StartServer) -> tuple[ServerCase, RunningServer]:
    case: ServerCase = request.param
    return case, await grpc_server(case.build)


async def test_health_reports_the_process_serving_and_each_service_truthfully(case_server):
    case, running = case_server

    assert await _health(running.channel, "") == SERVING
    for service, status in case.services.items():
        assert await _health(running.channel, service) == status, service


async def test_reflection_lists_the_services_health_and_reflection(case_server):
    case, running = case_server

    assert await _list_services(running.channel) == {*case.services, HEALTH, REFLECTION}


@pytest.fixture
async def ingestion_stub(grpc_server: StartServer) -> ingestion_grpc.IngestionServiceStub:
    running = await grpc_server(build_ingestion)
    return stub_for(ingestion_grpc.IngestionServiceStub, running.channel)


@pytest.mark.parametrize(
    ("batch", "expected"),
    [
        pytest.param(
            tick_batch(prices=(190.5, -1.0)),
            {("batches[0].prices[1]", "must be greater than 0")},
            id="negative-price",
        ),
        pytest.param(
            tick_batch(prices=(190.5, math.nan)),
            {
                ("batches[0].prices[1]", "must be finite"),
                ("batches[0].prices[1]", "must be greater than 0"),
            },
            id="nan-price",
        ),
        pytest.param(tick_batch(symbol=""), {"batches[0].symbol"}, id="empty-symbol"),
    ],
)
async def test_invalid_publish_ticks_is_invalid_argument_with_field_paths(
    ingestion_stub, batch, expected
) -> None:
    request = ingestion_pb.PublishTicksRequest(batches=[batch])

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await ingestion_stub.PublishTicks(request, timeout=DEADLINE_S)

    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    violations = field_violations(raised.value)
    if all(isinstance(item, str) for item in expected):
        assert {field for field, _ in violations} == expected
    else:
        assert set(violations) == expected
    assert error_info(raised.value).reason == "INVALID_REQUEST"


# ---- real processes, probed with grpcurl ------------------------------------------------------


@dataclass
class ServerProcess:
    """A server started as `python -m financelake.services.<name>`."""

    process: asyncio.subprocess.Process
    address: str
    log: list[str]
    listening: asyncio.Event


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


async def _drain(stream: asyncio.StreamReader, log: list[str], listening: asyncio.Event) -> None:
    # Keep reading so the child never blocks on a full pipe; note when it started serving.
    async for raw in stream:
        line = raw.decode(errors="replace").rstrip()
        log.append(line)
        if "gRPC server started" in line:
            listening.set()


@pytest.fixture
def grpcurl() -> Path:
    binary = Settings().cache_dir / "bin" / "grpcurl"
    if not binary.is_file():
        pytest.fail(f"{binary} is missing: run `make tools` (needs Go) to build it")
    return binary


@pytest.fixture
async def server_process(request, tmp_path) -> AsyncIterator[ServerProcess]:
    name: str = request.param
    settings = Settings()
    port = _free_port(settings.servers.host)
    env = {
        **os.environ,
        f"FINANCELAKE_SERVERS__{name.upper()}_PORT": str(port),
        "FINANCELAKE_HOME": str(tmp_path / "home"),  # the stream server opens its lake there
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        f"financelake.services.{name}",
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    running = ServerProcess(process, f"{settings.servers.host}:{port}", [], asyncio.Event())
    drain = asyncio.create_task(_drain(process.stderr, running.log, running.listening))
    try:
        await asyncio.wait_for(running.listening.wait(), timeout=30)
        yield running
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await drain


async def _grpcurl(grpcurl: Path, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        str(grpcurl),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, f"grpcurl {' '.join(args)}: {stderr.decode()}"
    return stdout.decode()


@pytest.mark.parametrize(
    ("server_process", "case"),
    [(case.name, case) for case in CASES],
    ids=IDS,
    indirect=["server_process"],
)
async def test_server_process_answers_grpcurl_and_stops_on_sigterm(
    server_process: ServerProcess, case: ServerCase, grpcurl: Path
) -> None:
    address = server_process.address

    listed = await _grpcurl(grpcurl, "-plaintext", address, "list")
    assert set(listed.split()) == {*case.services, HEALTH, REFLECTION}

    checked = await _grpcurl(
        grpcurl, "-plaintext", "-d", '{"service":""}', address, f"{HEALTH}/Check"
    )
    assert json.loads(checked) == {"status": "SERVING"}

    # Descriptors resolve through reflection, dependencies (buf.validate, google.api) included.
    for service in case.services:
        described = await _grpcurl(grpcurl, "-plaintext", address, "describe", service)
        assert service in described

    server_process.process.send_signal(signal.SIGTERM)
    grace = Settings().servers.grace_period_s
    assert await asyncio.wait_for(server_process.process.wait(), timeout=grace + 10) == 0
    await asyncio.sleep(0)  # let the drain task take the last lines
    assert any("received SIGTERM" in line for line in server_process.log), server_process.log
    assert all(json.loads(line) for line in server_process.log if line.startswith("{"))


async def test_financelake_serve_is_the_same_server(tmp_path: Path, grpcurl: Path) -> None:
    """`financelake serve marketdata`, the container image's role command, serves the same
    services and stops the same way as `python -m financelake.services.marketdata`."""
    settings = Settings()
    port = _free_port(settings.servers.host)
    env = {
        **os.environ,
        "FINANCELAKE_SERVERS__MARKETDATA_PORT": str(port),
        "FINANCELAKE_HOME": str(tmp_path / "home"),
    }
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("financelake")),
        *("serve", "marketdata"),
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    log: list[str] = []
    listening = asyncio.Event()
    drain = asyncio.create_task(_drain(process.stderr, log, listening))
    try:
        await asyncio.wait_for(listening.wait(), timeout=30)
        address = f"{settings.servers.host}:{port}"
        listed = await _grpcurl(grpcurl, "-plaintext", address, "list")
        assert "financelake.marketdata.v1.MarketDataService" in listed.split()
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=20) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await drain
    assert any("received SIGTERM" in line for line in log), log
