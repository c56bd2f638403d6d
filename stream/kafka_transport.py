"""The stream app's Faust transport: Faust's aiokafka one, with a short broker-side fetch wait
and assigned partitions read from where the lake ends.

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
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Mapping
from typing import Any

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, TransportT

logger = logging.getLogger(__name__)

StartOffsets = Callable[[Collection[TP]], Mapping[TP, int]]

# Long enough that an idle worker asks the broker a handful of times a second, short enough
# that a fetch of quiet partitions delays the busy ones by no more than this.
FETCH_MAX_WAIT_MS = 100


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


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class StreamApp(faust.App):
    """A Faust app whose consumer fetches with `FETCH_MAX_WAIT_MS` and, once `start_offsets`
    is set, starts assigned partitions where it says."""

    start_offsets: StartOffsets | None = None

    def _new_transport(self) -> TransportT:
        return _Transport(self.conf.broker_consumer, self)
