"""The lake's local backend works as the tables need it: partition transforms, append, scan."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import BucketTransform, DayTransform
from pyiceberg.types import DoubleType, NestedField, StringType, TimestamptzType

pytestmark = pytest.mark.integration


def test_day_and_bucket_partitioned_table_round_trips(iceberg_catalog: SqlCatalog) -> None:
    # bronze.ticks is partitioned by day and symbol bucket; bucket needs pyiceberg-core.
    schema = Schema(
        NestedField(1, "symbol", StringType(), required=True),
        NestedField(2, "event_time", TimestamptzType(), required=True),
        NestedField(3, "price", DoubleType(), required=True),
    )
    spec = PartitionSpec(
        PartitionField(2, 1000, DayTransform(), "event_day"),
        PartitionField(1, 1001, BucketTransform(16), "symbol_bucket"),
    )
    iceberg_catalog.create_namespace("bronze")
    table = iceberg_catalog.create_table("bronze.ticks", schema=schema, partition_spec=spec)

    rows = pa.table(
        {
            "symbol": ["AAPL", "MSFT", "AAPL"],
            "event_time": [
                datetime(2026, 1, 5, 14, 30, tzinfo=UTC),
                datetime(2026, 1, 5, 14, 31, tzinfo=UTC),
                datetime(2026, 1, 6, 14, 30, tzinfo=UTC),
            ],
            "price": [190.5, 410.25, 191.0],
        },
        schema=schema.as_arrow(),
    )
    table.append(rows)

    scanned = table.scan(row_filter="symbol == 'AAPL'").to_arrow().sort_by("event_time")
    assert scanned["price"].to_pylist() == [190.5, 191.0]
    # One data file per (day, bucket) partition: 3 rows over 3 distinct partitions.
    assert len(list(table.scan().plan_files())) == 3
