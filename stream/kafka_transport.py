"""The stream app's Faust transport: Faust's aiokafka one, with a short broker-side fetch wait.

Faust builds its aiokafka consumer with `fetch_max_wait_ms=1500` and no setting to change it.
One consumer reads every topic of the app, and aiokafka keeps one fetch in flight per broker,
leaving out the partitions whose fetched records are not consumed yet. So while the busy ticks
partitions still hold fetched records, the next fetch asks only for quiet partitions (the bars
topic); the broker holds that fetch for the whole wait, and the ticks can be fetched again
only after it: in a backlog, bench-stream saw the ticks agent idle 1.2-1.5 s at a time.
"""

from __future__ import annotations

from typing import Any

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TransportT

# Long enough that an idle worker asks the broker a handful of times a second, short enough
# that a fetch of quiet partitions delays the busy ones by no more than this.
FETCH_MAX_WAIT_MS = 100


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # The consumer hands this to its fetcher when it starts; no public way to set it.
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class StreamApp(faust.App):
    """A Faust app whose consumer fetches with `FETCH_MAX_WAIT_MS`."""

    def _new_transport(self) -> TransportT:
        return _Transport(self.conf.broker_consumer, self)
