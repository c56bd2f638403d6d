"""The stream app's Faust transport: Faust's aiokafka one, with a short broker-side fetch wait,
assigned partitions read from where the lake ends, frames read in chunks, and records handed
to the streams without a task each (`EagerFirstWait`).

Faust builds its aiokafka consumer with `fetch_max_wait_ms=1500` and no setting to change it.
One consumer reads every topic of the app, and aiokafka keeps one fetch in flight per broker,
leaving out the partitions whose fetched records are not consumed yet. So while the busy ticks
partitions still hold fetched records, the next fetch asks only for quiet partitions (the bars
topic); the broker holds that fetch for the whole wait, and the ticks can be fetched again
only after it: in a backlog, bench-stream saw the ticks agent idle 1.2-1.5 s at a time.

After every rebalance Faust seeks the assigned partitions to the consumer group's committed
offsets. Those can lie past the lake: Faust acknowledges the events it drops because they were
fetched before the rebalance, and commits them unprocessed; a worker killed before it read
them again lost them (the kill test caught it). `StreamApp.start_offsets`, when set, replaces
that seek: the app seeks where the lake says every agent's records end.

aiokafka reads each response through an asyncio `StreamReader`, which appends every received
chunk to one `bytearray`: a multi-megabyte fetch response grows it 12.5% at a time and each
growth copies it, holding the GIL (7% of the worker's CPU under `perf`). The app's
connections read with `ChunkedReader`, which keeps the chunks as they came and joins a
response once (bench-stream, seven runs each, interleaved: 1.64 M -> 1.78 M trades/s on
average; the consumer thread's page faults halve).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import types
from collections.abc import Awaitable, Callable, Collection, Coroutine, Iterable, Mapping
from typing import Any, SupportsIndex

import aiokafka
import aiokafka.conn
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, TransportT
from mode import Seconds, Service
from mode.services import WaitArgT, WaitResults

logger = logging.getLogger(__name__)

StartOffsets = Callable[[Collection[TP]], Mapping[TP, int]]

# Long enough that an idle worker asks the broker a handful of times a second, short enough
# that a fetch of quiet partitions delays the busy ones by no more than this.
FETCH_MAX_WAIT_MS = 100


class ChunkedReader(asyncio.StreamReader):
    """A `StreamReader` for `readexactly` alone (all aiokafka calls, with `at_eof`) that keeps
    received chunks in a queue: a read joins the chunks it spans once, where asyncio's reader
    copies its buffer each time it grows. Flow control is asyncio's: reading pauses above
    twice the limit and resumes when a read waits or drains the queue under the limit."""

    # asyncio.StreamReader's own state, which its type stubs leave out.
    _eof: bool
    _exception: BaseException | None
    _transport: asyncio.ReadTransport | None
    _paused: bool
    _limit: int
    _wakeup_waiter: Callable[[], None]
    _wait_for_data: Callable[[str], Awaitable[None]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._chunks: collections.deque[bytes] = collections.deque()
        self._size = 0

    def feed_data(self, data: Iterable[SupportsIndex]) -> None:
        assert not self._eof, "feed_data after feed_eof"
        chunk = bytes(data)  # the transport's bytes as they are, no copy
        if not chunk:
            return
        self._chunks.append(chunk)
        self._size += len(chunk)
        self._wakeup_waiter()
        if self._transport is not None and not self._paused and self._size > 2 * self._limit:
            try:
                self._transport.pause_reading()
            except NotImplementedError:
                # A transport that cannot pause (as asyncio's own reader allows for).
                self._transport = None
            else:
                self._paused = True

    def at_eof(self) -> bool:
        return bool(self._eof) and not self._size

    async def readexactly(self, n: int) -> bytes:
        if n < 0:
            raise ValueError("readexactly size can not be less than zero")
        if self._exception is not None:
            raise self._exception
        while self._size < n:
            if self._eof:
                partial = b"".join(self._chunks)
                self._chunks.clear()
                self._size = 0
                raise asyncio.IncompleteReadError(partial, n)
            await self._wait_for_data("readexactly")
        data = self._take(n)
        if self._paused and self._transport is not None and self._size <= self._limit:
            self._paused = False
            self._transport.resume_reading()
        return data

    def _take(self, n: int) -> bytes:
        """The next `n` bytes (there are at least that many queued)."""
        self._size -= n
        parts = []
        while n:
            chunk = self._chunks.popleft()
            if len(chunk) > n:
                self._chunks.appendleft(chunk[n:])
                chunk = chunk[:n]
            parts.append(chunk)
            n -= len(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)


def use_chunked_reader() -> None:
    """Make aiokafka's connections in this process read with `ChunkedReader` (idempotent).
    aiokafka builds its reader as `asyncio.StreamReader(...)` inside `AIOKafkaConnection`
    with no parameter for it, so its module sees an `asyncio` whose `StreamReader` is ours."""
    if isinstance(aiokafka.conn.asyncio, _AsyncioWithChunkedReader):
        return
    aiokafka.conn.asyncio = _AsyncioWithChunkedReader("asyncio")


class _AsyncioWithChunkedReader(types.ModuleType):
    StreamReader = ChunkedReader

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # The consumer hands this to its fetcher when it starts; no public way to set it.
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer

    async def seek_to_committed(self) -> Mapping[TP, int]:
        starts = self.app.start_offsets if isinstance(self.app, StreamApp) else None
        if starts is None:
            return await super().seek_to_committed()
        offsets: Mapping[TP, int] = await self.call_thread(self._seek_to_start_offsets, starts)
        return offsets

    async def _seek_to_start_offsets(self, starts: StartOffsets) -> Mapping[TP, int]:
        # On the consumer's thread; reading the lake blocks, so not on its event loop.
        consumer = self._ensure_consumer()
        offsets = await asyncio.to_thread(starts, consumer.assignment())
        for tp, offset in sorted(offsets.items()):
            consumer.seek(tp, offset)
            logger.info("%s[%d]: reading from offset %d, where the lake ends", *tp, offset)
        return offsets


class EagerFirstWait(Service):
    """`Service.wait_first` with its first coroutine started at once: when that finishes
    without suspending, it has won the race, and the others are never started.

    Faust hands each fetched message to its streams through `wait_first(deliver,
    suspend_flow.wait())`, so that a rebalance can abandon a delivery blocked on a full
    buffer. mode runs every argument, and the service's stop and crash events, as tasks:
    four tasks and three event-loop turns per Kafka record. A delivery rarely blocks; one
    that does goes on as a task in mode's race (bench-stream: the worker's event loop turned
    31,000 times for 10,000 records before, 11,000 after)."""

    async def wait_first(
        self,
        *coros: WaitArgT,
        timeout: Seconds | None = None,  # noqa: ASYNC109 (mode's)
    ) -> WaitResults:
        first = coros[0] if coros else None
        if asyncio.iscoroutine(first) and not (self.should_stop or self._crashed.is_set()):
            try:
                yielded = first.send(None)
            except BaseException as ended:
                for other in coros[1:]:
                    if asyncio.iscoroutine(other):
                        other.close()
                if isinstance(ended, StopIteration):
                    return WaitResults([first], [ended.value], False)
                raise
            coros = (_resumed(first, yielded), *coros[1:])
        # mode declares the timeout `Seconds = None`: None is its "no timeout".
        return await super().wait_first(*coros, timeout=timeout)  # type: ignore[arg-type]


class _Consumer(EagerFirstWait, faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


async def _resumed(coro: Coroutine[Any, Any, Any], yielded: Any) -> Any:
    """Drive to its end, as a task would, a coroutine whose first step yielded `yielded`: wait
    for the future it yielded (None: it only gave the loop a turn), then resume it; a
    cancellation cancels that future and is raised inside the coroutine."""
    while True:
        try:
            if yielded is None:
                await asyncio.sleep(0)
            else:
                yielded._asyncio_future_blocking = False
                await asyncio.wait([yielded])
        except asyncio.CancelledError as cancelled:
            if yielded is not None:
                yielded.cancel()
            step: Callable[[], Any] = functools.partial(coro.throw, cancelled)
        else:
            step = functools.partial(coro.send, None)
        try:
            yielded = step()
        except StopIteration as finished:
            return finished.value


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class StreamApp(faust.App):
    """A Faust app whose consumer fetches with `FETCH_MAX_WAIT_MS` and, once `start_offsets`
    is set, starts assigned partitions where it says."""

    start_offsets: StartOffsets | None = None

    def _new_transport(self) -> TransportT:
        use_chunked_reader()
        return _Transport(self.conf.broker_consumer, self)
