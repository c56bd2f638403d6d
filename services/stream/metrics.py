"""The pipeline's state as Prometheus gauges, read when Prometheus scrapes: Kafka consumer
lag per partition, each table's freshness and last commit, each agent's throughput.

The same reads as GetPipelineStatus (`StreamServicer.pipeline_state`), run on the server's
event loop from the metrics endpoint's thread, so a scrape costs what one GetPipelineStatus
costs and nothing runs between scrapes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector

from financelake.services.stream.lake_status import LakeStatus
from financelake.services.stream.pipeline import PartitionOffsets

logger = logging.getLogger(__name__)

PipelineRead = Callable[[], Coroutine[Any, Any, tuple[list[PartitionOffsets], LakeStatus]]]
_SCRAPE_TIMEOUT_S = 10.0


def pipeline_metrics(
    partitions: list[PartitionOffsets], lake: LakeStatus, group: str
) -> list[GaugeMetricFamily]:
    """The gauges of one reading of the pipeline."""
    lag = GaugeMetricFamily(
        "financelake_kafka_consumer_lag",
        "Records on a partition the stream's consumer group has not committed yet.",
        labels=("topic", "partition", "consumer_group"),
    )
    end = GaugeMetricFamily(
        "financelake_kafka_end_offset",
        "A partition's high watermark (offset of the next record).",
        labels=("topic", "partition"),
    )
    for partition in partitions:
        lag.add_metric((partition.topic, str(partition.partition), group), partition.lag)
        end.add_metric((partition.topic, str(partition.partition)), partition.end_offset)
    freshness = GaugeMetricFamily(
        "financelake_table_freshness_seconds",
        "Time since the table last received rows (its newest appending snapshot).",
        labels=("table",),
    )
    committed = GaugeMetricFamily(
        "financelake_table_last_commit_timestamp_seconds",
        "When the table's current snapshot was committed (Unix time).",
        labels=("table",),
    )
    for table in lake.tables:
        if table.freshness_ms is not None:
            freshness.add_metric((table.table,), table.freshness_ms / 1000)
        if table.commit_time_ms is not None:
            committed.add_metric((table.table,), table.commit_time_ms / 1000)
    throughput = GaugeMetricFamily(
        "financelake_agent_committed_rows_per_second",
        "Rows an agent committed to the lake per second over the last minute.",
        labels=("agent",),
    )
    for agent in lake.agents:
        throughput.add_metric((agent.agent,), agent.records_per_second)
    return [lag, end, freshness, committed, throughput]


class PipelineCollector(Collector):
    """Yields the pipeline gauges of the stream server attached last (one per process)."""

    def __init__(self) -> None:
        self._source: tuple[asyncio.AbstractEventLoop, PipelineRead, str] | None = None

    def attach(self, read: PipelineRead, group: str) -> None:
        """Read the pipeline with `read` on the running event loop from now on."""
        self._source = (asyncio.get_running_loop(), read, group)

    def collect(self) -> Iterator[Metric]:
        """One reading, or nothing when no server is attached or the reading fails (the
        scrape then shows the gauges missing, which alert rules treat as absent data)."""
        if self._source is None:
            return
        loop, read, group = self._source
        try:
            future = asyncio.run_coroutine_threadsafe(read(), loop)
            partitions, lake = future.result(timeout=_SCRAPE_TIMEOUT_S)
        except Exception as exc:  # a scrape must not fail over one unavailable source
            logger.warning("pipeline metrics unavailable: %s", exc)
            return
        yield from pipeline_metrics(partitions, lake, group)


PIPELINE = PipelineCollector()
REGISTRY.register(PIPELINE)
