"""Exactly-once batch appends from Kafka into Iceberg, with the offsets in the snapshot summary.

`LakeWriter` is the plain class the stream's agents feed (STYLE.md rule 12): the caller
accumulates rows by size or time, and each `append` is ONE Iceberg commit (DESIGN.md
"Hot paths": no file per record).

The exactly-once contract (DESIGN.md "Reliability"):

* Offsets are "next offset to consume", per (topic, partition): for the rows of a call the
  caller passes, for every partition they came from, the highest Kafka offset among them + 1.
* Each commit stores, under the summary key `financelake.offsets.<consumer group>`, the
  group's FULL position: the previous committed map merged with the call's offsets (max per
  partition), so the newest snapshot carrying the key is the whole truth and partitions that
  were quiet in a batch keep their position.
* `committed_offsets` reads that map back from the newest ancestor of the current snapshot
  carrying the key (commits of other groups do not; compactions copy it forward, see
  `maintenance`).
  An agent skips the records below these offsets when it (re)starts (`stream.agents.core`);
  Kafka's own group offsets only say where to start reading, since they lag the lake.
* `append` compares the call's offsets with the committed ones:
  - every partition covered (offset <= committed): a replay, nothing is written, returns None;
  - otherwise, when the rows carry `kafka_partition` / `kafka_offset` columns and the call
    comes from one topic (bronze.ticks), each row is kept iff its offset is at or past its
    partition's committed next offset: exact even for a replay that straddles a commit
    inside one partition;
  - otherwise, with no partition covered, all rows are written; with some covered and some
    not, the writer cannot tell old rows from new and raises `OffsetOverlapError` rather than
    guess. A batch that straddles the committed offset inside one partition is undetectable
    without the row columns: the caller must not build one, which skipping the records below
    `committed_offsets` guarantees.
* Rows come as one Arrow table, which pyiceberg splits by the table's partition spec, or
  already split (`PartitionedRows`), which are written straight to one data file per
  partition (more when a partition outgrows the target file size). pyiceberg's split costs
  a filter pass over every row per partition; a caller that knows where its rows fall
  (bronze: one symbol per Kafka record) spares it. Rows split for a spec the table no
  longer has are handed to pyiceberg whole.
* A concurrent writer (a zombie worker after a rebalance) cannot double-write: the commit
  asserts the branch head it read the offsets from, so a commit racing another fails instead
  of landing; the writer then re-reads the offsets and decides again (usually: now a replay),
  up to `max_attempts` times before letting pyiceberg's `CommitFailedException` out. This
  needs the table property `commit.retry.num-retries=0` (set by `ensure_tables`), because
  pyiceberg's own retry would re-apply the stale append on top of the winner; `append`
  refuses a table without it.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.io.pyarrow import bin_pack_arrow_table, pyarrow_to_schema, write_file
from pyiceberg.partitioning import PartitionFieldValue, PartitionKey, PartitionSpec
from pyiceberg.table import Table, TableProperties, WriteTask
from pyiceberg.table.snapshots import ancestors_of
from pyiceberg.utils.properties import property_as_bool, property_as_int

from financelake.stream.lake.tables import NO_LIBRARY_COMMIT_RETRY

logger = logging.getLogger(__name__)

Offsets = dict[tuple[str, int], int]
"""Next offset to consume, by (topic, partition)."""

OFFSETS_KEY_PREFIX = "financelake.offsets."
PARTITION_COLUMN = "kafka_partition"
OFFSET_COLUMN = "kafka_offset"


@dataclass(frozen=True)
class PartitionedRows:
    """Rows already split by the partitions of `spec`: per part, the partition's values (one
    per spec field, in its order, as the field's transform gives them) and its rows. Parts
    with the same values may repeat; they are written together."""

    spec: PartitionSpec
    parts: Sequence[tuple[tuple[Any, ...], pa.Table]]

    @property
    def num_rows(self) -> int:
        """Rows in every part."""
        return sum(rows.num_rows for _, rows in self.parts)

    @property
    def column_names(self) -> list[str]:
        """The parts' columns (none without parts)."""
        return self.parts[0][1].column_names if self.parts else []

    def whole(self) -> pa.Table:
        """Every part in one table (pyiceberg then splits it again)."""
        return pa.concat_tables(rows for _, rows in self.parts)

    @staticmethod
    def merge(pieces: Sequence[PartitionedRows], schema: pa.Schema) -> PartitionedRows:
        """One part per partition out of pieces split by the same spec, cast to `schema`."""
        grouped: dict[tuple[Any, ...], list[pa.Table]] = {}
        for piece in pieces:
            if piece.spec.fields != pieces[0].spec.fields:
                raise ValueError("pieces split by different partition specs")
            for values, rows in piece.parts:
                grouped.setdefault(values, []).append(rows)
        return PartitionedRows(
            pieces[0].spec,
            [(v, pa.concat_tables(tables).cast(schema)) for v, tables in grouped.items()],
        )


Rows: TypeAlias = pa.Table | PartitionedRows


class OffsetOverlapError(Exception):
    """A batch mixes rows already in the lake with new ones, and the writer cannot split it."""


def offsets_key(consumer_group: str) -> str:
    """The snapshot-summary key holding a consumer group's offsets."""
    return f"{OFFSETS_KEY_PREFIX}{consumer_group}"


def _encode(offsets: Mapping[tuple[str, int], int]) -> str:
    # JSON object keys must be strings: {"topic": {"partition": next_offset}}, sorted so the
    # summary is stable for the same position.
    nested: dict[str, dict[str, int]] = {}
    for (topic, partition), offset in sorted(offsets.items()):
        nested.setdefault(topic, {})[str(partition)] = offset
    return json.dumps(nested, separators=(",", ":"))


def _decode(text: str) -> Offsets:
    nested: dict[str, dict[str, int]] = json.loads(text)
    return {
        (topic, int(partition)): int(offset)
        for topic, partitions in nested.items()
        for partition, offset in partitions.items()
    }


def newest_summary_value(table: Table, key: str) -> str | None:
    """The value of a snapshot-summary key in the newest ancestor of the current snapshot
    carrying it, or None.

    Walks back the ancestry of the current snapshot (not the snapshot log) so that a
    rolled-back commit's values are not believed.
    """
    metadata = table.metadata
    for snapshot in ancestors_of(metadata.current_snapshot(), metadata):
        if snapshot.summary is None:
            continue
        value = snapshot.summary[key]
        if value is not None:
            return str(value)
    return None


class LakeWriter:
    """Appends batches to Iceberg tables, one commit per call, recording Kafka offsets.

    Stateless between calls: the committed offsets live in the table, so a new writer after a
    restart behaves exactly like the old one.
    """

    def __init__(self, max_attempts: int = 5) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._max_attempts = max_attempts

    def committed_offsets(self, table: Table, consumer_group: str) -> Offsets:
        """The group's offsets as of the table's current snapshot; empty if it never wrote."""
        text = newest_summary_value(table, offsets_key(consumer_group))
        return {} if text is None else _decode(text)

    def append(
        self,
        table: Table,
        rows: Rows,
        offsets: Mapping[tuple[str, int], int],
        consumer_group: str,
        summary: Mapping[str, str] | None = None,
    ) -> int | None:
        """Append `rows` in one commit unless the lake already holds them.

        `offsets` are, per (topic, partition) the rows came from, the highest Kafka offset
        among them + 1 (see the module docstring for the full contract). `summary` adds
        snapshot-summary entries committed atomically with the rows (an agent's checkpoint).
        Returns the number of rows written (possibly 0 when only the offsets advanced), or
        None when the whole batch was already committed and nothing was written.
        """
        if not offsets:
            raise ValueError("offsets must name at least one (topic, partition)")
        unsafe = {k: table.properties.get(k) for k, v in NO_LIBRARY_COMMIT_RETRY.items()}
        if unsafe != NO_LIBRARY_COMMIT_RETRY:
            raise ValueError(
                f"table {table.name()} has {unsafe}, not {NO_LIBRARY_COMMIT_RETRY}: pyiceberg's "
                "commit retry could write a batch twice; create it with ensure_tables"
            )
        for attempt in range(1, self._max_attempts + 1):
            try:
                return self._append_once(table, rows, offsets, consumer_group, summary or {})
            except CommitFailedException:
                if attempt == self._max_attempts:
                    raise
                logger.warning(
                    "commit to %s lost a race (attempt %d of %d); re-reading offsets",
                    table.name(),
                    attempt,
                    self._max_attempts,
                )
        raise AssertionError("unreachable: the loop returns or raises")

    def _append_once(
        self,
        table: Table,
        rows: Rows,
        offsets: Mapping[tuple[str, int], int],
        consumer_group: str,
        summary: Mapping[str, str],
    ) -> int | None:
        # Another writer may have committed since this Table object was loaded; deciding on
        # stale offsets would write a replay twice.
        table.refresh()
        committed = self.committed_offsets(table, consumer_group)
        covered = {tp for tp, offset in offsets.items() if offset <= committed.get(tp, -1)}
        if len(covered) == len(offsets):
            logger.info(
                "skipping a replayed batch of %d rows into %s: offsets %s already committed",
                rows.num_rows,
                table.name(),
                dict(offsets),
            )
            return None
        topics = {topic for topic, _ in offsets}
        if self._has_offset_columns(rows) and len(topics) == 1:
            # Row positions make the overlap exact, including a batch that straddles the
            # committed offset within one partition.
            (topic,) = topics
            if isinstance(rows, PartitionedRows):
                kept = [
                    (values, self._drop_committed_rows(table, part, topic, committed))
                    for values, part in rows.parts
                ]
                rows = PartitionedRows(rows.spec, [(v, part) for v, part in kept if part.num_rows])
            else:
                rows = self._drop_committed_rows(table, rows, topic, committed)
        elif covered:
            raise OffsetOverlapError(
                f"batch for {table.name()} overlaps committed offsets {committed} with "
                f"{dict(offsets)} and its rows carry no single-topic Kafka position: skip the "
                "records below LakeWriter.committed_offsets and rebuild the batch"
            )

        merged = dict(committed)
        for tp, offset in offsets.items():
            merged[tp] = max(offset, merged.get(tp, 0))
        properties = {**summary, offsets_key(consumer_group): _encode(merged)}
        written: int = rows.num_rows
        if isinstance(rows, PartitionedRows):
            if rows.parts and rows.spec.fields == table.spec().fields:
                _append_parts(table, rows, properties)
                return written
            rows = rows.whole() if rows.parts else table.schema().as_arrow().empty_table()
        table.append(rows, snapshot_properties=properties)
        return written

    @staticmethod
    def _has_offset_columns(rows: Rows) -> bool:
        names = set(rows.column_names)
        return PARTITION_COLUMN in names and OFFSET_COLUMN in names

    @staticmethod
    def _drop_committed_rows(
        table: Table,
        rows: pa.Table,
        topic: str,
        committed: Mapping[tuple[str, int], int],
    ) -> pa.Table:
        # Drop a row iff its partition has a committed next offset beyond the row's offset;
        # rows of partitions never committed are all new. Usually no row is stale: one pass
        # for each partition's lowest offset proves it, and the rows are not copied.
        lowest = rows.group_by(PARTITION_COLUMN).aggregate([(OFFSET_COLUMN, "min")])
        starts = {p: start for (t, p), start in committed.items() if t == topic}
        stale_partitions = [
            partition
            for partition, low in zip(
                lowest[PARTITION_COLUMN].to_pylist(),
                lowest[f"{OFFSET_COLUMN}_min"].to_pylist(),
                strict=True,
            )
            if partition in starts and low < starts[partition]
        ]
        if not stale_partitions:
            return rows
        stale = pa.repeat(False, rows.num_rows)
        for partition in stale_partitions:
            already = pc.and_(
                pc.equal(rows[PARTITION_COLUMN], partition),
                pc.less(rows[OFFSET_COLUMN], starts[partition]),
            )
            stale = pc.or_(stale, already)
        kept = rows.filter(pc.invert(stale))
        logger.info(
            "dropping %d of %d rows of %s already committed to %s",
            rows.num_rows - kept.num_rows,
            rows.num_rows,
            topic,
            table.name(),
        )
        return kept


def _append_parts(table: Table, rows: PartitionedRows, properties: dict[str, str]) -> None:
    """One snapshot adding each partition's rows as its own data files (split further only by
    the target file size), as `Table.append` would write them once it had split the rows."""
    metadata = table.metadata
    schema = metadata.schema()
    spec = table.spec()
    file_schema = pyarrow_to_schema(
        rows.parts[0][1].schema,
        name_mapping=schema.name_mapping,
        format_version=metadata.format_version,
    )
    target_size = property_as_int(
        metadata.properties,
        TableProperties.WRITE_TARGET_FILE_SIZE_BYTES,
        TableProperties.WRITE_TARGET_FILE_SIZE_BYTES_DEFAULT,
    )
    merge = property_as_bool(
        metadata.properties,
        TableProperties.MANIFEST_MERGE_ENABLED,
        TableProperties.MANIFEST_MERGE_ENABLED_DEFAULT,
    )
    assert target_size is not None  # it has a default
    with table.transaction() as transaction:
        update = transaction.update_snapshot(snapshot_properties=properties)
        with update.merge_append() if merge else update.fast_append() as append:
            task_ids = itertools.count()
            tasks = (
                WriteTask(
                    write_uuid=append.commit_uuid,
                    task_id=next(task_ids),
                    schema=file_schema,
                    record_batches=batches,
                    partition_key=PartitionKey(
                        field_values=[
                            PartitionFieldValue(field, value)
                            for field, value in zip(spec.fields, values, strict=True)
                        ],
                        partition_spec=spec,
                        schema=schema,
                    ),
                )
                for values, part in rows.parts
                for batches in bin_pack_arrow_table(part, target_size)
            )
            for data_file in write_file(table.io, metadata, tasks):
                append.append_data_file(data_file)
