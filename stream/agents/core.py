"""What every lake-writing agent shares, with no Faust in it: replay filtering, batching of
commits, and per-partition checkpoints committed atomically with the rows.

An agent reads one topic and writes one Iceberg table. It is fed `Record`s (Kafka partition,
offset, decoded value) in offset order per partition, turns them into rows (and, for some
agents, messages to produce), and commits the rows it accumulated by size or time.

Exactly once, for stateless and stateful agents alike:

* Each commit goes through `LakeWriter.append` with the next offset of every partition the
  pending records came from, and, for a stateful agent, the state of each of those
  partitions as it stands after the last pending record. The state is a JSON file next to the
  table's metadata; the snapshot summary names it under `financelake.state.<group>.p<N>`.
  Rows, offsets and state therefore become visible in one atomic Iceberg commit.
* On the first record of a partition (after start or reassignment), the agent reads that
  partition's committed next offset and state from the table. Records below the offset are
  replays and are skipped; the state resumes exactly where the rows end. Reading an assigned
  partition starts where the agent furthest behind on it ends (`start_offsets`), never at a
  consumer-group offset that could lie past the lake.
* State is per partition because records are keyed by symbol: a partition's symbols, and so
  its bars and indicators, never depend on another partition, and a partition can move to
  another worker with its checkpoint.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import pyarrow as pa
from pyiceberg.table import Table

from financelake.stream.lake.writer import LakeWriter, PartitionedRows, Rows, newest_summary_value

logger = logging.getLogger(__name__)

State = dict[str, Any]
STATE_KEY_PREFIX = "financelake.state."


@dataclass(frozen=True, slots=True)
class Record:
    """One Kafka record as an agent sees it."""

    partition: int
    offset: int
    value: Any


@dataclass(frozen=True, slots=True)
class Malformed:
    """A record value the codec could not decode (see `codecs`)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Emit:
    """A message an agent produces to its output topic."""

    key: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class CommitPolicy:
    """When pending rows are committed: whichever limit is reached first."""

    interval_s: float = 3.0
    max_records: int = 2000
    # Records that produced no rows only move offsets and state; committing them alone is
    # not worth a snapshot every few seconds, only often enough to bound the replay.
    idle_interval_s: float = 60.0


@dataclass
class CatchUp:
    """Tells when a backlog has just been drained, so that its last rows are committed at once
    instead of waiting out the commit interval (after a restart or an outage, the lake is
    then current as soon as the worker is). Drained: the lag (records between what was read
    and the partitions' ends) is zero after having reached `backlog_records`; a live feed,
    never that far behind, adds no commits."""

    backlog_records: int
    behind: bool = False

    def drained(self, lag: int) -> bool:
        """Record the lag after a step; True when that step ended a catch-up."""
        if lag >= self.backlog_records:
            self.behind = True
            return False
        if lag == 0 and self.behind:
            self.behind = False
            return True
        return False


@dataclass(frozen=True)
class LakeSink:
    """Where an agent's input comes from and its rows go: the topic it reads, the table it
    writes, its offsets group and its commit policy."""

    table: Table
    topic: str
    group: str
    policy: CommitPolicy = field(default_factory=CommitPolicy)


@dataclass(frozen=True, slots=True)
class PreparedCommit:
    """Pending work taken out of an agent, ready to be written as one snapshot."""

    rows: list[Rows]
    offsets: dict[tuple[str, int], int]
    states: dict[int, bytes]
    """Serialised state per partition, as it stood when the commit was prepared."""
    records: int


@dataclass(frozen=True, slots=True)
class CommitResult:
    """What one commit wrote."""

    rows: int
    records: int
    snapshot_id: int | None
    bytes: int = 0
    """Bytes of the data files the snapshot added (its summary's `added-files-size`)."""
    files: int = 0
    """Data files the snapshot added (its summary's `added-data-files`)."""


def state_key(group: str, partition: int) -> str:
    """The snapshot-summary key naming a partition's checkpoint file."""
    return f"{STATE_KEY_PREFIX}{group}.p{partition}"


class LakeAgent(ABC):
    """An agent's domain side: records in, rows (and messages) out, exactly-once commits."""

    name: str = "agent"
    stateful: bool = False

    def __init__(self, sink: LakeSink) -> None:
        self.table = sink.table
        self.topic = sink.topic
        self.group = sink.group
        self.writer = LakeWriter()
        self.policy = sink.policy
        self._next_offset: dict[int, int] = {}
        self._known: set[int] = set()
        self._pending_rows: list[Rows] = []
        self._pending_row_count = 0
        self._pending_offsets: dict[int, int] = {}
        self._pending_records = 0
        self._pending_since: float | None = None
        self._last_commit = time.monotonic()

    # ---- what each agent defines ------------------------------------------------------

    @abstractmethod
    def handle(self, partition: int, records: Sequence[Record]) -> tuple[Rows | None, list[Emit]]:
        """Turn new records of one partition (offset order) into rows (split by the table's
        partitions or not) and messages."""

    def load_state(self, partition: int, state: State | None) -> None:  # noqa: B027
        """Adopt a partition's committed state (None: it has none yet); `StatefulAgent`."""

    def dump_state(self, partition: int) -> State | None:
        """The partition's current state for a checkpoint; `StatefulAgent`."""
        return None

    def forget(self, partition: int) -> None:  # noqa: B027
        """Drop in-memory state of a partition this worker no longer owns."""

    # ---- driving ----------------------------------------------------------------------

    def process(self, records: Iterable[Record]) -> list[Emit]:
        """Feed records (offset order per partition); returns the messages to produce."""
        by_partition: dict[int, list[Record]] = {}
        for record in records:
            by_partition.setdefault(record.partition, []).append(record)
        emits: list[Emit] = []
        for partition, batch in by_partition.items():
            if self._ensure_loaded(partition):
                self._report_undelivered(partition, batch[0].offset)
            start = max(
                self._next_offset.get(partition, 0), self._pending_offsets.get(partition, 0)
            )
            fresh = [r for r in batch if r.offset >= start]
            if not fresh:
                continue
            usable = [r for r in fresh if not isinstance(r.value, Malformed)]
            if len(usable) < len(fresh):
                self._skip_malformed(partition, fresh)
            rows, produced = self.handle(partition, usable) if usable else (None, [])
            emits.extend(produced)
            if rows is not None and rows.num_rows:
                self._pending_rows.append(rows)
                self._pending_row_count += rows.num_rows
            self._pending_offsets[partition] = fresh[-1].offset + 1
            self._pending_records += len(fresh)
            if self._pending_since is None:
                self._pending_since = time.monotonic()
        return emits

    def _skip_malformed(self, partition: int, records: Sequence[Record]) -> None:
        # Skipped, not retried: the same bytes would fail on every restart. Their offsets
        # still advance with the commit, and the log names each one for a replay by hand.
        for record in records:
            if isinstance(record.value, Malformed):
                logger.error(
                    "%s: skipping malformed record %s[%d]@%d: %s",
                    self.name,
                    self.topic,
                    partition,
                    record.offset,
                    record.value.reason,
                )

    def due(self, now: float | None = None) -> bool:
        """True when pending records should be committed now."""
        if not self._pending_records:
            return False
        now = time.monotonic() if now is None else now
        if self._pending_records >= self.policy.max_records:
            return True
        if self._pending_row_count:
            assert self._pending_since is not None
            return now - self._pending_since >= self.policy.interval_s
        return now - self._last_commit >= self.policy.idle_interval_s

    def prepare_commit(self) -> PreparedCommit | None:
        """Take what pends (rows, next offsets, each touched partition's state serialised now)
        and start a new pending set; None if nothing pends. `run_commit` writes it, possibly
        in another thread while this agent goes on processing."""
        if not self._pending_records:
            return None
        prepared = PreparedCommit(
            rows=list(self._pending_rows),
            offsets={(self.topic, p): o for p, o in self._pending_offsets.items()},
            states={
                partition: json.dumps(state, separators=(",", ":")).encode()
                for partition in self._pending_offsets
                if self.stateful and (state := self.dump_state(partition)) is not None
            },
            records=self._pending_records,
        )
        # Optimistic: a failed commit stops the worker, which resumes from the lake.
        self._next_offset.update(self._pending_offsets)
        self._pending_rows.clear()
        self._pending_row_count = 0
        self._pending_offsets.clear()
        self._pending_records = 0
        self._pending_since = None
        self._last_commit = time.monotonic()
        return prepared

    def run_commit(self, prepared: PreparedCommit) -> CommitResult:
        """Write one prepared commit: state files, then rows + offsets + state names in one
        snapshot. Commits must run one at a time, in the order they were prepared."""
        summary = {
            state_key(self.group, partition): self._write_state(partition, data)
            for partition, data in prepared.states.items()
        }
        rows = _commit_rows(prepared.rows, self.table.schema().as_arrow())
        written = self.writer.append(self.table, rows, prepared.offsets, self.group, summary)
        snapshot = None if written is None else self.table.current_snapshot()
        added = snapshot.summary if snapshot is not None and snapshot.summary else None
        return CommitResult(
            rows=written or 0,
            records=prepared.records,
            snapshot_id=None if snapshot is None else snapshot.snapshot_id,
            # pyiceberg's Summary.get answers None for a missing key, whatever the default.
            bytes=int(added.get("added-files-size") or 0) if added else 0,
            files=int(added.get("added-data-files") or 0) if added else 0,
        )

    def lake_offsets(self) -> dict[int, int]:
        """The next offset of each partition of the agent's topic, as the lake holds it now."""
        table = self.table.catalog.load_table(self.table.name())
        committed = self.writer.committed_offsets(table, self.group)
        return {p: offset for (topic, p), offset in committed.items() if topic == self.topic}

    def release(self, partitions: Iterable[int]) -> None:
        """Forget partitions taken away by a rebalance (commit first: pending rows of them
        would otherwise be written by two owners)."""
        for partition in partitions:
            self._known.discard(partition)
            self._next_offset.pop(partition, None)
            self.forget(partition)

    # ---- internals --------------------------------------------------------------------

    def _report_undelivered(self, partition: int, first: int) -> None:
        # Offsets of these topics are contiguous (no transactions, no compaction): a first
        # record past the lake's next offset means records the lake lacks were never
        # delivered. Kafka retention can do that to a worker down too long, and so can a
        # group offset committed past the lake; either way it is loss, said loudly.
        expected = self._next_offset[partition]
        if first > expected:
            logger.error(
                "%s: partition %d resumes at offset %d but the first record delivered is %d: "
                "records %d..%d never reached the lake (expired by retention, or the consumer "
                "group's offset was committed past them)",
                self.name,
                partition,
                expected,
                first,
                expected,
                first - 1,
            )

    def _ensure_loaded(self, partition: int) -> bool:
        """Read the partition's checkpoint once; True when it was read just now."""
        if partition in self._known:
            return False
        # A fresh Table object: a commit thread may be using `self.table` right now.
        table = self.table.catalog.load_table(self.table.name())
        committed = self.writer.committed_offsets(table, self.group)
        self._next_offset[partition] = committed.get((self.topic, partition), 0)
        if self.stateful:
            self.load_state(partition, self._read_state(table, partition))
        self._known.add(partition)
        logger.info(
            "%s: partition %d resumes at offset %d",
            self.name,
            partition,
            self._next_offset[partition],
        )
        return True

    def _write_state(self, partition: int, data: bytes) -> str:
        location = self.table.metadata.location.rstrip("/")
        name = f"p{partition}-{uuid.uuid4().hex}.json"
        path = f"{location}/metadata/financelake-state/{self.group}/{name}"
        with self.table.io.new_output(path).create(overwrite=True) as out:
            out.write(data)
        return path

    def _read_state(self, table: Table, partition: int) -> State | None:
        path = newest_summary_value(table, state_key(self.group, partition))
        if path is None:
            return None
        with table.io.new_input(path).open() as stream:
            state: State = json.loads(stream.read())
        return state


def _commit_rows(pieces: Sequence[Rows], schema: pa.Schema) -> Rows:
    """The rows of one commit, in the table's schema; still split when every piece was."""
    split = [p for p in pieces if isinstance(p, PartitionedRows)]
    if pieces and len(split) == len(pieces):
        return PartitionedRows.merge(split, schema)
    if not pieces:
        return schema.empty_table()
    tables = [p.whole() if isinstance(p, PartitionedRows) else p for p in pieces]
    return pa.concat_tables(tables).cast(schema)


TopicPartitionT = TypeVar("TopicPartitionT", bound=tuple[str, int])


def start_offsets(
    agents: Iterable[LakeAgent], partitions: Iterable[TopicPartitionT]
) -> dict[TopicPartitionT, int]:
    """Where reading each (topic, partition) starts so that no agent misses a record: the
    lowest next offset the lake holds for it among the agents reading the topic (0 where one
    never committed). Partitions no agent reads are left out.

    The lake, not the consumer group's offset, decides: the group's offset is only as right as
    every acknowledgement Faust makes, and Faust acknowledges events it drops unprocessed
    (those fetched before a rebalance). Records below an agent's own offset are skipped by it.
    """
    offsets = [(agent.topic, agent.lake_offsets()) for agent in agents]
    starts: dict[TopicPartitionT, int] = {}
    for tp in partitions:
        topic, partition = tp
        readers = [committed.get(partition, 0) for t, committed in offsets if t == topic]
        if readers:
            starts[tp] = min(readers)
    return starts


class Checkpointable(Protocol):
    """A domain state an agent checkpoints: JSON-ready through `to_dict`."""

    def to_dict(self) -> State: ...


StateT = TypeVar("StateT", bound=Checkpointable)


class StatefulAgent(LakeAgent, Generic[StateT]):
    """A lake agent with one domain state per partition (its symbols' bars, indicators...),
    checkpointed with each commit and restored on the partition's first record."""

    stateful = True

    def __init__(self, sink: LakeSink) -> None:
        super().__init__(sink)
        self.states: dict[int, StateT] = {}

    @abstractmethod
    def new_state(self) -> StateT:
        """The state of a partition that never committed."""

    @abstractmethod
    def restore_state(self, data: State) -> StateT:
        """The state a checkpoint describes."""

    def load_state(self, partition: int, state: State | None) -> None:
        self.states[partition] = self.new_state() if state is None else self.restore_state(state)

    def dump_state(self, partition: int) -> State | None:
        return self.states[partition].to_dict()

    def forget(self, partition: int) -> None:
        self.states.pop(partition, None)
