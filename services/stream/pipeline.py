"""The pipeline's state as GetPipelineStatus reports it, computed from plain values.

The definitions behind the contract's fields:

* Partition lag: `end_offset` is the partition's high watermark (the offset Kafka will give
  the next record); `committed_offset` is the next offset the stream's consumer group
  (`settings.stream.app_id`, the Faust app) will read, as committed to Kafka, or -1 when the
  group never committed on the partition; `lag = end_offset - committed_offset`, counting
  from offset 0 when the group never committed. Kafka's committed offset may trail the lake
  (the lake's own offsets are the exactly-once truth), so lag is an upper bound.
* Table commit: the table's current snapshot, its commit time and the rows it added
  (summary `added-records`); `freshness` is now minus the commit time of the newest snapshot
  of the table's lineage that added rows: how long the table has gone without new data.
* Agent throughput: the rows an agent committed to the lake, that is the `added-records` of
  the snapshots carrying its offsets key (`LakeWriter`'s `financelake.offsets.<group>`, the
  group being `<app_id>.<agent>`), over every lake table. `records_total` sums the snapshots
  the tables still retain; `records_per_second` is the rows of those committed in the last
  THROUGHPUT_WINDOW_MS divided by that window.

Nothing here does I/O: `kafka_status` and `lake_status` read the values these functions take.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from financelake.stream.lake.describe import SnapshotInfo

THROUGHPUT_WINDOW_MS = 60_000
NEVER_COMMITTED = -1
ADDED_RECORDS = "added-records"


@dataclass(frozen=True)
class PartitionOffsets:
    """One partition as Kafka reports it for the stream's consumer group.

    Attributes:
        topic: The topic.
        partition: The partition.
        end_offset: The high watermark: the offset of the next record written.
        committed_offset: The group's committed next offset; NEVER_COMMITTED when none.
    """

    topic: str
    partition: int
    end_offset: int
    committed_offset: int

    @property
    def lag(self) -> int:
        """Records written and not yet committed by the group."""
        start = max(self.committed_offset, 0)
        # A committed offset beyond the end (a topic deleted and recreated) is no backlog.
        return max(self.end_offset - start, 0)


@dataclass(frozen=True)
class TableCommit:
    """The latest commit of one table.

    Attributes:
        table: `namespace.name`.
        snapshot_id: The current snapshot; 0 when the table has none.
        commit_time_ms: When it was committed (Unix ms); None without a snapshot.
        added_rows: Rows the current snapshot added.
        freshness_ms: Now minus the commit time of the newest snapshot that added rows;
            None when no snapshot added any.
    """

    table: str
    snapshot_id: int
    commit_time_ms: int | None
    added_rows: int
    freshness_ms: int | None


@dataclass(frozen=True)
class AgentThroughput:
    """Rows one agent committed to the lake.

    Attributes:
        agent: The agent's name.
        records_per_second: Rows committed in the last THROUGHPUT_WINDOW_MS, per second.
        records_total: Rows committed over the snapshots the lake retains.
    """

    agent: str
    records_per_second: float
    records_total: int


def added_rows(summary: Mapping[str, str]) -> int:
    """The rows a snapshot added, from its summary (0 when it says nothing)."""
    return int(summary.get(ADDED_RECORDS, "0"))


def table_commit(table: str, lineage: Sequence[SnapshotInfo], now_ms: int) -> TableCommit:
    """The latest commit of `table`, from its lineage (newest first, see `describe.lineage`)."""
    if not lineage:
        return TableCommit(table, 0, None, 0, None)
    current = lineage[0]
    # Appends only: a compaction rewrites old rows and says nothing about fresh data.
    newest_data = next(
        (s for s in lineage if s.operation == "append" and added_rows(s.summary) > 0), None
    )
    freshness_ms = None if newest_data is None else max(now_ms - newest_data.commit_time_ms, 0)
    return TableCommit(
        table,
        current.snapshot_id,
        current.commit_time_ms,
        added_rows(current.summary),
        freshness_ms,
    )


def agent_throughput(
    agent: str,
    offsets_key: str,
    commits: Iterable[tuple[int, Mapping[str, str]]],
    now_ms: int,
    window_ms: int = THROUGHPUT_WINDOW_MS,
) -> AgentThroughput:
    """Throughput of `agent` from `(commit time ms, summary)` of the lake's snapshots; the
    agent's are those whose summary holds `offsets_key`."""
    total = recent = 0
    since = now_ms - window_ms
    for commit_time_ms, summary in commits:
        if offsets_key not in summary:
            continue
        rows = added_rows(summary)
        total += rows
        # No upper bound: a writer whose clock runs ahead still counts as recent.
        if commit_time_ms > since:
            recent += rows
    return AgentThroughput(agent, recent * 1000 / window_ms, total)
