"""The Faust side of a lake agent: take batches of events, feed the agent, produce what it
emits, commit on time or size, and acknowledge events only once their commit landed.

Acknowledging after the Iceberg commit keeps Kafka's committed offsets at or behind the
lake's, so a restart never skips a record the lake lacks; records the lake already holds are
skipped by the agent (see `core`). A timer commits when no events arrive, a revocation
commits before partitions move, and shutdown commits what is pending.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

import faust
from faust.types import TP, EventT, StreamT
from mode import BaseSignalT

from financelake.stream.agents.core import CommitResult, Emit, LakeAgent, Record

logger = logging.getLogger(__name__)


class AgentDriver:
    """Runs one `LakeAgent` inside a Faust app."""

    def __init__(
        self,
        app: faust.App,
        agent: LakeAgent,
        source: faust.TopicT,
        output: faust.TopicT | None = None,
        *,
        take_max_records: int,
        take_within_s: float,
    ) -> None:
        self.app = app
        self.agent = agent
        self.source = source
        self.output = output
        self.take_max_records = take_max_records
        self.take_within_s = take_within_s
        self._lock = asyncio.Lock()
        self._unacked: list[EventT[Any]] = []
        self._stream: StreamT[Any] | None = None
        self.commits = 0
        self._failed = False

    def install(self) -> None:
        """Register the agent, its commit timer and its rebalance and shutdown hooks."""
        self.app.agent(self.source, name=self.agent.name)(self._run)
        self.app.timer(min(1.0, self.agent.policy.interval_s / 5))(self._on_timer)
        # mode types receivers as a union mypy cannot match a bound coroutine method against.
        self.app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]
        self.app.on_before_shutdown.connect(self._on_shutdown)  # type: ignore[arg-type]

    async def _run(self, stream: StreamT[Any]) -> AsyncIterator[None]:
        self._stream = stream
        assert isinstance(stream, faust.Stream)  # noack_take is not on the StreamT protocol
        async for events in stream.noack_take(self.take_max_records, self.take_within_s):
            async with self._lock:
                try:
                    records = [
                        Record(e.message.partition, e.message.offset, e.value) for e in events
                    ]
                    emits = self.agent.process(records)
                    self._unacked.extend(events)
                    await self._produce(emits)
                    if self.agent.due():
                        await self._commit()
                except Exception as exc:
                    # The agent's state may now hold part of a step. Faust would restart the
                    # agent past the records it lost; stopping the worker without a commit
                    # makes the restart resume from the last checkpoint instead.
                    self._failed = True
                    logger.exception("%s failed; stopping the worker uncommitted", self.agent.name)
                    await self.app.crash(exc)
                    raise
            yield None

    async def _produce(self, emits: Iterable[Emit]) -> None:
        if self.output is None:
            return
        sent = [await self.output.send(key=e.key, value=e.value) for e in emits]
        # Waiting for every acknowledgement keeps the topic ahead of the lake: a bar is on
        # the topic before the commit that makes its trades "done".
        if sent:
            await asyncio.gather(*sent)

    async def _commit(self) -> CommitResult | None:
        if self._failed:
            return None
        # Iceberg I/O is blocking; a thread keeps the consumer's heartbeats going meanwhile.
        result = await asyncio.to_thread(self.agent.commit)
        stream = self._stream
        if stream is not None:
            for event in self._unacked:
                await stream.ack(event)
        self._unacked.clear()
        if result is not None:
            self.commits += 1
            logger.info(
                "%s: committed %d rows from %d records (snapshot %s)",
                self.agent.name,
                result.rows,
                result.records,
                result.snapshot_id,
            )
        return result

    async def _on_timer(self) -> None:
        async with self._lock:
            if self.agent.due():
                await self._commit()

    async def _on_revoked(
        self, sender: Any, *args: Any, signal: BaseSignalT[Any], **kwargs: Any
    ) -> None:
        # Faust sends (app, revoked partitions); the signal's protocol types them loosely.
        revoked: set[TP] = args[0] if args else kwargs["revoked"]
        partitions = [tp.partition for tp in revoked if tp.topic == self.agent.topic]
        if not partitions:
            return
        async with self._lock:
            await self._commit()
            self.agent.release(partitions)

    async def _on_shutdown(
        self, sender: Any, *args: Any, signal: BaseSignalT[Any], **kwargs: Any
    ) -> None:
        async with self._lock:
            await self._commit()
