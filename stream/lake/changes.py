"""What a table's newer snapshots added, for readers that keep a table's rows in memory and
bring them up to date by reading only the new data files (the lake is append-only apart from
compaction, whose rewritten files hold the same rows again)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.manifest import ManifestEntryStatus
from pyiceberg.table import Table
from pyiceberg.table.snapshots import ancestors_of


def files_added_since(table: Table, since: int | None) -> list[str] | None:
    """Data files the snapshots after `since` added (all of them when `since` is None); None
    when `since` is not an ancestor of the current snapshot (a rollback, expired history):
    the reader must read the table again."""
    metadata = table.metadata
    new: set[int] = set()
    for snapshot in ancestors_of(metadata.current_snapshot(), metadata):
        if snapshot.snapshot_id == since:
            break
        new.add(snapshot.snapshot_id)
    else:
        if since is not None:
            return None
    paths: list[str] = []
    current = metadata.current_snapshot()
    if current is None:
        return paths
    for manifest in current.manifests(table.io):
        if manifest.added_snapshot_id not in new:
            continue
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
            if entry.status == ManifestEntryStatus.ADDED and entry.snapshot_id in new:
                paths.append(entry.data_file.file_path)
    return paths


def read_files(table: Table, paths: list[str], columns: list[str]) -> list[pa.Table]:
    """`columns` of each data file, read directly (the files this table's writers wrote,
    with the table's current column names)."""
    parts = []
    for path in paths:
        with table.io.new_input(path).open() as stream:
            parts.append(pq.read_table(stream, columns=columns))
    return parts
