"""Compaction and snapshot expiry against a real SqlCatalog: rows and stream positions survive,
races with the stream are retried, and `financelake lake ...` runs them."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table import CommitTableResponse, Table
from pyiceberg.table.update import TableRequirement, TableUpdate
from pyiceberg.typedef import Record
from typer.testing import CliRunner

from financelake.services.cli import app
from financelake.services.settings import Settings
from financelake.stream.lake import TICKS, LakeWriter, ensure_tables, offsets_key
from financelake.stream.lake.catalog import open_catalog
from financelake.stream.lake.maintenance import compact, expire_snapshots, positional_metadata

pytestmark = pytest.mark.integration

TOPIC = "financelake.ticks.v1"
GROUP = "lake-writer"
STATE_KEY = "financelake.state.financelake-stream.bars.p0"  # an agent checkpoint
DAY_ONE = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
DAY_TWO = DAY_ONE + timedelta(days=1)
SYMBOLS = ("AAPL", "MSFT", "IBM", "NVDA")
BATCH_ROWS = 2 * len(SYMBOLS)
FUTURE = datetime(2100, 1, 1, tzinfo=UTC)


class RacingCatalog(SqlCatalog):
    """A second client of the same catalog that lets another writer commit just before each of
    its own commits (one race per entry of `races`): the window between a maintenance job's
    read and its commit."""

    def __init__(self, name: str, **properties: str) -> None:
        super().__init__(name, **properties)
        self.races: list[Callable[[], object]] = []

    def commit_table(
        self,
        table: Table,
        requirements: tuple[TableRequirement, ...],
        updates: tuple[TableUpdate, ...],
    ) -> CommitTableResponse:
        if self.races:
            self.races.pop(0)()
        return super().commit_table(table, requirements, updates)


@pytest.fixture
def racing_catalog(iceberg_catalog: SqlCatalog) -> Iterator[RacingCatalog]:
    catalog = RacingCatalog(iceberg_catalog.name, **iceberg_catalog.properties)
    yield catalog
    catalog.engine.dispose()


def _batch(table: Table, first_offset: int, kafka_partition: int = 0) -> pa.Table:
    """One tick per (day, symbol) at consecutive offsets; event times jump back and forth
    between batches, so a compacted file is sorted only if compaction sorted it."""
    rows = [
        {
            "symbol": symbol,
            "event_time": day + timedelta(seconds=(first_offset + i) * 37 % 101),
            "price": 100.0 + first_offset + i,
            "size": 10.0,
            "exchange": "XNAS",
            "trade_id": f"{kafka_partition}-{first_offset + i}",
            "ingest_time": DAY_TWO,
            "kafka_partition": kafka_partition,
            "kafka_offset": first_offset + i,
        }
        for i, (day, symbol) in enumerate((d, s) for d in (DAY_ONE, DAY_TWO) for s in SYMBOLS)
    ]
    return pa.Table.from_pylist(rows, schema=table.schema().as_arrow())


def _ingest(table: Table, batches: int, first_offset: int = 0) -> int:
    """`batches` LakeWriter commits of one batch each, every one a file per partition; returns
    the next offset."""
    writer = LakeWriter()
    offset = first_offset
    for _ in range(batches):
        writer.append(table, _batch(table, offset), {(TOPIC, 0): offset + BATCH_ROWS}, GROUP)
        offset += BATCH_ROWS
    return offset


def _checkpoint(table: Table, value: str) -> None:
    """A commit as an agent checkpointing its state: its own rows, its own summary key."""
    table.append(_batch(table, 0, kafka_partition=7), snapshot_properties={STATE_KEY: value})


def _rows(table: Table) -> pa.Table:
    rows = table.scan().to_arrow()
    return rows.sort_by([("kafka_partition", "ascending"), ("kafka_offset", "ascending")])


def _files_per_partition(table: Table) -> Counter[Record]:
    return Counter(task.file.partition for task in table.scan().plan_files())


def _offsets(table: Table) -> dict[tuple[str, int], int]:
    return LakeWriter().committed_offsets(table, GROUP)


def _parquet_files(tmp_path: Path) -> set[str]:
    return {path.resolve().as_uri() for path in (tmp_path / "warehouse").rglob("*.parquet")}


def _referenced_files(table: Table) -> set[str]:
    referenced: list[str] = table.inspect.all_data_files()["file_path"].to_pylist()
    return {Path(path.removeprefix("file://")).resolve().as_uri() for path in referenced}


def test_compaction_keeps_rows_and_positions_in_fewer_files(iceberg_catalog: SqlCatalog) -> None:
    ticks = ensure_tables(iceberg_catalog)["bronze.ticks"]
    _checkpoint(ticks, '{"window":1}')
    _ingest(ticks, batches=4)
    rows = _rows(ticks)
    offsets = _offsets(ticks)
    positions = positional_metadata(ticks)
    files = _files_per_partition(ticks)
    assert positions.keys() == {offsets_key(GROUP), STATE_KEY}
    assert min(files.values()) >= 4

    result = compact(ticks)

    reloaded = iceberg_catalog.load_table("bronze.ticks")
    assert _rows(reloaded).equals(rows)
    assert _files_per_partition(reloaded) == dict.fromkeys(files, 1)
    assert result.snapshot_id == reloaded.metadata.current_snapshot_id
    assert (result.partitions, result.files_before, result.files_after) == (
        len(files),
        files.total(),
        len(files),
    )
    assert result.rows == rows.num_rows
    assert result.bytes_after < result.bytes_before
    assert result.attempts == 1
    # The compaction's own summary carries every position, each with its newest value.
    current = reloaded.current_snapshot()
    assert current is not None
    assert current.summary is not None
    assert current.summary.operation.value == "overwrite"
    assert {key: current.summary[key] for key in positions} == positions
    assert positional_metadata(reloaded) == positions
    assert _offsets(reloaded) == offsets
    for task in reloaded.scan().plan_files():
        times = pq.read_table(reloaded.io.new_input(task.file.file_path).open())["event_time"]
        assert times.to_pylist() == sorted(times.to_pylist())


def test_the_stream_resumes_exactly_once_after_compaction(iceberg_catalog: SqlCatalog) -> None:
    ticks = ensure_tables(iceberg_catalog)["bronze.ticks"]
    next_offset = _ingest(ticks, batches=3)
    compact(ticks)
    writer = LakeWriter()

    # A worker restarted behind the lake replays its last batch, then goes on.
    last = next_offset - BATCH_ROWS
    replayed = writer.append(ticks, _batch(ticks, last), {(TOPIC, 0): next_offset}, GROUP)
    then = {(TOPIC, 0): next_offset + BATCH_ROWS}
    written = writer.append(ticks, _batch(ticks, next_offset), then, GROUP)

    assert replayed is None
    assert written == BATCH_ROWS
    reloaded = iceberg_catalog.load_table("bronze.ticks")
    assert reloaded.scan().to_arrow().num_rows == 4 * BATCH_ROWS
    assert _offsets(reloaded) == then


def test_nothing_is_committed_when_no_partition_needs_compacting(
    iceberg_catalog: SqlCatalog,
) -> None:
    ticks = ensure_tables(iceberg_catalog)["bronze.ticks"]
    _ingest(ticks, batches=3)
    snapshots = len(ticks.snapshots())

    every_file_is_big = compact(ticks, target_file_bytes=1)
    too_few_files = compact(ticks, min_files=4)
    compact(ticks)
    already_compacted = compact(ticks)

    for result in (every_file_is_big, too_few_files, already_compacted):
        assert result.snapshot_id is None
        assert result.files_before == result.files_after == 0
    assert len(iceberg_catalog.load_table("bronze.ticks").snapshots()) == snapshots + 1


def test_where_limits_compaction_to_the_files_it_may_match(iceberg_catalog: SqlCatalog) -> None:
    ticks = ensure_tables(iceberg_catalog)["bronze.ticks"]
    _ingest(ticks, batches=3)
    rows = _rows(ticks)
    before = _files_per_partition(ticks)
    midnight = DAY_TWO.replace(hour=0, minute=0)

    result = compact(ticks, where=f"event_time < '{midnight.isoformat()}'")

    assert result.snapshot_id is not None
    day_one = (DAY_ONE.date() - datetime(1970, 1, 1).date()).days
    after = _files_per_partition(ticks)
    assert {count for p, count in after.items() if p[0] == day_one} == {1}
    assert {p: n for p, n in after.items() if p[0] != day_one} == {
        p: n for p, n in before.items() if p[0] != day_one
    }
    assert _rows(ticks).equals(rows)


def test_expiry_after_compaction_keeps_the_stream_exactly_once(
    iceberg_catalog: SqlCatalog,
) -> None:
    ticks = ensure_tables(iceberg_catalog)["bronze.ticks"]
    _checkpoint(ticks, '{"window":1}')
    next_offset = _ingest(ticks, batches=3)
    compacted = compact(ticks)
    rows = _rows(ticks)
    positions = positional_metadata(ticks)
    before = {s.snapshot_id for s in ticks.snapshots()}

    result = expire_snapshots(ticks, older_than=FUTURE)

    reloaded = iceberg_catalog.load_table("bronze.ticks")
    assert [s.snapshot_id for s in reloaded.snapshots()] == [compacted.snapshot_id]
    assert set(result.expired) == before - {compacted.snapshot_id}
    assert result.remaining == 1
    assert _rows(reloaded).equals(rows)  # the compacted files hold every row
    assert positional_metadata(reloaded) == positions
    assert _offsets(reloaded) == {(TOPIC, 0): next_offset}
    last = next_offset - BATCH_ROWS
    assert (
        LakeWriter().append(reloaded, _batch(reloaded, last), {(TOPIC, 0): next_offset}, GROUP)
        is None
    )


def test_expiry_keeps_the_chain_back_to_the_oldest_position(iceberg_catalog: SqlCatalog) -> None:
    ticks = ensure_tables(iceberg_catalog)["bronze.ticks"]
    ticks.append(_batch(ticks, 0, kafka_partition=9))  # carries no position
    _checkpoint(ticks, '{"window":1}')
    _checkpoint(ticks, '{"window":2}')  # the newest state: the oldest carrier to keep
    next_offset = _ingest(ticks, batches=2)
    ticks.append(_batch(ticks, 0, kafka_partition=8))  # a head without positions
    chain = [s.snapshot_id for s in ticks.snapshots()]
    positions = positional_metadata(ticks)

    result = expire_snapshots(ticks, older_than=FUTURE)

    assert result.expired == tuple(chain[:2])
    reloaded = iceberg_catalog.load_table("bronze.ticks")
    assert [s.snapshot_id for s in reloaded.snapshots()] == chain[2:]
    assert positional_metadata(reloaded) == positions
    assert positions[STATE_KEY] == '{"window":2}'
    assert _offsets(reloaded) == {(TOPIC, 0): next_offset}


def test_expiry_honours_age_and_retain_last(iceberg_catalog: SqlCatalog) -> None:
    ticks = ensure_tables(iceberg_catalog)["bronze.ticks"]
    _ingest(ticks, batches=4)
    compact(ticks)
    chain = [s.snapshot_id for s in ticks.snapshots()]

    too_young = expire_snapshots(ticks, older_than=datetime(2000, 1, 1, tzinfo=UTC))
    kept_three = expire_snapshots(ticks, older_than=FUTURE, retain_last=3)

    assert too_young.expired == ()
    assert too_young.remaining == len(chain)
    assert kept_three.expired == tuple(chain[:-3])
    assert [s.snapshot_id for s in ticks.snapshots()] == chain[-3:]
    with pytest.raises(ValueError, match="timezone"):
        expire_snapshots(ticks, older_than=datetime(2100, 1, 1))


def test_a_compaction_racing_an_append_keeps_the_appended_rows(
    iceberg_catalog: SqlCatalog, racing_catalog: RacingCatalog
) -> None:
    ensure_tables(iceberg_catalog)
    ticks = racing_catalog.load_table("bronze.ticks")
    next_offset = _ingest(ticks, batches=3)
    concurrent = _batch(ticks, next_offset)
    then = {(TOPIC, 0): next_offset + BATCH_ROWS}
    # The stream commits a batch after the compaction has read and rewritten the files.
    racing_catalog.races.append(
        lambda: LakeWriter().append(
            iceberg_catalog.load_table("bronze.ticks"), concurrent, then, GROUP
        )
    )
    expected = pa.concat_tables([_rows(ticks), concurrent]).sort_by(
        [("kafka_partition", "ascending"), ("kafka_offset", "ascending")]
    )

    result = compact(ticks)

    assert result.attempts == 2
    reloaded = iceberg_catalog.load_table("bronze.ticks")
    assert _rows(reloaded).equals(expected)
    assert result.snapshot_id == reloaded.metadata.current_snapshot_id
    assert _offsets(reloaded) == then
    assert LakeWriter().append(reloaded, concurrent, then, GROUP) is None
    # The compaction's rewrite is kept as written: the race only cost a second commit.
    assert result.files_before == 3 * len(_files_per_partition(reloaded))


def test_a_compaction_racing_another_drops_its_own_files(
    iceberg_catalog: SqlCatalog, racing_catalog: RacingCatalog, tmp_path: Path
) -> None:
    ensure_tables(iceberg_catalog)
    ticks = racing_catalog.load_table("bronze.ticks")
    _ingest(ticks, batches=3)
    rows = _rows(ticks)
    winner: list[int | None] = []
    racing_catalog.races.append(
        lambda: winner.append(compact(iceberg_catalog.load_table("bronze.ticks")).snapshot_id)
    )

    result = compact(ticks)

    # The other compaction replaced the files this one rewrote: it starts over and finds
    # nothing left to do.
    assert result.snapshot_id is None
    assert result.attempts == 2
    reloaded = iceberg_catalog.load_table("bronze.ticks")
    assert reloaded.metadata.current_snapshot_id == winner[0]
    assert _rows(reloaded).equals(rows)
    assert _parquet_files(tmp_path) == _referenced_files(reloaded)


def test_a_compaction_losing_every_race_raises_and_leaves_no_files(
    iceberg_catalog: SqlCatalog, racing_catalog: RacingCatalog, tmp_path: Path
) -> None:
    ensure_tables(iceberg_catalog)
    ticks = racing_catalog.load_table("bronze.ticks")
    next_offset = _ingest(ticks, batches=2)
    elsewhere = iceberg_catalog.load_table("bronze.ticks")
    racing_catalog.races += [
        partial(_ingest, elsewhere, 1, next_offset + race * BATCH_ROWS) for race in range(2)
    ]

    with pytest.raises(CommitFailedException):
        compact(ticks, max_attempts=2)

    reloaded = iceberg_catalog.load_table("bronze.ticks")
    assert reloaded.scan().to_arrow().num_rows == 4 * BATCH_ROWS
    assert _offsets(reloaded) == {(TOPIC, 0): next_offset + 2 * BATCH_ROWS}
    assert _parquet_files(tmp_path) == _referenced_files(reloaded)


def test_an_expiry_racing_an_append_keeps_the_new_head(
    iceberg_catalog: SqlCatalog, racing_catalog: RacingCatalog
) -> None:
    ensure_tables(iceberg_catalog)
    ticks = racing_catalog.load_table("bronze.ticks")
    _checkpoint(ticks, '{"window":1}')
    next_offset = _ingest(ticks, batches=2)
    compacted = compact(ticks)
    racing_catalog.races.append(
        lambda: _ingest(iceberg_catalog.load_table("bronze.ticks"), 1, next_offset)
    )

    result = expire_snapshots(ticks, older_than=FUTURE)

    reloaded = iceberg_catalog.load_table("bronze.ticks")
    # Planned again on the new head: the compaction (which carries the agent state) and the
    # concurrent append (the newest offsets) both stay.
    assert [s.parent_snapshot_id for s in reloaded.snapshots()] == [None, compacted.snapshot_id]
    assert result.remaining == 2
    assert positional_metadata(reloaded)[STATE_KEY] == '{"window":1}'
    assert _offsets(reloaded) == {(TOPIC, 0): next_offset + BATCH_ROWS}


def test_a_table_with_library_commit_retries_is_refused(iceberg_catalog: SqlCatalog) -> None:
    iceberg_catalog.create_namespace("bronze")
    plain = iceberg_catalog.create_table(
        TICKS.identifier, schema=TICKS.schema, partition_spec=TICKS.spec
    )
    with pytest.raises(ValueError, match="ensure_tables"):
        compact(plain)


@pytest.fixture
def lake_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SqlCatalog]:
    """FINANCELAKE_HOME in tmp_path and no other FINANCELAKE_ variable, as the CLI will see
    it; yields the lake catalog of those settings."""
    for key in os.environ:
        if key.startswith("FINANCELAKE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("FINANCELAKE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps tables to 80 columns when not on a terminal
    catalog = open_catalog(Settings())
    assert isinstance(catalog, SqlCatalog)
    yield catalog
    catalog.engine.dispose()


def _cells(output: str, table: str) -> list[str]:
    """The cells of the row of `table` in a rich table printed to `output`."""
    (line,) = (line for line in output.splitlines() if f" {table} " in line)
    return [cell.strip() for cell in line.split("│")[1:-1]]


def test_cli_compacts_and_expires_every_lake_table(lake_home: SqlCatalog) -> None:
    ticks = ensure_tables(lake_home)["bronze.ticks"]
    next_offset = _ingest(ticks, batches=3)
    partitions = len(_files_per_partition(ticks))
    runner = CliRunner()

    compacted = runner.invoke(app, ["lake", "compact", "--target-file-mb", "64"])

    assert compacted.exit_code == 0, compacted.output
    row = _cells(compacted.stdout, "bronze.ticks")
    assert row[1:5] == [str(partitions), str(3 * partitions), str(partitions), str(3 * BATCH_ROWS)]
    assert _cells(compacted.stdout, "silver.bars")[-1] == "nothing to compact"
    assert _cells(compacted.stdout, "gold.alerts")[-1] == "nothing to compact"

    expired = runner.invoke(app, ["lake", "expire-snapshots", "--older-than-hours", "0"])

    assert expired.exit_code == 0, expired.output
    assert _cells(expired.stdout, "bronze.ticks") == ["bronze.ticks", "4", "3", "1"]
    assert _cells(expired.stdout, "silver.bars") == ["silver.bars", "0", "0", "0"]
    reloaded = lake_home.load_table("bronze.ticks")
    assert _offsets(reloaded) == {(TOPIC, 0): next_offset}
    assert reloaded.scan().to_arrow().num_rows == 3 * BATCH_ROWS


def test_cli_maintains_only_the_tables_named(lake_home: SqlCatalog) -> None:
    ensure_tables(lake_home)
    runner = CliRunner()

    named = runner.invoke(app, ["lake", "compact", "--table", "gold.alerts"])
    unknown = runner.invoke(app, ["lake", "expire-snapshots", "--table", "gold.nope"])
    bad_filter = runner.invoke(app, ["lake", "compact", "--where", "event_time <<< 1"])

    assert named.exit_code == 0, named.output
    assert "gold.alerts" in named.stdout
    assert "bronze.ticks" not in named.stdout
    assert unknown.exit_code == 1
    assert "gold.nope" in unknown.stderr
    assert bad_filter.exit_code == 2
    assert "--where" in bad_filter.stderr
