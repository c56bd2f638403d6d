"""The lake side of the stream: Iceberg table definitions and the exactly-once batch writer.

Plain code with no Faust or Kafka imports, so agents (later) feed it batches and tests drive
it against a real SqlCatalog.
"""

from __future__ import annotations

from financelake.stream.lake.tables import (
    ALERTS,
    BARS,
    FEATURES,
    PREDICTIONS,
    TABLES,
    TICKS,
    TableDef,
    ensure_tables,
)
from financelake.stream.lake.writer import LakeWriter, OffsetOverlapError, offsets_key

__all__ = [
    "ALERTS",
    "BARS",
    "FEATURES",
    "PREDICTIONS",
    "TABLES",
    "TICKS",
    "LakeWriter",
    "OffsetOverlapError",
    "TableDef",
    "ensure_tables",
    "offsets_key",
]
