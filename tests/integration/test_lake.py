"""The lake tables and the exactly-once writer against a real SqlCatalog on SQLite."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import CommitFailedException, ForbiddenError
from pyiceberg.table import CommitTableResponse, Table
from pyiceberg.transforms import BucketTransform, DayTransform, IdentityTransform

from financelake.gen.common.v1 import tick_pb2
from financelake.stream.agents.bronze import BronzeAgent, ticks_partitions
from financelake.stream.agents.core import LakeSink, Record, start_offsets
from financelake.stream.lake import (
    ALERTS,
    BARS,
    FEATURES,
    PREDICTIONS,
    TABLES,
    TICKS,
    LakeWriter,
    OffsetOverlapError,
    ensure_tables,
    offsets_key,
)
from financelake.stream.lake.writer import PartitionedRows
from financelake.stream.tick_columns import decode_tick_batch

pytestmark = pytest.mark.integration

TOPIC = "financelake.ticks.v1"
GROUP = "lake-writer"
T0 = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)


def _ticks(table: Table, positions: list[tuple[int, int]], symbol: str = "AAPL") -> pa.Table:
    """One tick per (kafka_partition, kafka_offset), in the table's own Arrow schema."""
    n = len(positions)
    return pa.table(
        {
            "symbol": [symbol] * n,
            "event_time": [T0 + timedelta(seconds=i) for i in range(n)],
            "price": [100.0 + i for i in range(n)],
            "size": [10.0] * n,
            "exchange": ["XNAS"] * n,
            "trade_id": [f"{p}-{o}" for p, o in positions],
            "ingest_time": [T0] * n,
            "kafka_partition": [p for p, _ in positions],
            "kafka_offset": [o for _, o in positions],
        },
        schema=table.schema().as_arrow(),
    )


def _bars(table: Table, count: int) -> pa.Table:
    return pa.table(
        {
            "symbol": ["MSFT"] * count,
            "interval": ["1m"] * count,
            "start_time": [T0 + timedelta(minutes=i) for i in range(count)],
            "open": [1.0] * count,
            "high": [2.0] * count,
            "low": [0.5] * count,
            "close": [1.5] * count,
            "volume": [100.0] * count,
            "vwap": [1.2] * count,
            "trade_count": [7] * count,
            "source": ["trades"] * count,
            "adjusted": [False] * count,
            "revision": [0] * count,
        },
        schema=table.schema().as_arrow(),
    )


def _count(catalog: SqlCatalog, identifier: str) -> int:
    # A fresh load, as another process would see the table.
    rows: int = catalog.load_table(identifier).scan().to_arrow().num_rows
    return rows


def _spec(table: Table) -> list[tuple[str | None, str, object]]:
    schema = table.schema()
    return [
        (schema.find_column_name(field.source_id), field.name, field.transform)
        for field in table.spec().fields
    ]


def test_tables_have_the_designed_partition_specs(iceberg_catalog: SqlCatalog) -> None:
    tables = ensure_tables(iceberg_catalog)

    assert set(tables) == {
        "bronze.ticks",
        "silver.bars",
        "gold.alerts",
        "gold.features",
        "gold.predictions",
    }
    assert _spec(tables["bronze.ticks"]) == [
        ("event_time", "event_time_day", DayTransform()),
        ("symbol", "symbol_bucket", BucketTransform(16)),
    ]
    assert _spec(tables["silver.bars"]) == [
        ("interval", "interval", IdentityTransform()),
        ("symbol", "symbol_bucket", BucketTransform(16)),
        ("start_time", "start_time_day", DayTransform()),
    ]
    assert _spec(tables["gold.alerts"]) == [("event_time", "event_time_day", DayTransform())]
    assert _spec(tables["gold.features"]) == [
        ("interval", "interval", IdentityTransform()),
        ("symbol", "symbol_bucket", BucketTransform(16)),
        ("start_time", "start_time_day", DayTransform()),
    ]
    assert _spec(tables["gold.predictions"]) == [
        ("predicted_time", "predicted_time_day", DayTransform())
    ]
    assert TABLES == (TICKS, BARS, ALERTS, FEATURES, PREDICTIONS)
    for definition in TABLES:
        table = tables[definition.identifier]
        assert table.schema().column_names == definition.schema.column_names
        assert all(field.doc for field in table.schema().fields), definition.identifier


def test_ensure_tables_is_idempotent(iceberg_catalog: SqlCatalog) -> None:
    first = ensure_tables(iceberg_catalog)
    writer = LakeWriter()
    writer.append(
        first["bronze.ticks"], _ticks(first["bronze.ticks"], [(0, 0)]), {(TOPIC, 0): 1}, GROUP
    )

    second = ensure_tables(iceberg_catalog)

    assert set(second) == set(first)
    assert second["bronze.ticks"].metadata.table_uuid == first["bronze.ticks"].metadata.table_uuid
    assert _count(iceberg_catalog, "bronze.ticks") == 1  # existing data is left alone


class _ReadOnlyCatalog(SqlCatalog):
    """The same catalog with the rights of the servers that only read the lake (their Glue
    role refuses every create, even of a table that exists)."""

    def create_namespace(self, *args: object, **kwargs: object) -> None:
        raise ForbiddenError("glue:CreateDatabase is not allowed")

    def create_table(self, *args: object, **kwargs: object) -> Table:
        raise ForbiddenError("glue:CreateTable is not allowed")

    def commit_table(self, *args: object, **kwargs: object) -> CommitTableResponse:
        raise ForbiddenError("glue:UpdateTable is not allowed")


def test_ensure_tables_only_reads_tables_that_exist(iceberg_catalog: SqlCatalog) -> None:
    created = ensure_tables(iceberg_catalog)
    read_only = _ReadOnlyCatalog("test", **iceberg_catalog.properties)
    try:
        loaded = ensure_tables(read_only)
    finally:
        read_only.engine.dispose()

    assert {name: t.metadata.table_uuid for name, t in loaded.items()} == {
        name: t.metadata.table_uuid for name, t in created.items()
    }


def test_append_scans_back_the_same_rows(iceberg_catalog: SqlCatalog) -> None:
    bars = ensure_tables(iceberg_catalog)["silver.bars"]
    rows = _bars(bars, 5)

    written = LakeWriter().append(bars, rows, {("financelake.bars.v1", 0): 5}, GROUP)

    assert written == 5
    scanned = iceberg_catalog.load_table("silver.bars").scan().to_arrow().sort_by("start_time")
    assert scanned.equals(rows)


def test_offsets_round_trip_through_the_snapshot_summary(iceberg_catalog: SqlCatalog) -> None:
    ticks = ensure_tables(iceberg_catalog)["bronze.ticks"]
    writer = LakeWriter()
    assert writer.committed_offsets(ticks, GROUP) == {}

    writer.append(
        ticks, _ticks(ticks, [(0, 0), (0, 1), (1, 0)]), {(TOPIC, 0): 2, (TOPIC, 1): 1}, GROUP
    )
    # Partition 1 is quiet in the second batch: its position must survive.
    writer.append(ticks, _ticks(ticks, [(0, 2)]), {(TOPIC, 0): 3}, GROUP)

    reloaded = iceberg_catalog.load_table("bronze.ticks")
    assert writer.committed_offsets(reloaded, GROUP) == {(TOPIC, 0): 3, (TOPIC, 1): 1}
    snapshot = reloaded.current_snapshot()
    assert snapshot is not None
    assert snapshot.summary is not None
    assert snapshot.summary[offsets_key(GROUP)] == '{"financelake.ticks.v1":{"0":3,"1":1}}'
    assert writer.committed_offsets(reloaded, "another-group") == {}


def test_offsets_are_found_behind_commits_that_do_not_carry_them(
    iceberg_catalog: SqlCatalog,
) -> None:
    ticks = ensure_tables(iceberg_catalog)["bronze.ticks"]
    writer = LakeWriter()
    writer.append(ticks, _ticks(ticks, [(0, 0)]), {(TOPIC, 0): 1}, GROUP)
    # Another group's commit, and a plain append (as compaction or a backfill would make).
    writer.append(ticks, _ticks(ticks, [(0, 0)], symbol="MSFT"), {(TOPIC, 0): 1}, "backfill")
    ticks.append(_ticks(ticks, [(3, 9)], symbol="IBM"))

    assert writer.committed_offsets(ticks, GROUP) == {(TOPIC, 0): 1}
    assert writer.committed_offsets(ticks, "backfill") == {(TOPIC, 0): 1}


def test_a_replay_after_restart_writes_nothing_twice(iceberg_catalog: SqlCatalog) -> None:
    ticks = ensure_tables(iceberg_catalog)["bronze.ticks"]
    batch = _ticks(ticks, [(0, 0), (0, 1), (1, 0)])
    offsets = {(TOPIC, 0): 2, (TOPIC, 1): 1}
    assert LakeWriter().append(ticks, batch, offsets, GROUP) == 3
    snapshots = len(iceberg_catalog.load_table("bronze.ticks").snapshots())

    # "Restart": a new writer and a freshly loaded table, as a new worker process would have.
    restarted = ensure_tables(iceberg_catalog)["bronze.ticks"]
    assert LakeWriter().append(restarted, batch, offsets, GROUP) is None
    # An older batch (fully below the committed offsets) is a replay too.
    assert LakeWriter().append(restarted, batch.slice(0, 1), {(TOPIC, 0): 1}, GROUP) is None

    assert _count(iceberg_catalog, "bronze.ticks") == 3
    assert len(iceberg_catalog.load_table("bronze.ticks").snapshots()) == snapshots


def test_a_stale_table_object_still_sees_the_latest_offsets(iceberg_catalog: SqlCatalog) -> None:
    stale = ensure_tables(iceberg_catalog)["bronze.ticks"]
    fresh = iceberg_catalog.load_table("bronze.ticks")
    batch = _ticks(fresh, [(0, 0)])
    LakeWriter().append(fresh, batch, {(TOPIC, 0): 1}, GROUP)

    assert LakeWriter().append(stale, batch, {(TOPIC, 0): 1}, GROUP) is None
    assert _count(iceberg_catalog, "bronze.ticks") == 1


def test_partial_overlap_keeps_only_new_rows_by_their_kafka_position(
    iceberg_catalog: SqlCatalog,
) -> None:
    ticks = ensure_tables(iceberg_catalog)["bronze.ticks"]
    writer = LakeWriter()
    writer.append(
        ticks, _ticks(ticks, [(0, 0), (0, 1), (1, 0)]), {(TOPIC, 0): 2, (TOPIC, 1): 1}, GROUP
    )

    # Replayed from older positions: partition 0 straddles the commit (offsets 1..3),
    # partition 1 is wholly old, partition 2 is new.
    straddling = _ticks(ticks, [(0, 1), (0, 2), (0, 3), (1, 0), (2, 0)])
    written = writer.append(ticks, straddling, {(TOPIC, 0): 4, (TOPIC, 1): 1, (TOPIC, 2): 1}, GROUP)

    assert written == 3
    scanned = iceberg_catalog.load_table("bronze.ticks").scan().to_arrow()
    positions = sorted(
        zip(
            scanned["kafka_partition"].to_pylist(), scanned["kafka_offset"].to_pylist(), strict=True
        )
    )
    assert positions == [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (2, 0)]
    assert writer.committed_offsets(ticks, GROUP) == {(TOPIC, 0): 4, (TOPIC, 1): 1, (TOPIC, 2): 1}


def test_partial_overlap_without_row_positions_is_refused(iceberg_catalog: SqlCatalog) -> None:
    bars = ensure_tables(iceberg_catalog)["silver.bars"]
    writer = LakeWriter()
    topic = "financelake.bars.v1"
    writer.append(bars, _bars(bars, 2), {(topic, 0): 2}, GROUP)

    with pytest.raises(OffsetOverlapError, match="committed_offsets"):
        writer.append(bars, _bars(bars, 3), {(topic, 0): 2, (topic, 1): 1}, GROUP)

    assert _count(iceberg_catalog, "silver.bars") == 2
    assert writer.committed_offsets(bars, GROUP) == {(topic, 0): 2}


def test_one_commit_per_call(iceberg_catalog: SqlCatalog) -> None:
    ticks = ensure_tables(iceberg_catalog)["bronze.ticks"]
    writer = LakeWriter()
    # Many partitions (days x symbol buckets) in one batch still make one snapshot.
    for call in range(3):
        rows = pa.concat_tables(
            [
                _ticks(ticks, [(0, call * 10 + i) for i in range(2)], symbol=symbol)
                for symbol in ("AAPL", "MSFT", "IBM")
            ]
        )
        writer.append(ticks, rows, {(TOPIC, 0): call * 10 + 2}, GROUP)

    table = iceberg_catalog.load_table("bronze.ticks")
    assert len(table.snapshots()) == 3
    assert all(s.summary is not None and s.summary[offsets_key(GROUP)] for s in table.snapshots())
    assert table.scan().to_arrow().num_rows == 18


def test_a_batch_without_offsets_is_rejected(iceberg_catalog: SqlCatalog) -> None:
    ticks = ensure_tables(iceberg_catalog)["bronze.ticks"]
    with pytest.raises(ValueError, match="offsets"):
        LakeWriter().append(ticks, _ticks(ticks, [(0, 0)]), {}, GROUP)


def test_a_racing_commit_is_redecided_instead_of_writing_twice(
    iceberg_catalog: SqlCatalog,
) -> None:
    ticks = ensure_tables(iceberg_catalog)["bronze.ticks"]
    batch = _ticks(ticks, [(0, 0), (0, 1)])
    offsets = {(TOPIC, 0): 2}

    class RacedWriter(LakeWriter):
        """A zombie worker commits the same batch right after this one has read the offsets."""

        races = 0

        def committed_offsets(
            self, table: Table, consumer_group: str
        ) -> dict[tuple[str, int], int]:
            seen = super().committed_offsets(table, consumer_group)
            if self.races == 0:
                self.races += 1
                zombie = iceberg_catalog.load_table("bronze.ticks")
                assert LakeWriter().append(zombie, batch, offsets, consumer_group) == 2
            return seen

    # The first attempt's commit is refused; the retry sees the zombie's offsets.
    assert RacedWriter().append(ticks, batch, offsets, GROUP) is None
    table = iceberg_catalog.load_table("bronze.ticks")
    assert table.scan().to_arrow().num_rows == 2
    assert len(table.snapshots()) == 1


def test_losing_every_race_raises(iceberg_catalog: SqlCatalog) -> None:
    ticks = ensure_tables(iceberg_catalog)["bronze.ticks"]
    calls = 0

    class AlwaysRaced(LakeWriter):
        def committed_offsets(
            self, table: Table, consumer_group: str
        ) -> dict[tuple[str, int], int]:
            nonlocal calls
            calls += 1
            seen = super().committed_offsets(table, consumer_group)
            # Another group's commit moves the branch head without covering this batch.
            other = iceberg_catalog.load_table("bronze.ticks")
            other.append(_ticks(other, [(9, calls)], symbol="IBM"))
            return seen

    with pytest.raises(CommitFailedException):
        AlwaysRaced(max_attempts=2).append(ticks, _ticks(ticks, [(0, 0)]), {(TOPIC, 0): 1}, GROUP)
    assert calls == 2
    assert LakeWriter().committed_offsets(iceberg_catalog.load_table("bronze.ticks"), GROUP) == {}


def test_a_table_with_library_commit_retries_is_refused(iceberg_catalog: SqlCatalog) -> None:
    iceberg_catalog.create_namespace("bronze")
    plain = iceberg_catalog.create_table(
        TICKS.identifier, schema=TICKS.schema, partition_spec=TICKS.spec
    )
    with pytest.raises(ValueError, match="ensure_tables"):
        LakeWriter().append(plain, _ticks(plain, [(0, 0)]), {(TOPIC, 0): 1}, GROUP)

    # ensure_tables adopts the existing table and makes it safe.
    ticks = ensure_tables(iceberg_catalog)["bronze.ticks"]
    assert ticks.properties["commit.retry.num-retries"] == "0"
    assert LakeWriter().append(ticks, _ticks(ticks, [(0, 0)]), {(TOPIC, 0): 1}, GROUP) == 1


def test_a_multi_topic_batch_without_overlap_is_written(iceberg_catalog: SqlCatalog) -> None:
    alerts = ensure_tables(iceberg_catalog)["gold.alerts"]
    rows = pa.table(
        {
            "alert_id": ["a1", "a2"],
            "symbol": ["AAPL", "MSFT"],
            "interval": ["1m", "1m"],
            "kind": ["price_move", "volume_spike"],
            "severity": ["warning", "critical"],
            "event_time": [T0, T0],
            "detected_time": [T0 + timedelta(seconds=1)] * 2,
            "value": [0.032, 1e6],
            "score": [5.1, 7.0],
            "threshold": [4.0, 4.0],
            "message": ["AAPL 1m return +3.2% is 5.1 sigma", "MSFT volume spike"],
        },
        schema=alerts.schema().as_arrow(),
    )
    offsets = {("financelake.bars.v1", 0): 10, ("financelake.ticks.v1", 3): 7}
    writer = LakeWriter()

    assert writer.append(alerts, rows, offsets, GROUP) == 2
    assert writer.append(alerts, rows, offsets, GROUP) is None
    assert writer.committed_offsets(alerts, GROUP) == offsets
    assert _count(iceberg_catalog, "gold.alerts") == 2


def test_records_never_delivered_to_an_agent_are_reported_as_lost(
    iceberg_catalog: SqlCatalog, caplog: pytest.LogCaptureFixture
) -> None:
    ticks = ensure_tables(iceberg_catalog)["bronze.ticks"]
    LakeWriter().append(ticks, _ticks(ticks, [(0, 0), (0, 1)]), {(TOPIC, 0): 2}, GROUP)
    batch = tick_pb2.TickBatch(
        symbol="AAPL",
        event_time_unix_nanos=[1_700_000_000_000_000_000],
        prices=[1.0],
        sizes=[1.0],
        trade_ids=["t"],
    ).SerializeToString()

    def record(offset: int) -> Record:
        return Record(partition=0, offset=offset, value=decode_tick_batch(batch))

    caplog.set_level(logging.ERROR, logger="financelake.stream.agents.core")
    # Resuming exactly where the lake ends (or before it, a replay) is what Kafka should do.
    BronzeAgent(LakeSink(ticks, TOPIC, GROUP)).process([record(2), record(3)])
    BronzeAgent(LakeSink(ticks, TOPIC, GROUP)).process([record(1), record(2)])
    assert not caplog.records
    # A first record past it: records 2..4 never reached the lake, and the log says so.
    BronzeAgent(LakeSink(ticks, TOPIC, GROUP)).process([record(5)])
    assert [r.getMessage() for r in caplog.records] == [
        "bronze: partition 0 resumes at offset 2 but the first record delivered is 5: records "
        "2..4 never reached the lake (expired by retention, or the consumer group's offset "
        "was committed past them)"
    ]


def test_reading_starts_where_the_agent_furthest_behind_ends(iceberg_catalog: SqlCatalog) -> None:
    ticks = ensure_tables(iceberg_catalog)["bronze.ticks"]
    writer = LakeWriter()
    writer.append(
        ticks, _ticks(ticks, [(0, 0), (0, 1), (1, 0)]), {(TOPIC, 0): 7, (TOPIC, 1): 3}, GROUP
    )
    writer.append(ticks, _ticks(ticks, [(0, 0)]), {(TOPIC, 0): 4}, "other-group")
    ahead = BronzeAgent(LakeSink(ticks, TOPIC, GROUP))
    behind = BronzeAgent(LakeSink(ticks, TOPIC, "other-group"))
    elsewhere = BronzeAgent(LakeSink(ticks, "financelake.bars.v1", GROUP))

    starts = start_offsets([ahead, behind, elsewhere], [(TOPIC, 0), (TOPIC, 1), ("unread", 0)])

    # Partition 1 was never committed by `behind`: it reads from the start.
    assert starts == {(TOPIC, 0): 4, (TOPIC, 1): 0}
    assert start_offsets([ahead], [(TOPIC, 0), (TOPIC, 1)]) == {(TOPIC, 0): 7, (TOPIC, 1): 3}


def _files_by_partition(table: Table) -> dict[str, int]:
    files = table.inspect.files()
    return dict(
        zip(
            [str(p) for p in files["partition"].to_pylist()],
            files["record_count"].to_pylist(),
            strict=True,
        )
    )


def _split_ticks(days: int) -> PartitionedRows:
    """Records of three symbols over `days` days, split by bronze's own partitioning."""
    day_ns = 86_400 * 10**9
    first = int(T0.timestamp()) * 10**9
    batches = [
        tick_pb2.TickBatch(
            symbol=symbol,
            event_time_unix_nanos=[first + d * day_ns + i for i in range(5)],
            prices=[10.0] * 5,
            sizes=[1.0] * 5,
            trade_ids=[f"{symbol}-{d}-{i}" for i in range(5)],
        ).SerializeToString()
        for d in range(days)
        for symbol in ("AAPL", "MSFT", "IBM")
    ]
    records = [decode_tick_batch(b) for b in batches]
    return ticks_partitions(records, 0, list(range(len(records))), first)


def test_rows_split_by_partition_are_filed_as_pyiceberg_files_them(
    iceberg_catalog: SqlCatalog,
) -> None:
    ticks = ensure_tables(iceberg_catalog)["bronze.ticks"]
    reference = iceberg_catalog.create_table(
        "bronze.ticks_reference",
        schema=TICKS.schema,
        partition_spec=TICKS.spec,
        properties=TICKS.all_properties,
    )
    split = _split_ticks(days=2)

    written = LakeWriter().append(ticks, split, {(TOPIC, 0): 6}, GROUP)
    reference.append(split.whole())

    assert written == 30
    table = iceberg_catalog.load_table("bronze.ticks")
    # One file per (day, bucket), holding what pyiceberg's own split puts there.
    assert _files_by_partition(table) == _files_by_partition(reference)
    assert len(table.inspect.files()) == len(split.parts) == 6
    assert sorted(table.scan().to_arrow()["trade_id"].to_pylist()) == sorted(
        split.whole()["trade_id"].to_pylist()
    )
    assert len(table.snapshots()) == 1


def test_split_rows_are_replayed_by_their_kafka_position(iceberg_catalog: SqlCatalog) -> None:
    ticks = ensure_tables(iceberg_catalog)["bronze.ticks"]
    writer = LakeWriter()
    split = _split_ticks(days=1)  # offsets 0..2, one symbol each
    first = PartitionedRows(
        split.spec,
        [(v, rows.filter(pa.compute.less(rows["kafka_offset"], 2))) for v, rows in split.parts],
    )
    writer.append(ticks, first, {(TOPIC, 0): 2}, GROUP)

    assert writer.append(ticks, first, {(TOPIC, 0): 2}, GROUP) is None
    assert writer.append(ticks, split, {(TOPIC, 0): 3}, GROUP) == 5
    assert _count(iceberg_catalog, "bronze.ticks") == 15


def test_rows_split_for_another_spec_are_split_again(iceberg_catalog: SqlCatalog) -> None:
    ticks = ensure_tables(iceberg_catalog)["bronze.ticks"]
    reference = iceberg_catalog.create_table(
        "bronze.ticks_reference", schema=TICKS.schema, partition_spec=TICKS.spec
    )
    split = _split_ticks(days=2)
    # Claimed to be split by the bars' spec (as if the table's spec had evolved since).
    stale = PartitionedRows(BARS.spec, [(("1m", 0, 0), split.whole())])

    LakeWriter().append(ticks, stale, {(TOPIC, 0): 6}, GROUP)
    reference.append(split.whole())

    table = iceberg_catalog.load_table("bronze.ticks")
    assert _files_by_partition(table) == _files_by_partition(reference)
