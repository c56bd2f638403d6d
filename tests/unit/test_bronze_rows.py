"""bronze.ticks rows from decoded records: every value where it belongs, text of any script,
null venues where a record reported none."""

import numpy as np
import pyarrow as pa
from pyiceberg.transforms import BucketTransform, DayTransform
from pyiceberg.types import StringType, TimestamptzType

from financelake.gen.common.v1 import tick_pb2
from financelake.stream.agents.bronze import ticks_partitions, ticks_rows
from financelake.stream.lake.tables import SYMBOL_BUCKETS, TICKS
from financelake.stream.tick_columns import TEXT, decode_tick_batch

NS = 1_760_000_000_000_000_000


def _record(
    symbol: str, trade_ids: list[str], exchanges: list[str], times: list[int] | None = None
) -> bytes:
    rows = len(trade_ids)
    return tick_pb2.TickBatch(
        symbol=symbol,
        event_time_unix_nanos=times or [NS + i * 1_000 for i in range(rows)],
        prices=[100.0 + i for i in range(rows)],
        sizes=[float(i) for i in range(rows)],
        exchanges=exchanges,
        trade_ids=trade_ids,
    ).SerializeToString()


def test_rows_carry_each_trade_with_its_record_position() -> None:
    records = [
        decode_tick_batch(_record("AAPL", ["t1", "t2"], ["XNAS", "XNYS"])),
        decode_tick_batch(_record("MSFT", ["t3"], [])),  # no venue reported
        decode_tick_batch(_record("BTC-USD", ["ü-4", "t5"], ["CBSE", "CBSE"])),
    ]
    rows = ticks_rows(records, partition=3, offsets=[10, 11, 12], ingest_time_ns=NS + 5_000)

    assert rows.column("symbol").to_pylist() == ["AAPL", "AAPL", "MSFT", "BTC-USD", "BTC-USD"]
    assert rows.column("trade_id").to_pylist() == ["t1", "t2", "t3", "ü-4", "t5"]
    assert rows.column("exchange").to_pylist() == ["XNAS", "XNYS", None, "CBSE", "CBSE"]
    assert rows.column("kafka_offset").to_pylist() == [10, 10, 11, 12, 12]
    assert set(rows.column("kafka_partition").to_pylist()) == {3}
    assert rows.column("price").to_pylist() == [100.0, 101.0, 100.0, 100.0, 101.0]
    times = rows.column("event_time").cast(pa.int64()).to_numpy()
    np.testing.assert_array_equal(times, (NS + np.array([0, 1, 0, 0, 1]) * 1_000) // 1_000)
    assert set(rows.column("ingest_time").cast(pa.int64()).to_pylist()) == {(NS + 5_000) // 1000}


def test_rows_with_every_venue_are_all_strings() -> None:
    records = [decode_tick_batch(_record("SPY", ["a", "b"], ["ARCX", "BATS"]))]
    rows = ticks_rows(records, partition=0, offsets=[0], ingest_time_ns=NS)
    assert rows.column("exchange").to_pylist() == ["ARCX", "BATS"]
    assert rows.column("exchange").null_count == 0


def test_string_columns_are_built_in_the_tables_own_type() -> None:
    # Otherwise every bronze table would be cast (copied) once more before the append.
    schema = TICKS.schema.as_arrow()
    assert schema.field("trade_id").type == TEXT
    assert schema.field("exchange").type == TEXT


def test_rows_are_split_by_partition_as_pyiceberg_transforms_place_them() -> None:
    midnight = 1_760_054_400 * 1_000_000_000  # 2025-10-10T00:00Z
    second = 1_000_000_000
    records = [
        decode_tick_batch(_record("AAPL", ["a1", "a2"], [])),
        # Straddles midnight with its trades out of time order.
        decode_tick_batch(
            _record(
                "MSFT",
                ["m1", "m2", "m3", "m4"],
                [],
                [midnight + second, midnight - second, midnight + 2 * second, midnight - 5],
            )
        ),
        decode_tick_batch(_record("BTC-USD", ["b1"], [])),
        decode_tick_batch(_record("AAPL", ["a3"], [])),
    ]
    offsets = [10, 11, 12, 13]

    day = DayTransform().transform(TimestamptzType())
    bucket = BucketTransform(SYMBOL_BUCKETS).transform(StringType())
    # With and without a record spanning two days (then rows are split one by one).
    for chosen, partitions in (([0, 1, 2, 3], 4), ([0, 2, 3], 2)):
        step = [records[i] for i in chosen]
        step_offsets = [offsets[i] for i in chosen]

        split = ticks_partitions(step, partition=2, offsets=step_offsets, ingest_time_ns=NS)

        seen = []
        for values, rows in split.parts:
            micros = rows.column("event_time").cast(pa.int64()).to_pylist()
            symbols = rows.column("symbol").to_pylist()
            assert {(day(t), bucket(s)) for t, s in zip(micros, symbols, strict=True)} == {values}
            seen.extend(rows.column("trade_id").to_pylist())
        # One part per partition, every row once, each partition's trades in record order.
        assert len({values for values, _ in split.parts}) == len(split.parts) == partitions
        whole = ticks_rows(step, 2, step_offsets, NS)
        assert sorted(seen) == sorted(whole.column("trade_id").to_pylist())
        assert split.whole().sort_by("trade_id").equals(whole.sort_by("trade_id"))
        aapl = [rows for values, rows in split.parts if values[1] == bucket("AAPL")]
        assert aapl[0].column("trade_id").to_pylist() == ["a1", "a2", "a3"]
        assert aapl[0].column("kafka_offset").to_pylist() == [10, 10, 13]
        assert split.spec == TICKS.spec
