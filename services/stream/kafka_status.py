"""Kafka's side of GetPipelineStatus: end offsets and a consumer group's committed offsets.

librdkafka's admin calls block, so each read runs in a worker thread, bounded by one time
budget; a broker that does not answer within it is `Unavailable`, never a hang. One admin
client serves the whole process (created on the first read): its connections are reused,
and nothing connects to Kafka until somebody asks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition

# OffsetSpec is documented here; the package re-exports it without listing it, hence the ignore.
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from financelake.services.errors import Unavailable
from financelake.services.kafka_security import librdkafka_options
from financelake.services.settings import KafkaClientSettings
from financelake.services.stream.pipeline import NEVER_COMMITTED, PartitionOffsets

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 5.0
# The high watermark; the library leaves this factory unannotated.
_END = OffsetSpec.latest()  # type: ignore[no-untyped-call]


class KafkaOffsets:
    """Reads, per partition of some topics, the end offset and a group's committed offset;
    `kafka` is how its admin client reaches the brokers (PLAINTEXT or TLS)."""

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        kafka: KafkaClientSettings,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self._bootstrap = bootstrap_servers
        self._kafka = kafka
        self._timeout_s = timeout_s
        self._admin: AdminClient | None = None

    async def read(self, topics: Sequence[str], group: str) -> list[PartitionOffsets]:
        """Every partition of `topics` (those that exist), ordered as `topics` then by
        partition; raises Unavailable when Kafka does not answer within the time budget."""
        if self._admin is None:
            self._admin = AdminClient(
                {
                    "bootstrap.servers": self._bootstrap,
                    "client.id": "financelake-stream-status",
                    # librdkafka's own log lines (a broker refusing connections) go to logging.
                    "logger": logging.getLogger("financelake.stream.rdkafka"),  # type: ignore[dict-item]
                    **librdkafka_options(self._kafka),
                }
            )
        return await asyncio.to_thread(self._read, self._admin, topics, group)

    def _read(
        self, admin: AdminClient, topics: Sequence[str], group: str
    ) -> list[PartitionOffsets]:
        deadline = time.monotonic() + self._timeout_s

        def remaining() -> float:
            return max(deadline - time.monotonic(), 0.001)

        try:
            metadata = admin.list_topics(timeout=remaining())
            partitions = [
                TopicPartition(topic, partition)
                for topic in topics
                if topic in metadata.topics
                for partition in sorted(metadata.topics[topic].partitions)
            ]
            if not partitions:
                return []
            # Both requests are in flight together; each answer is awaited within the budget.
            ends = admin.list_offsets(dict.fromkeys(partitions, _END), request_timeout=remaining())
            (committed,) = admin.list_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(group, partitions)], request_timeout=remaining()
            ).values()
            end_offsets = {
                (tp.topic, tp.partition): future.result(remaining()).offset
                for tp, future in ends.items()
            }
            committed_offsets: dict[tuple[str, int], int] = {}
            for tp in committed.result(remaining()).topic_partitions:
                if tp.error is not None:
                    raise KafkaException(tp.error)
                # librdkafka says OFFSET_INVALID (-1001) for a partition never committed.
                offset = tp.offset if tp.offset >= 0 else NEVER_COMMITTED
                committed_offsets[tp.topic, tp.partition] = offset
        except (KafkaException, TimeoutError) as exc:
            raise Unavailable(
                f"Kafka at {self._bootstrap} did not report offsets within "
                f"{self._timeout_s:.1f}s: {str(exc) or 'timed out'}"
            ) from exc
        finally:
            admin.poll(0)  # hand librdkafka's queued log lines to logging
        return [
            PartitionOffsets(
                tp.topic,
                tp.partition,
                end_offsets[tp.topic, tp.partition],
                committed_offsets.get((tp.topic, tp.partition), NEVER_COMMITTED),
            )
            for tp in partitions
        ]
