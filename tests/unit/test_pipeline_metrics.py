"""The pipeline gauges of the stream server's metrics endpoint, from one reading."""

from __future__ import annotations

from financelake.services.stream.lake_status import LakeStatus
from financelake.services.stream.metrics import pipeline_metrics
from financelake.services.stream.pipeline import (
    NEVER_COMMITTED,
    AgentThroughput,
    PartitionOffsets,
    TableCommit,
)


def test_lag_freshness_commit_time_and_throughput_become_labelled_gauges() -> None:
    partitions = [
        PartitionOffsets("ticks", 0, end_offset=120, committed_offset=100),
        PartitionOffsets("ticks", 1, end_offset=7, committed_offset=NEVER_COMMITTED),
    ]
    lake = LakeStatus(
        tables=[
            TableCommit("bronze.ticks", 11, 1_700_000_000_000, 5, 2_500),
            TableCommit("gold.alerts", 0, None, 0, None),  # never committed: no samples
        ],
        agents=[AgentThroughput("bronze", 12.5, 900)],
    )

    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in pipeline_metrics(partitions, lake, "financelake-stream")
        for sample in family.samples
    }

    group = ("consumer_group", "financelake-stream")
    assert samples == {
        ("financelake_kafka_consumer_lag", (group, ("partition", "0"), ("topic", "ticks"))): 20,
        ("financelake_kafka_consumer_lag", (group, ("partition", "1"), ("topic", "ticks"))): 7,
        ("financelake_kafka_end_offset", (("partition", "0"), ("topic", "ticks"))): 120,
        ("financelake_kafka_end_offset", (("partition", "1"), ("topic", "ticks"))): 7,
        ("financelake_table_freshness_seconds", (("table", "bronze.ticks"),)): 2.5,
        ("financelake_table_last_commit_timestamp_seconds", (("table", "bronze.ticks"),)): 1.7e9,
        ("financelake_agent_committed_rows_per_second", (("agent", "bronze"),)): 12.5,
    }
