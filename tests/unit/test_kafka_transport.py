"""The stream app's consumer asks the broker to hold a fetch for at most FETCH_MAX_WAIT_MS,
its connections read Kafka frames through `ChunkedReader`, and it hands records to the
streams without a task per record when nothing blocks (`EagerFirstWait`)."""

from __future__ import annotations

import asyncio
import inspect
import struct

import aiokafka.conn
import mode
import numpy as np
import pytest
from aiokafka import AIOKafkaConsumer

from financelake.services.settings import Settings
from financelake.stream.app import faust_app
from financelake.stream.kafka_transport import (
    FETCH_MAX_WAIT_MS,
    ChunkedReader,
    EagerFirstWait,
    use_chunked_reader,
)


def test_the_worker_consumer_fetches_with_the_short_wait() -> None:
    app = faust_app(Settings())

    async def build() -> AIOKafkaConsumer:
        return app.consumer._thread._create_worker_consumer(app.transport)  # type: ignore[attr-defined]

    consumer = asyncio.run(build())
    assert consumer._fetch_max_wait_ms == FETCH_MAX_WAIT_MS < 1500


def test_aiokafka_still_keeps_the_fetch_wait_where_the_override_writes_it() -> None:
    async def build() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(fetch_max_wait_ms=123)

    assert asyncio.run(build())._fetch_max_wait_ms == 123


async def _serve(payload: bytes, *, close: bool) -> tuple[asyncio.Server, int]:
    """A loopback server that writes `payload` to whoever connects (then closes, if asked)."""

    async def send(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(payload)
        await writer.drain()
        if close:
            writer.close()
        else:
            await reader.read()  # hold the connection until the client closes it

    server = await asyncio.start_server(send, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _chunked_connection(port: int, limit: int) -> tuple[ChunkedReader, asyncio.StreamWriter]:
    loop = asyncio.get_running_loop()
    reader = ChunkedReader(limit=limit, loop=loop)
    transport, protocol = await loop.create_connection(
        lambda: asyncio.StreamReaderProtocol(reader, loop=loop), "127.0.0.1", port
    )
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


async def test_the_chunked_reader_returns_kafka_frames_byte_for_byte() -> None:
    # Size-prefixed frames as Kafka responses come: tiny ones and several megabytes (many
    # socket reads each, far past the reader's limit, so reading pauses and resumes).
    rng = np.random.default_rng(3)
    frames = [rng.bytes(size) for size in (0, 1, 7, 70_000, 3_000_000, 5, 6_500_000, 12)]
    payload = b"".join(struct.pack(">i", len(f)) + f for f in frames)
    server, port = await _serve(payload, close=False)
    async with server:
        reader, writer = await _chunked_connection(port, limit=2**16)
        received = []
        for _ in frames:
            (size,) = struct.unpack(">i", await reader.readexactly(4))
            received.append(await reader.readexactly(size))
        writer.close()
    assert received == frames


async def test_the_chunked_reader_reports_a_frame_cut_by_the_peer() -> None:
    server, port = await _serve(b"\x00\x00\x01\x00" + b"x" * 100, close=True)
    async with server:
        reader, writer = await _chunked_connection(port, limit=16)
        assert await reader.readexactly(4) == b"\x00\x00\x01\x00"
        with pytest.raises(asyncio.IncompleteReadError) as cut:
            await reader.readexactly(256)
        writer.close()
    assert cut.value.partial == b"x" * 100
    assert reader.at_eof()


def test_aiokafka_connections_read_with_the_chunked_reader_once_the_app_has_a_transport() -> None:
    app = faust_app(Settings())
    assert app.transport is not None
    use_chunked_reader()  # idempotent

    # aiokafka builds its reader through its module's `asyncio`; asyncio itself is untouched.
    assert aiokafka.conn.asyncio.StreamReader is ChunkedReader
    assert aiokafka.conn.asyncio.StreamWriter is asyncio.StreamWriter
    assert asyncio.StreamReader is not ChunkedReader


# ---- EagerFirstWait ------------------------------------------------------------------


class _Service(EagerFirstWait, mode.Service):
    """A bare mode service with the eager wait_first."""


def test_the_app_consumer_waits_eagerly() -> None:
    app = faust_app(Settings())
    assert isinstance(app.consumer, EagerFirstWait)


def test_a_first_coroutine_that_never_suspends_wins_without_starting_the_others() -> None:
    async def main() -> None:
        service = _Service()
        flow = asyncio.Event()
        delivered: list[int] = []
        tasks_before = len(asyncio.all_tasks())

        async def deliver(value: int) -> int:
            delivered.append(value)
            return value * 2

        waiting = flow.wait()
        result = await service.wait_first(deliver(21), waiting)
        assert (result.results, result.stopped, delivered) == ([42], False, [21])
        # Closed, never run: no task, no "never awaited" warning.
        assert inspect.getcoroutinestate(waiting) == inspect.CORO_CLOSED
        assert len(asyncio.all_tasks()) == tasks_before

    asyncio.run(main())


def test_a_first_coroutine_that_suspends_races_on_and_can_finish_first() -> None:
    async def main() -> None:
        service = _Service()
        room: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        async def deliver() -> str:
            await asyncio.sleep(0)  # a bare yield first
            return await room

        asyncio.get_running_loop().call_later(0.01, room.set_result, "put")
        result = await service.wait_first(deliver(), asyncio.Event().wait(), timeout=5)
        assert (result.results, result.stopped) == (["put"], False)

    asyncio.run(main())


def test_a_blocked_delivery_is_abandoned_when_the_flow_is_suspended() -> None:
    async def main() -> None:
        service = _Service()
        suspended = asyncio.Event()
        room = asyncio.get_running_loop().create_future()
        seen: list[str] = []

        async def deliver() -> None:
            try:
                await room
                seen.append("delivered")
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise

        asyncio.get_running_loop().call_later(0.01, suspended.set)
        result = await service.wait_first(deliver(), suspended.wait(), timeout=5)
        await asyncio.sleep(0.01)  # let the abandoned delivery see its cancellation
        assert (result.results, seen, room.cancelled()) == ([True], ["cancelled"], True)

    asyncio.run(main())


def test_an_error_in_the_first_step_is_raised_and_the_others_closed() -> None:
    async def main() -> None:
        service = _Service()

        async def deliver() -> None:
            raise ValueError("undecodable")

        waiting = asyncio.Event().wait()
        with pytest.raises(ValueError, match="undecodable"):
            await service.wait_first(deliver(), waiting)
        assert inspect.getcoroutinestate(waiting) == inspect.CORO_CLOSED

    asyncio.run(main())
