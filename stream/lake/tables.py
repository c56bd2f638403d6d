"""Schemas and partition specs of the lake's tables, and `ensure_tables` that creates them.

Namespaces are layers (DESIGN.md "Data"): `bronze.ticks` holds trades as ingested,
`silver.bars` OHLCV bars, `gold.alerts` detected events. `gold.features` and
`gold.predictions` come with the feature and model work, not here.

Field ids are fixed by hand rather than assigned by the catalog so that the partition specs
below can name their source columns and so that ids never shift between environments.
Every timestamp is `timestamptz` in microseconds (Iceberg has no nanosecond type before v3);
writers downcast the Kafka payload's nanoseconds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pyiceberg.catalog import Catalog
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table, TableProperties
from pyiceberg.transforms import BucketTransform, DayTransform, IdentityTransform
from pyiceberg.types import (
    BooleanType,
    DoubleType,
    IntegerType,
    LongType,
    NestedField,
    StringType,
    TimestamptzType,
)

logger = logging.getLogger(__name__)

# Partition field ids start at 1000 by Iceberg convention, apart from the column ids.
_FIRST_PARTITION_FIELD_ID = 1000

# 16 buckets keep per-symbol scans pruned without a file per symbol per day for a few hundred
# symbols; changing it later is a spec evolution, not a rewrite.
SYMBOL_BUCKETS = 16

# pyiceberg (0.12) retries a failed commit by re-applying the append on top of whatever won
# the race: for a fast append that silently writes a replayed batch twice, with offsets
# computed before the race. LakeWriter therefore retries itself, re-deciding from the offsets
# the winner committed, and every lake table turns the library's retry off.
NO_LIBRARY_COMMIT_RETRY = {TableProperties.COMMIT_NUM_RETRIES: "0"}


@dataclass(frozen=True)
class TableDef:
    """One lake table: its identifier, schema and partition spec."""

    namespace: str
    name: str
    schema: Schema
    spec: PartitionSpec
    doc: str

    @property
    def identifier(self) -> str:
        """`namespace.name`, as the catalog takes it."""
        return f"{self.namespace}.{self.name}"


TICKS = TableDef(
    namespace="bronze",
    name="ticks",
    doc="Trades as ingested from the ticks topic, one row per trade, with their Kafka position.",
    schema=Schema(
        NestedField(1, "symbol", StringType(), required=True, doc="The traded instrument"),
        NestedField(
            2, "event_time", TimestamptzType(), required=True, doc="Trade time (UTC, microseconds)"
        ),
        NestedField(3, "price", DoubleType(), required=True, doc="Trade price, > 0"),
        NestedField(
            4, "size", DoubleType(), required=True, doc="Traded quantity (fractional allowed)"
        ),
        NestedField(
            5,
            "exchange",
            StringType(),
            required=False,
            doc="Venue (MIC or source code); null when the source reports none",
        ),
        NestedField(
            6,
            "trade_id",
            StringType(),
            required=True,
            doc="Source trade id; (symbol, trade_id) is the dedup key",
        ),
        NestedField(
            7,
            "ingest_time",
            TimestamptzType(),
            required=True,
            doc="When the stream read the record from Kafka (UTC)",
        ),
        NestedField(
            8,
            "kafka_partition",
            IntegerType(),
            required=True,
            doc="Partition of the ticks topic the row came from",
        ),
        NestedField(
            9,
            "kafka_offset",
            LongType(),
            required=True,
            doc="Offset of the Kafka record (a TickBatch) carrying the row",
        ),
    ),
    spec=PartitionSpec(
        PartitionField(2, _FIRST_PARTITION_FIELD_ID, DayTransform(), "event_time_day"),
        PartitionField(
            1, _FIRST_PARTITION_FIELD_ID + 1, BucketTransform(SYMBOL_BUCKETS), "symbol_bucket"
        ),
    ),
)

BARS = TableDef(
    namespace="silver",
    name="bars",
    doc="OHLCV bars built from trades or imported; a later revision amends an earlier one.",
    schema=Schema(
        NestedField(1, "symbol", StringType(), required=True, doc="The instrument"),
        NestedField(
            2,
            "interval",
            StringType(),
            required=True,
            doc="Bar width: 1m, 5m, 15m, 30m, 1h, 1d or 1wk",
        ),
        NestedField(
            3,
            "start_time",
            TimestamptzType(),
            required=True,
            doc="Inclusive window start (UTC); the window ends at start_time + interval",
        ),
        NestedField(4, "open", DoubleType(), required=True, doc="First trade price"),
        NestedField(5, "high", DoubleType(), required=True, doc="Highest trade price"),
        NestedField(6, "low", DoubleType(), required=True, doc="Lowest trade price"),
        NestedField(7, "close", DoubleType(), required=True, doc="Last trade price"),
        NestedField(8, "volume", DoubleType(), required=True, doc="Sum of trade sizes"),
        NestedField(
            9,
            "vwap",
            DoubleType(),
            required=True,
            doc="Volume-weighted average price; 0 when the source gives none",
        ),
        NestedField(
            10,
            "trade_count",
            LongType(),
            required=True,
            doc="Number of trades; 0 when the source does not report it",
        ),
        NestedField(
            11,
            "source",
            StringType(),
            required=True,
            doc="Origin: trades, yahoo, alphavantage, csv or synthetic",
        ),
        NestedField(
            12,
            "adjusted",
            BooleanType(),
            required=True,
            doc="True when prices are split/dividend adjusted (imported bars only)",
        ),
        NestedField(
            13,
            "revision",
            IntegerType(),
            required=True,
            doc="0 for the first emission; +1 each time late trades amend the bar",
        ),
    ),
    # DESIGN.md: "(interval, symbol, day)". Interval first because queries always fix it.
    spec=PartitionSpec(
        PartitionField(2, _FIRST_PARTITION_FIELD_ID, IdentityTransform(), "interval"),
        PartitionField(
            1, _FIRST_PARTITION_FIELD_ID + 1, BucketTransform(SYMBOL_BUCKETS), "symbol_bucket"
        ),
        PartitionField(3, _FIRST_PARTITION_FIELD_ID + 2, DayTransform(), "start_time_day"),
    ),
)

ALERTS = TableDef(
    namespace="gold",
    name="alerts",
    doc="Detected market events (rules and the anomaly model), one row per alert.",
    schema=Schema(
        NestedField(
            1,
            "alert_id",
            StringType(),
            required=True,
            doc="Stable id: the same event always yields the same id",
        ),
        NestedField(2, "symbol", StringType(), required=True, doc="The instrument"),
        NestedField(
            3, "interval", StringType(), required=True, doc="Bar width the detection ran on"
        ),
        NestedField(
            4,
            "kind",
            StringType(),
            required=True,
            doc="What raised it: price_move, volume_spike or anomaly",
        ),
        NestedField(5, "severity", StringType(), required=True, doc="info, warning or critical"),
        NestedField(
            6,
            "event_time",
            TimestamptzType(),
            required=True,
            doc="Start time of the bar that triggered the alert (UTC)",
        ),
        NestedField(
            7,
            "detected_time",
            TimestamptzType(),
            required=True,
            doc="When the stream detected it (UTC)",
        ),
        NestedField(
            8,
            "value",
            DoubleType(),
            required=True,
            doc="Observed value: a return, a volume or an anomaly score, by kind",
        ),
        NestedField(
            9, "score", DoubleType(), required=True, doc="The rule's score (z-score or model)"
        ),
        NestedField(
            10, "threshold", DoubleType(), required=True, doc="Score beyond which the rule fires"
        ),
        NestedField(11, "message", StringType(), required=True, doc="A sentence for people"),
    ),
    # Alerts are few; a day partition is enough for time-range queries.
    spec=PartitionSpec(
        PartitionField(6, _FIRST_PARTITION_FIELD_ID, DayTransform(), "event_time_day"),
    ),
)

TABLES: tuple[TableDef, ...] = (TICKS, BARS, ALERTS)


def ensure_tables(catalog: Catalog) -> dict[str, Table]:
    """Create the layer namespaces and tables that are missing; return all, by identifier.

    Idempotent: an existing table is loaded as it is, except that the commit-retry property
    LakeWriter relies on is set when missing. A differing partition spec is logged, not
    "fixed", because evolving a spec is a deliberate migration.
    """
    tables: dict[str, Table] = {}
    for definition in TABLES:
        catalog.create_namespace_if_not_exists(definition.namespace)
        table = catalog.create_table_if_not_exists(
            definition.identifier,
            schema=definition.schema,
            partition_spec=definition.spec,
            properties={"comment": definition.doc, **NO_LIBRARY_COMMIT_RETRY},
        )
        if any(table.properties.get(k) != v for k, v in NO_LIBRARY_COMMIT_RETRY.items()):
            table = table.transaction().set_properties(NO_LIBRARY_COMMIT_RETRY).commit_transaction()
        if table.spec().fields != definition.spec.fields:
            logger.warning(
                "table %s has partition spec %s, expected %s",
                definition.identifier,
                table.spec(),
                definition.spec,
            )
        tables[definition.identifier] = table
    return tables
