"""What ListTables shows of each lake table: schema, partitioning, size, recent snapshots;
and a table's snapshot lineage, which GetPipelineStatus reads.

Reads table metadata and the current snapshot's manifests only (no data files).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyiceberg.catalog import Catalog
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot, ancestors_of

RECENT_SNAPSHOTS = 10


@dataclass(frozen=True)
class ColumnInfo:
    """One column of a table schema."""

    field_id: int
    name: str
    type: str
    required: bool
    doc: str


@dataclass(frozen=True)
class SnapshotInfo:
    """One snapshot of a table."""

    snapshot_id: int
    parent_snapshot_id: int
    commit_time_ms: int
    operation: str
    summary: dict[str, str]


@dataclass(frozen=True)
class TableInfo:
    """A table as ListTables describes it."""

    identifier: str
    location: str
    columns: list[ColumnInfo]
    partition_fields: list[str]
    total_rows: int
    total_files: int
    total_bytes: int
    snapshots: list[SnapshotInfo]
    """Newest first, at most RECENT_SNAPSHOTS."""


def table_identifiers(catalog: Catalog, namespace: str = "") -> list[str]:
    """`namespace.name` of every table, sorted; only `namespace`'s when given."""
    namespaces = [(namespace,)] if namespace else catalog.list_namespaces()
    found: list[str] = []
    for space in namespaces:
        if namespace and not catalog.namespace_exists(space):
            continue
        found.extend(".".join(identifier) for identifier in catalog.list_tables(space))
    return sorted(found)


def describe(table: Table, identifier: str) -> TableInfo:
    """The description of one loaded table."""
    schema = table.schema()
    columns = [
        ColumnInfo(f.field_id, f.name, str(f.field_type), f.required, f.doc or "")
        for f in schema.fields
    ]
    partition_fields = [
        f"{field.transform}({schema.find_column_name(field.source_id)})"
        for field in table.spec().fields
    ]
    current = table.current_snapshot()
    summary = current.summary if current is not None and current.summary is not None else None
    totals = dict(summary.additional_properties) if summary is not None else {}
    snapshots = sorted(table.snapshots(), key=lambda s: s.timestamp_ms, reverse=True)
    return TableInfo(
        identifier=identifier,
        location=table.location(),
        columns=columns,
        partition_fields=partition_fields,
        total_rows=int(totals.get("total-records", 0)),
        total_files=int(totals.get("total-data-files", 0)),
        total_bytes=int(totals.get("total-files-size", 0)),
        snapshots=[_snapshot_info(s) for s in snapshots[:RECENT_SNAPSHOTS]],
    )


def _snapshot_info(snapshot: Snapshot) -> SnapshotInfo:
    """What is shown of one snapshot: ids, commit time, operation and summary."""
    summary = snapshot.summary
    return SnapshotInfo(
        snapshot.snapshot_id,
        snapshot.parent_snapshot_id or 0,
        snapshot.timestamp_ms,
        summary.operation.value if summary is not None else "",
        dict(summary.additional_properties) if summary is not None else {},
    )


def lineage(table: Table) -> list[SnapshotInfo]:
    """The current snapshot and its ancestors, newest first (empty for a table never
    committed to); rolled-back commits are not part of it."""
    metadata = table.metadata
    return [_snapshot_info(s) for s in ancestors_of(metadata.current_snapshot(), metadata)]
