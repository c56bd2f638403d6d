"""The Faust side of the lake agents: one Faust agent per input topic takes batches of events,
feeds every lake agent reading that topic, produces what they emit, commits them on time, on
size or as soon as a backlog is drained, and acknowledges events only once every commit
covering them landed.

One Faust agent per topic rather than per lake agent: Faust fans a topic out to each of its
agents through separate streams, which on this workload ran three times slower than one
stream feeding both (bench-stream). Its steps are taken from the agent's channel in bulk
(`take_step`) rather than through Faust's stream iterator, which turns the event loop once
per event and runs its processors and sensors on each: for a backlog of 10,000 records the
loop turned 11,000 times with it, 950 without (bench-stream). The checks that iterator makes
on each event are kept (`_admitted`). Events are acknowledged after the Iceberg commits, so
the group's offsets (what lag reports) trail the lake; where reading starts is the lake's to
say, though (`core.start_offsets`), and records it already holds are skipped by each lake
agent. A timer commits when no events arrive, a revocation commits before partitions move,
and shutdown commits what is pending.

With tracing on, a batch whose records carry a trace (in their headers, from the ingestion
service) gets a CONSUMER span in the first such trace, linked to the others; what the batch
emits gets a PRODUCER span each, whose context travels on in the emitted record's headers;
a commit gets a span in the trace of the first traced batch it covers, with the rows, bytes
and snapshot id it wrote. Untraced batches cost one flag test.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import faust
from faust.types import TP, ChannelT, EventT, StreamT
from mode import BaseSignalT
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanContext, SpanKind

from financelake.observability.metrics import (
    AGENT_RECORDS,
    LAKE_COMMIT_SECONDS,
    LAKE_COMMITTED_FILES,
    LAKE_COMMITTED_ROWS,
)
from financelake.observability.tracing import batch_parent, continued, producer_span, recording
from financelake.stream.agents.core import (
    CatchUp,
    CommitResult,
    Emit,
    LakeAgent,
    PreparedCommit,
    Record,
)

logger = logging.getLogger(__name__)
_TRACER = trace.get_tracer(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Route:
    """A lake agent and the topic its messages go to (None: it emits nothing)."""

    agent: LakeAgent
    output: faust.TopicT | None = None


@dataclass
class _InFlight:
    commits: list[asyncio.Task[tuple[CommitResult, float]]]
    agents: list[LakeAgent]
    events: list[EventT[Any]]


class TopicDriver:
    """Runs the lake agents of one input topic inside a Faust app."""

    def __init__(
        self,
        app: faust.App,
        name: str,
        source: faust.TopicT,
        routes: Sequence[Route],
        *,
        take_max_records: int,
        take_within_s: float,
        traced: bool = False,
    ) -> None:
        self.app = app
        self.name = name
        self.source = source
        self.routes = list(routes)
        self.take_max_records = take_max_records
        self.take_within_s = take_within_s
        self._lock = asyncio.Lock()
        self._unacked: list[EventT[Any]] = []
        self._stream: StreamT[Any] | None = None
        self._in_flight: _InFlight | None = None
        self._failed = False
        self.traced = traced
        self._traced_batches: list[SpanContext] = []
        self._read: dict[TP, int] = {}
        self._catch_up = CatchUp(backlog_records=take_max_records)

    @property
    def agents(self) -> list[LakeAgent]:
        """The lake agents this driver feeds."""
        return [route.agent for route in self.routes]

    def install(self) -> None:
        """Register the Faust agent, the commit timer and the rebalance and shutdown hooks."""
        self.app.agent(self.source, name=self.name)(self._run)
        interval = min(route.agent.policy.interval_s for route in self.routes)
        self.app.timer(min(1.0, interval / 5))(self._on_timer)
        # mode types receivers as a union mypy cannot match a bound coroutine method against.
        self.app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]
        self.app.on_before_shutdown.connect(self._on_shutdown)  # type: ignore[arg-type]

    async def _run(self, stream: StreamT[Any]) -> AsyncIterator[None]:
        self._stream = stream
        channel = stream.channel
        assert isinstance(channel, ChannelT)  # an agent's stream reads its topic's channel
        started = await stream.maybe_start()
        queue = channel.queue
        try:
            while not stream.should_stop:
                step = await take_step(queue, self.take_max_records, self.take_within_s)
                events = await self._admitted(stream, step)
                if not events:
                    continue
                async with self._lock:
                    try:
                        with self._batch_span(events):
                            await self._process(events)
                    except Exception as exc:
                        await self._fail(exc)
                        raise
                yield None
        finally:
            if started:
                await stream.stop()

    async def _admitted(
        self, stream: StreamT[Any], step: Sequence[EventT[Any]]
    ) -> list[EventT[Any]]:
        """The step's events a stream would hand on, tracked as Faust's stream iterator tracks
        them: events read before a rebalance (another consumer generation, or flow control
        off) are skipped and acknowledged, as Faust does; where reading resumes is the lake's
        to say (`core.start_offsets`)."""
        app = self.app
        active = app.flow_control.is_active()
        generation = app.consumer_generation_id
        acking = app.topics.acking_topics
        unacked = app.consumer.unacked
        admitted = []
        for event in step:
            message = event.message
            if not active or message.generation_id != generation:
                await stream.ack(event)
                continue
            if message.topic in acking and not message.tracked:
                message.tracked = True
                unacked.add(message)
                app.sensors.on_message_in(message.tp, message.offset, message)
            admitted.append(event)
        return admitted

    async def _process(self, events: Sequence[EventT[Any]]) -> None:
        records = [Record(e.message.partition, e.message.offset, e.value) for e in events]
        for route in self.routes:
            AGENT_RECORDS.labels(route.agent.name).inc(len(records))
            await self._produce(route.output, route.agent.process(records))
        self._unacked.extend(events)
        if self._drained(events) or any(agent.due() for agent in self.agents):
            await self._start_commit()

    def _drained(self, events: Sequence[EventT[Any]]) -> bool:
        """True when this step read every partition to its end just after a backlog."""
        for event in events:
            self._read[event.message.tp] = event.message.offset + 1
        # Faust tracks each partition's end offset from every fetch response.
        ends = self.app.monitor.tp_end_offsets
        lag = sum(max(0, ends.get(tp, read) - read) for tp, read in self._read.items())
        return self._catch_up.drained(lag)

    @contextlib.contextmanager
    def _batch_span(self, events: Sequence[EventT[Any]]) -> Iterator[None]:
        """The batch's CONSUMER span, when tracing is on and a record carries a trace."""
        parent, links = (
            batch_parent(e.message.headers for e in events) if self.traced else (None, [])
        )
        if parent is None:
            yield
            return
        with _TRACER.start_as_current_span(
            f"process {self.source.get_topic_name()}",
            context=parent,
            kind=SpanKind.CONSUMER,
            links=links,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.destination.name": self.source.get_topic_name(),
                "messaging.batch.message_count": len(events),
            },
        ) as span:
            self._traced_batches.append(span.get_span_context())
            yield

    async def _fail(self, exc: BaseException) -> None:
        # The agents' state may now hold part of a step. Faust would restart the agent past
        # the records it lost; stopping the worker without a commit makes the restart resume
        # from the last checkpoint instead.
        self._failed = True
        logger.exception("%s failed; stopping the worker uncommitted", self.name)
        await self.app.crash(exc)

    async def _produce(self, output: faust.TopicT | None, emits: Iterable[Emit]) -> None:
        if output is None:
            return
        if self.traced and recording():
            sent = [await _send_traced(output, e) for e in emits]
        else:
            sent = [await output.send(key=e.key, value=e.value) for e in emits]
        # Waiting for every acknowledgement keeps the topic ahead of the lake: a bar is on
        # the topic before the commit that makes its trades "done".
        if sent:
            await asyncio.gather(*sent)

    async def _start_commit(self) -> None:
        """Hand what pends to commit threads and return: the agents keep processing while
        Iceberg writes (its Parquet encoding runs outside the GIL). One round at a time."""
        await self._finish_commit()
        if self._failed:
            return
        # Every agent commits together, so an event's acknowledgement waits for one round.
        prepared = [(agent, agent.prepare_commit()) for agent in self.agents]
        ready = [(agent, p) for agent, p in prepared if p is not None]
        if not ready:
            return
        events, self._unacked = self._unacked, []
        parent, links = continued(self._traced_batches)
        self._traced_batches = []
        self._in_flight = _InFlight(
            commits=[
                asyncio.create_task(asyncio.to_thread(_timed_commit, agent, p, parent, links))
                for agent, p in ready
            ],
            agents=[agent for agent, _ in ready],
            events=events,
        )

    async def _finish_commit(self) -> None:
        """Wait for the commits in flight, then acknowledge the events they covered."""
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is None:
            return
        results = await asyncio.gather(*in_flight.commits)
        stream = self._stream
        if stream is not None:
            for event in in_flight.events:
                await stream.ack(event)
        for agent, (result, elapsed) in zip(in_flight.agents, results, strict=True):
            LAKE_COMMIT_SECONDS.labels(agent.name).observe(elapsed)
            LAKE_COMMITTED_ROWS.labels(agent.name).inc(result.rows)
            LAKE_COMMITTED_FILES.labels(agent.name).inc(result.files)
            logger.info(
                "%s: committed %d rows from %d records in %.3f s (snapshot %s)",
                agent.name,
                result.rows,
                result.records,
                elapsed,
                result.snapshot_id,
            )

    async def _commit(self) -> None:
        """Commit everything now and wait for it (rebalance, shutdown)."""
        if not self._failed:
            await self._start_commit()
            await self._finish_commit()

    async def _on_timer(self) -> None:
        async with self._lock:
            try:
                if self._in_flight is not None and all(t.done() for t in self._in_flight.commits):
                    await self._finish_commit()
                if any(agent.due() for agent in self.agents):
                    await self._start_commit()
            except Exception as exc:
                await self._fail(exc)
                raise

    async def _on_revoked(
        self, sender: Any, *args: Any, signal: BaseSignalT[Any], **kwargs: Any
    ) -> None:
        # Faust sends (app, revoked partitions); the signal's protocol types them loosely.
        revoked: set[TP] = args[0] if args else kwargs["revoked"]
        partitions = [tp.partition for tp in revoked if tp.topic == self.source.get_topic_name()]
        if not partitions:
            return
        async with self._lock:
            await self._commit()
            for agent in self.agents:
                agent.release(partitions)
            for tp in revoked:
                self._read.pop(tp, None)

    async def _on_shutdown(
        self, sender: Any, *args: Any, signal: BaseSignalT[Any], **kwargs: Any
    ) -> None:
        async with self._lock:
            await self._commit()


async def take_step(queue: asyncio.Queue[T], most: int, within_s: float) -> list[T]:
    """Up to `most` items of the queue: those that arrive within `within_s` of the call, and
    at least one, however long it takes to come (then with what is queued behind it). Queued
    items are taken without a turn of the event loop each."""
    deadline = asyncio.get_running_loop().time() + within_s
    items = [await queue.get()]
    while len(items) < most:
        while len(items) < most and not queue.empty():
            items.append(queue.get_nowait())
        if len(items) == most:
            break
        try:
            async with asyncio.timeout_at(deadline):
                items.append(await queue.get())
        except TimeoutError:
            break
    return items


def _timed_commit(
    agent: LakeAgent, prepared: PreparedCommit, parent: Context | None, links: list[Link]
) -> tuple[CommitResult, float]:
    started = time.perf_counter()
    if parent is None:
        return agent.run_commit(prepared), time.perf_counter() - started
    with _TRACER.start_as_current_span(f"commit {agent.name}", context=parent, links=links) as span:
        result = agent.run_commit(prepared)
        span.set_attributes(
            {
                "financelake.table": ".".join(agent.table.name()),
                "financelake.commit.rows": result.rows,
                "financelake.commit.records": result.records,
                "financelake.commit.bytes": result.bytes,
                "financelake.commit.files": result.files,
                "financelake.commit.snapshot_id": str(result.snapshot_id),
            }
        )
    return result, time.perf_counter() - started


async def _send_traced(output: faust.TopicT, emit: Emit) -> Any:
    """Send one emitted record with a PRODUCER span, its context in the record's headers;
    the span ends when Kafka acknowledges."""
    span, headers = producer_span(output.get_topic_name())
    sent = await output.send(key=emit.key, value=emit.value, headers=headers)
    asyncio.ensure_future(sent).add_done_callback(lambda _: span.end())
    return sent
