"""Schemas and partition specs of the lake's tables, and `ensure_tables` that creates them.

Namespaces are layers (DESIGN.md "Data"): `bronze.ticks` holds trades as ingested,
`silver.bars` OHLCV bars, `gold.alerts` detected events, `gold.features` the indicators of
every closed bar and `gold.predictions` the models' forecasts.

Field ids are fixed by hand rather than assigned by the catalog so that the partition specs
below can name their source columns and so that ids never shift between environments.
Every timestamp is `timestamptz` in microseconds (Iceberg has no nanosecond type before v3);
writers downcast the Kafka payload's nanoseconds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError
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


# Every table's symbol is field 1; 16 buckets of it, as the second partition field.
_SYMBOL_BUCKET = PartitionField(
    1, _FIRST_PARTITION_FIELD_ID + 1, BucketTransform(SYMBOL_BUCKETS), "symbol_bucket"
)
# Tables of bars and of per-bar values (symbol 1, interval 2, start_time 3) are partitioned as
# DESIGN.md says: (interval, symbol, day); interval first because queries always fix it.
_BAR_SERIES_SPEC = PartitionSpec(
    PartitionField(2, _FIRST_PARTITION_FIELD_ID, IdentityTransform(), "interval"),
    _SYMBOL_BUCKET,
    PartitionField(3, _FIRST_PARTITION_FIELD_ID + 2, DayTransform(), "start_time_day"),
)


@dataclass(frozen=True)
class TableDef:
    """One lake table: its identifier, schema, partition spec and table properties."""

    namespace: str
    name: str
    schema: Schema
    spec: PartitionSpec
    doc: str
    properties: dict[str, str] = field(default_factory=dict)
    """Table properties of its own, on top of `NO_LIBRARY_COMMIT_RETRY`."""

    @property
    def all_properties(self) -> dict[str, str]:
        """Every property `ensure_tables` gives the table (besides its comment)."""
        return {**NO_LIBRARY_COMMIT_RETRY, **self.properties}

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
        _SYMBOL_BUCKET,
    ),
    # A 64 KiB dictionary page makes the unique trade ids fall back to plain encoding at
    # once instead of after 2 MiB: Parquet writes twice as fast and files are no larger
    # (bench-stream); symbols and venues still fit their dictionaries.
    properties={TableProperties.PARQUET_DICT_SIZE_BYTES: "65536"},
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
    spec=_BAR_SERIES_SPEC,
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


def _indicator(field_id: int, name: str, doc: str) -> NestedField:
    # Nullable: indicators are undefined while their window warms up (NaN in the stream).
    return NestedField(field_id, name, DoubleType(), required=False, doc=doc)


# The indicator columns are `IndicatorConfig().output_names()`, in that order, listed by hand
# so their ids stay fixed: a changed default config is a schema evolution with new ids.
FEATURES = TableDef(
    namespace="gold",
    name="features",
    doc=(
        "Indicators of each closed bar, one row per (symbol, interval, start_time) and "
        "computation; an amended bar adds a row, and the latest computed_time wins. "
        "Indicators are null while warming up."
    ),
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
            doc="Start of the bar the row describes (UTC)",
        ),
        NestedField(4, "close", DoubleType(), required=True, doc="The bar's close"),
        NestedField(5, "volume", DoubleType(), required=True, doc="The bar's volume"),
        _indicator(6, "sma_20", "Simple moving average of the last 20 closes"),
        _indicator(7, "sma_50", "Simple moving average of the last 50 closes"),
        _indicator(8, "ema_12", "12-bar exponential moving average of close, SMA-seeded"),
        _indicator(9, "ema_26", "26-bar exponential moving average of close, SMA-seeded"),
        _indicator(10, "rsi_14", "14-bar RSI with Wilder smoothing, 0 to 100"),
        _indicator(11, "macd", "MACD line: EMA(12) - EMA(26) of close"),
        _indicator(12, "macd_signal", "MACD signal: 9-bar EMA of the MACD line"),
        _indicator(13, "macd_hist", "MACD histogram: macd - macd_signal"),
        _indicator(14, "bb_upper", "Upper Bollinger band: bb_middle + 2 population std"),
        _indicator(15, "bb_middle", "Middle Bollinger band: 20-bar SMA of close"),
        _indicator(16, "bb_lower", "Lower Bollinger band: bb_middle - 2 population std"),
        _indicator(17, "atr_14", "14-bar average true range with Wilder smoothing"),
        _indicator(18, "obv", "On-balance volume since the stream's first bar of the symbol"),
        _indicator(19, "stoch_k", "Slow stochastic %K (14, 3), 0 to 100"),
        _indicator(20, "stoch_d", "Slow stochastic %D: 3-bar SMA of stoch_k"),
        _indicator(21, "return", "Simple return: close / previous bar's close - 1"),
        _indicator(22, "log_return", "ln(close / previous bar's close)"),
        _indicator(23, "volatility_20", "Sample std of the last 20 log returns, per bar"),
        _indicator(
            24,
            "vwap",
            "Volume-weighted typical price (H + L + C) / 3 since the stream's first bar",
        ),
        NestedField(
            25,
            "computed_time",
            TimestamptzType(),
            required=True,
            doc="When the stream computed the row (UTC)",
        ),
    ),
    spec=_BAR_SERIES_SPEC,
)

PREDICTIONS = TableDef(
    namespace="gold",
    name="predictions",
    doc="Forecasts of each symbol's next bar, one row per prediction made.",
    schema=Schema(
        NestedField(1, "symbol", StringType(), required=True, doc="The instrument"),
        NestedField(
            2,
            "interval",
            StringType(),
            required=True,
            doc="Bar width forecast; the horizon is one bar",
        ),
        NestedField(
            3,
            "feature_time",
            TimestamptzType(),
            required=True,
            doc="Start of the bar whose features were used (UTC)",
        ),
        NestedField(
            4,
            "predicted_time",
            TimestamptzType(),
            required=True,
            doc="When the prediction was made (UTC)",
        ),
        NestedField(5, "model_name", StringType(), required=True, doc="Registered model name"),
        NestedField(
            6,
            "model_version",
            StringType(),
            required=True,
            doc="Version within model_name; the contract shows it as <model_name>@<version>",
        ),
        NestedField(
            7,
            "probability_up",
            DoubleType(),
            required=True,
            doc="Probability that the next bar closes above this bar's close",
        ),
        NestedField(
            8,
            "expected_return",
            DoubleType(),
            required=True,
            doc="Expected close-to-close return of the next bar, as a fraction",
        ),
    ),
    # Predictions are read back by when they were made (recent ones, or a backtest range).
    spec=PartitionSpec(
        PartitionField(4, _FIRST_PARTITION_FIELD_ID, DayTransform(), "predicted_time_day"),
    ),
)

TABLES: tuple[TableDef, ...] = (TICKS, BARS, ALERTS, FEATURES, PREDICTIONS)


def ensure_tables(catalog: Catalog) -> dict[str, Table]:
    """Create the layer namespaces and tables that are missing; return all, by identifier.

    Idempotent: an existing table is loaded as it is, except that the definition's
    properties (among them the commit-retry one LakeWriter relies on) are set when missing.
    A differing partition spec is logged, not "fixed", because evolving a spec is a
    deliberate migration. Existing tables are loaded before anything is created, so that
    over existing tables nothing is written: the servers that only read the lake run with
    read-only rights (Glue's create calls would be refused even for a table that exists).
    """
    tables: dict[str, Table] = {}
    for definition in TABLES:
        try:
            table = catalog.load_table(definition.identifier)
        except (NoSuchTableError, NoSuchNamespaceError):
            catalog.create_namespace_if_not_exists(definition.namespace)
            table = catalog.create_table_if_not_exists(
                definition.identifier,
                schema=definition.schema,
                partition_spec=definition.spec,
                properties={"comment": definition.doc, **definition.all_properties},
            )
        wanted = definition.all_properties
        if any(table.properties.get(k) != v for k, v in wanted.items()):
            table = table.transaction().set_properties(wanted).commit_transaction()
        if table.spec().fields != definition.spec.fields:
            logger.warning(
                "table %s has partition spec %s, expected %s",
                definition.identifier,
                table.spec(),
                definition.spec,
            )
        tables[definition.identifier] = table
    return tables
