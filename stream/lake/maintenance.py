"""Lake maintenance: compact small data files and expire old snapshots, keeping the stream's
exactly-once positions intact.

The stream resumes from snapshot-summary keys that start with `financelake.` (LakeWriter's
`financelake.offsets.<group>`, the agents' `financelake.state.<group>.p<N>`): for each key, the
newest ancestor of the current snapshot carrying it holds the truth. Maintenance keeps that so:

* `compact` copies the newest value of every such key along the current ancestry into the
  summary of its own commit, so the newest snapshot carries them all;
* `expire_snapshots` keeps the current snapshot and the whole chain from it back to the
  oldest snapshot holding the newest value of such a key, because expiring a snapshot cuts
  its child's parent link and the walk back would stop short of the key.

Both are safe to run while the stream writes. A maintenance commit asserts that `main` is
still the snapshot it planned from, so it fails rather than land over a commit it did not see
(this needs `commit.retry.num-retries=0`, which `ensure_tables` sets: pyiceberg's own retry
would replay the commit on top of the winner with the positions copied before the race); it
is then re-planned on the new state, up to `max_attempts` times.
"""

from __future__ import annotations

import itertools
import logging
import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from pyiceberg.exceptions import CommitFailedException
from pyiceberg.expressions import AlwaysTrue, BooleanExpression
from pyiceberg.io.pyarrow import ArrowScan, _dataframe_to_data_files
from pyiceberg.manifest import DataFile
from pyiceberg.table import ALWAYS_TRUE, FileScanTask, Table, TableProperties
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.refs import MAIN_BRANCH
from pyiceberg.table.snapshots import ancestors_of
from pyiceberg.table.update import AssertRefSnapshotId, AssertTableUUID, RemoveSnapshotsUpdate
from pyiceberg.transforms import TimeTransform
from pyiceberg.typedef import Record

from financelake.stream.lake.tables import NO_LIBRARY_COMMIT_RETRY

logger = logging.getLogger(__name__)

POSITIONAL_KEY_PREFIX = "financelake."
"""Snapshot-summary keys with this prefix are stream positions that must survive maintenance."""

DEFAULT_TARGET_FILE_BYTES = 128 * 1024 * 1024
DEFAULT_MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class CompactionResult:
    """What one `compact` call did to a table."""

    table: str
    """`namespace.name`."""
    snapshot_id: int | None
    """The compaction's snapshot; None when no partition needed compacting (no commit)."""
    partitions: int
    """Partitions rewritten."""
    files_before: int
    """Small data files replaced."""
    files_after: int
    """Data files written in their place."""
    rows: int
    """Rows moved (the same before and after)."""
    bytes_before: int
    bytes_after: int
    attempts: int
    """Commits tried: more than 1 when a concurrent commit won a race."""


@dataclass(frozen=True)
class ExpireResult:
    """What one `expire_snapshots` call removed from a table's metadata."""

    table: str
    expired: tuple[int, ...]
    """Ids of the snapshots removed, oldest first."""
    remaining: int
    """Snapshots left in the metadata."""


@dataclass(frozen=True)
class _Rewrite:
    """Data files written but not committed yet, and the ones they replace."""

    replaced: tuple[DataFile, ...]
    written: tuple[DataFile, ...]
    partitions: int


def positional_metadata(table: Table) -> dict[str, str]:
    """The newest value of every `financelake.*` summary key along the current ancestry."""
    return {key: value for key, (_, value) in _positional_keys(table.metadata).items()}


def compact(
    table: Table,
    *,
    target_file_bytes: int = DEFAULT_TARGET_FILE_BYTES,
    min_files: int = 2,
    where: str | BooleanExpression = ALWAYS_TRUE,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> CompactionResult:
    """Rewrite each partition's small data files as fewer files of about `target_file_bytes`.

    A partition is rewritten when it has at least `min_files` data files smaller than the
    target and rewriting them yields fewer files; only files that may hold rows matching
    `where` are considered (e.g. `event_time < '2026-01-05T00:00:00+00:00'` to leave today's
    partitions, still being appended to, for a later run). Rows are unchanged; within a
    partition they come out sorted by the columns of the spec's time transforms (event time
    for bronze.ticks), which keeps per-file min/max statistics tight for time-range scans.

    All partitions go into ONE commit: a run adds one snapshot, not one per partition, and
    copies the positional keys once. Partitions are read and written one at a time, so memory
    holds one partition. When the commit loses a race to a concurrent append, the written
    files stay valid as long as every file they replace is still live, so only the cheap
    commit is retried; the rewrite is redone only when a replaced file is gone (another
    compaction won), and the files it wrote are deleted.
    """
    if target_file_bytes < 1:
        raise ValueError("target_file_bytes must be positive")
    if min_files < 2:
        raise ValueError("min_files must be at least 2")
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    _require_no_library_retry(table)
    rewrite: _Rewrite | None = None
    for attempt in range(1, max_attempts + 1):
        table.refresh()
        if rewrite is not None and not _all_live(table, rewrite.replaced):
            logger.info("files compacted in %s were replaced concurrently; redoing", _name(table))
            _discard(table, rewrite.written)
            rewrite = None
        if rewrite is None:
            rewrite = _rewrite(table, target_file_bytes, min_files, where)
        if not rewrite.replaced:
            return CompactionResult(
                table=_name(table),
                snapshot_id=None,
                partitions=0,
                files_before=0,
                files_after=0,
                rows=0,
                bytes_before=0,
                bytes_after=0,
                attempts=attempt,
            )
        try:
            snapshot_id = _commit_rewrite(table, rewrite)
        except CommitFailedException:
            if attempt == max_attempts:
                _discard(table, rewrite.written)
                raise
            logger.warning(
                "compaction of %s lost a race (attempt %d of %d); retrying on the new state",
                _name(table),
                attempt,
                max_attempts,
            )
            continue
        result = CompactionResult(
            table=_name(table),
            snapshot_id=snapshot_id,
            partitions=rewrite.partitions,
            files_before=len(rewrite.replaced),
            files_after=len(rewrite.written),
            rows=sum(f.record_count for f in rewrite.replaced),
            bytes_before=sum(f.file_size_in_bytes for f in rewrite.replaced),
            bytes_after=sum(f.file_size_in_bytes for f in rewrite.written),
            attempts=attempt,
        )
        logger.info("compacted %s: %s", result.table, result)
        return result
    raise AssertionError("unreachable: the loop returns or raises")


def expire_snapshots(
    table: Table,
    *,
    older_than: datetime,
    retain_last: int = 1,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> ExpireResult:
    """Remove snapshots committed before `older_than` from the table metadata.

    Kept whatever their age: the newest `retain_last` snapshots of the current ancestry, the
    chain from the current snapshot back to the oldest one holding the newest value of a
    `financelake.*` key, and the heads of branches and tags. Data and manifest files no
    longer referenced are NOT deleted from storage: that is an orphan-file clean-up, which
    this module does not do.
    """
    if older_than.tzinfo is None:
        raise ValueError("older_than must be timezone-aware")
    if retain_last < 1:
        raise ValueError("retain_last must be at least 1")
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    cutoff_ms = int(older_than.timestamp() * 1000)
    for attempt in range(1, max_attempts + 1):
        table.refresh()
        metadata = table.metadata
        current = metadata.current_snapshot()
        if current is None:
            return ExpireResult(_name(table), (), 0)
        ancestry = [s.snapshot_id for s in ancestors_of(current, metadata)]
        deepest_carrier = max(
            (depth for depth, _ in _positional_keys(metadata).values()), default=0
        )
        kept = set(ancestry[: max(retain_last, deepest_carrier + 1)])
        kept |= {ref.snapshot_id for ref in metadata.refs.values()}
        expired = tuple(
            s.snapshot_id
            for s in sorted(metadata.snapshots, key=lambda s: s.timestamp_ms)
            if s.timestamp_ms < cutoff_ms and s.snapshot_id not in kept
        )
        if not expired:
            return ExpireResult(_name(table), (), len(metadata.snapshots))
        # Straight to the catalog rather than table.maintenance.expire_snapshots(): its commit
        # asserts nothing about `main`, and the catalog applies the removal to whatever metadata
        # is current by then, where `main` may no longer head the chain kept here. The models
        # are built from their wire names because mypy sees only those.
        requirements = (
            AssertTableUUID(uuid=metadata.table_uuid),
            AssertRefSnapshotId.model_validate(
                {"ref": MAIN_BRANCH, "snapshot-id": current.snapshot_id}
            ),
        )
        removal = RemoveSnapshotsUpdate.model_validate({"snapshot-ids": list(expired)})
        try:
            table.catalog.commit_table(table, requirements, (removal,))
        except CommitFailedException:
            if attempt == max_attempts:
                raise
            logger.warning(
                "expiring snapshots of %s lost a race (attempt %d of %d); retrying",
                _name(table),
                attempt,
                max_attempts,
            )
            continue
        table.refresh()
        logger.info("expired %d snapshots of %s", len(expired), _name(table))
        return ExpireResult(_name(table), expired, len(table.metadata.snapshots))
    raise AssertionError("unreachable: the loop returns or raises")


def _name(table: Table) -> str:
    return ".".join(table.name())


def _require_no_library_retry(table: Table) -> None:
    found = {key: table.properties.get(key) for key in NO_LIBRARY_COMMIT_RETRY}
    if found != NO_LIBRARY_COMMIT_RETRY:
        raise ValueError(
            f"table {_name(table)} has {found}, not {NO_LIBRARY_COMMIT_RETRY}: pyiceberg's commit "
            "retry would commit stale stream positions; create it with ensure_tables"
        )


def _positional_keys(metadata: TableMetadata) -> dict[str, tuple[int, str]]:
    """Each `financelake.*` key's newest value along the current snapshot's ancestry, with the
    depth (0 = the current snapshot) of the snapshot holding it."""
    found: dict[str, tuple[int, str]] = {}
    for depth, snapshot in enumerate(ancestors_of(metadata.current_snapshot(), metadata)):
        if snapshot.summary is None:
            continue
        for key, value in snapshot.summary.additional_properties.items():
            if key.startswith(POSITIONAL_KEY_PREFIX) and key not in found:
                found[key] = (depth, value)
    return found


def _plan(
    table: Table, target_file_bytes: int, min_files: int, where: str | BooleanExpression
) -> list[list[FileScanTask]]:
    """The small files of each partition worth rewriting, grouped by partition."""
    spec_id = table.spec().spec_id
    by_partition: dict[Record, list[FileScanTask]] = {}
    for task in table.scan(row_filter=where).plan_files():
        data_file = task.file
        # An older spec's files would be re-partitioned by the current one: a migration, not
        # maintenance. Files with delete files stay put so those deletes keep applying.
        if (
            data_file.spec_id != spec_id
            or task.delete_files
            or data_file.file_size_in_bytes >= target_file_bytes
        ):
            continue
        by_partition.setdefault(data_file.partition, []).append(task)
    return [
        tasks
        for tasks in by_partition.values()
        if len(tasks) >= min_files
        # Without this, files just under the target would be rewritten into as many files
        # on every run.
        and math.ceil(sum(t.file.file_size_in_bytes for t in tasks) / target_file_bytes)
        < len(tasks)
    ]


def _rewrite(
    table: Table, target_file_bytes: int, min_files: int, where: str | BooleanExpression
) -> _Rewrite:
    groups = _plan(table, target_file_bytes, min_files, where)
    sort_keys = _time_columns(table)
    write_uuid = uuid.uuid4()
    counter = itertools.count()  # unique file names across the partitions of one run
    written: list[DataFile] = []
    try:
        for tasks in groups:
            written.extend(
                _rewrite_partition(table, tasks, target_file_bytes, sort_keys, write_uuid, counter)
            )
    except BaseException:
        _discard(table, written)
        raise
    replaced = tuple(task.file for tasks in groups for task in tasks)
    return _Rewrite(replaced, tuple(written), len(groups))


def _rewrite_partition(
    table: Table,
    tasks: Sequence[FileScanTask],
    target_file_bytes: int,
    sort_keys: Sequence[str],
    write_uuid: uuid.UUID,
    counter: itertools.count[int],
) -> list[DataFile]:
    metadata = table.metadata
    rows = ArrowScan(metadata, table.io, metadata.schema(), AlwaysTrue()).to_table(tasks)
    if sort_keys:
        rows = rows.sort_by([(column, "ascending") for column in sort_keys])
    # pyiceberg sizes files by in-memory Arrow bytes; scale the on-disk target by this
    # partition's compression so the files come out near target_file_bytes on disk.
    on_disk = sum(task.file.file_size_in_bytes for task in tasks)
    arrow_target = max(1, rows.nbytes * target_file_bytes // on_disk)
    sized = metadata.model_copy(
        update={
            "properties": {
                **metadata.properties,
                TableProperties.WRITE_TARGET_FILE_SIZE_BYTES: str(arrow_target),
            }
        }
    )
    # pyiceberg's own writer (Transaction.overwrite and delete use it): it partitions the
    # rows by the current spec, names and places the files and collects their statistics.
    return list(
        _dataframe_to_data_files(
            table_metadata=sized, df=rows, io=table.io, write_uuid=write_uuid, counter=counter
        )
    )


def _time_columns(table: Table) -> list[str]:
    schema = table.schema()
    columns: list[str] = []
    for field in table.spec().fields:
        name = schema.find_column_name(field.source_id)
        if isinstance(field.transform, TimeTransform) and name and name not in columns:
            columns.append(name)
    return columns


def _commit_rewrite(table: Table, rewrite: _Rewrite) -> int:
    """Commit the rewrite on the table's current metadata; returns the new snapshot id.

    The overwrite producer asserts `main` is still the snapshot the transaction was opened on
    (AssertRefSnapshotId), carries over every live file it is not told to delete, and, because
    the table has no library retries, raises CommitFailedException if another commit won.
    The operation is "overwrite": pyiceberg 0.12 cannot summarise a "replace" snapshot.
    """
    positions = positional_metadata(table)
    transaction = table.transaction()
    with transaction.update_snapshot(snapshot_properties=positions).overwrite() as replace:
        for data_file in rewrite.replaced:
            replace.delete_data_file(data_file)
        for data_file in rewrite.written:
            replace.append_data_file(data_file)
    transaction.commit_transaction()
    return replace.snapshot_id


def _all_live(table: Table, files: Iterable[DataFile]) -> bool:
    live = {task.file.file_path for task in table.scan().plan_files()}
    return all(data_file.file_path in live for data_file in files)


def _discard(table: Table, files: Iterable[DataFile]) -> None:
    """Delete data files this module wrote that no commit references."""
    for data_file in files:
        try:
            table.io.delete(data_file.file_path)
        except OSError:
            logger.warning(
                "could not delete uncommitted file %s", data_file.file_path, exc_info=True
            )
