"""Stream domain values <-> protobuf, at the edge: the pipeline status out, alert filters in."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from financelake.gen.common.v1 import alert_pb2
from financelake.gen.stream.v1 import pipeline_pb2
from financelake.gen.stream.v1 import stream_service_pb2 as pb
from financelake.services.stream.lake_status import LakeStatus
from financelake.services.stream.pipeline import AgentThroughput, PartitionOffsets, TableCommit


def _partition(offsets: PartitionOffsets, group: str) -> pipeline_pb2.PartitionLag:
    return pipeline_pb2.PartitionLag(
        topic=offsets.topic,
        partition=offsets.partition,
        consumer_group=group,
        committed_offset=offsets.committed_offset,
        end_offset=offsets.end_offset,
        lag=offsets.lag,
    )


def _agent(throughput: AgentThroughput) -> pipeline_pb2.AgentThroughput:
    return pipeline_pb2.AgentThroughput(
        agent=throughput.agent,
        records_per_second=throughput.records_per_second,
        records_total=throughput.records_total,
    )


def _table(commit: TableCommit) -> pipeline_pb2.TableCommit:
    message = pipeline_pb2.TableCommit(
        table=commit.table, snapshot_id=commit.snapshot_id, added_rows=commit.added_rows
    )
    # Unset rather than the epoch when there is nothing to report.
    if commit.commit_time_ms is not None:
        commit_time = Timestamp()
        commit_time.FromMilliseconds(commit.commit_time_ms)
        message.commit_time.CopyFrom(commit_time)
    if commit.freshness_ms is not None:
        freshness = Duration()
        freshness.FromMilliseconds(commit.freshness_ms)
        message.freshness.CopyFrom(freshness)
    return message


def pipeline_status(
    partitions: Sequence[PartitionOffsets], lake: LakeStatus, group: str
) -> pb.GetPipelineStatusResponse:
    """The response of GetPipelineStatus; `group` is the consumer group of `partitions`."""
    return pb.GetPipelineStatusResponse(
        partitions=[_partition(p, group) for p in partitions],
        agents=[_agent(a) for a in lake.agents],
        tables=[_table(t) for t in lake.tables],
    )


def alert_filter(request: pb.WatchAlertsRequest) -> Callable[[alert_pb2.Alert], bool]:
    """Whether an alert passes the request's symbol and kind filters (empty: all pass)."""
    symbols = frozenset(request.symbols)
    kinds = frozenset(request.kinds)

    def accept(alert: alert_pb2.Alert) -> bool:
        return (not symbols or alert.symbol in symbols) and (not kinds or alert.kind in kinds)

    return accept
