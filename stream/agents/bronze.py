"""bronze: the ticks topic -> `bronze.ticks`, one row per trade with its Kafka position.

Columnar all the way: each record is a `TickBatch`, whose packed columns become numpy and
Arrow arrays; no Python object per trade.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from financelake.gen.common.v1 import tick_pb2
from financelake.stream.agents.core import Emit, LakeAgent, Record
from financelake.stream.lake.tables import TICKS

_SCHEMA = TICKS.schema.as_arrow()
_MICROS = pa.timestamp("us", tz="UTC")


def ticks_rows(
    batches: Sequence[tick_pb2.TickBatch],
    partition: int,
    offsets: Sequence[int],
    ingest_time_ns: int,
) -> pa.Table:
    """Rows of `bronze.ticks` for the given batches (each from the record at `offsets[i]`)."""
    counts = np.fromiter((len(b.prices) for b in batches), np.int64, len(batches))
    record_of_row = np.repeat(np.arange(len(batches), dtype=np.int32), counts)
    symbols = pa.DictionaryArray.from_arrays(
        pa.array(record_of_row), pa.array([b.symbol for b in batches], pa.string())
    ).dictionary_decode()
    times_ns = np.concatenate([np.asarray(b.event_time_unix_nanos, np.int64) for b in batches])
    prices = np.concatenate([np.asarray(b.prices, np.float64) for b in batches])
    sizes = np.concatenate([np.asarray(b.sizes, np.float64) for b in batches])
    exchanges: list[str | None] = []
    trade_ids: list[str] = []
    for batch, count in zip(batches, counts.tolist(), strict=True):
        # The contract allows no exchanges at all (unknown venue): null, not "".
        exchanges.extend(batch.exchanges if batch.exchanges else [None] * count)
        trade_ids.extend(batch.trade_ids)
    rows = len(prices)
    columns = [
        symbols,
        pa.array(times_ns // 1000, pa.int64()).cast(_MICROS),
        pa.array(prices, pa.float64()),
        pa.array(sizes, pa.float64()),
        pa.array(exchanges, pa.string()),
        pa.array(trade_ids, pa.string()),
        pa.array(np.full(rows, ingest_time_ns // 1000, np.int64)).cast(_MICROS),
        pa.array(np.full(rows, partition, np.int32)),
        pa.array(np.repeat(np.asarray(offsets, np.int64), counts)),
    ]
    return pa.Table.from_arrays(columns, schema=_SCHEMA)


class BronzeAgent(LakeAgent):
    """Stateless: replays are skipped by offset, rows carry their Kafka position."""

    name = "bronze"

    def handle(self, partition: int, records: Sequence[Record]) -> tuple[pa.Table, list[Emit]]:
        rows = ticks_rows(
            [r.value for r in records], partition, [r.offset for r in records], time.time_ns()
        )
        return rows, []
