"""bronze: the ticks topic -> `bronze.ticks`, one row per trade with its Kafka position.

Columnar all the way: each record arrives as `TickColumns` (numpy columns decoded from the
packed wire bytes), concatenated into Arrow arrays; no Python object per trade besides the
strings Arrow copies.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from financelake.stream.agents.core import Emit, LakeAgent, Record
from financelake.stream.lake.tables import TICKS
from financelake.stream.tick_columns import TickColumns

_SCHEMA = TICKS.schema.as_arrow()
_MICROS = pa.timestamp("us", tz="UTC")


def ticks_rows(
    batches: Sequence[TickColumns],
    partition: int,
    offsets: Sequence[int],
    ingest_time_ns: int,
) -> pa.Table:
    """Rows of `bronze.ticks` for the given batches (each from the record at `offsets[i]`)."""
    counts = np.fromiter((len(b) for b in batches), np.int64, len(batches))
    record_of_row = np.repeat(np.arange(len(batches), dtype=np.int32), counts)
    symbols = pa.DictionaryArray.from_arrays(
        pa.array(record_of_row), pa.array([b.symbol for b in batches], pa.string())
    ).dictionary_decode()
    exchanges: list[str | None] = []
    trade_ids: list[str] = []
    for batch in batches:
        # The contract allows no exchanges at all (unknown venue): null, not "".
        exchanges.extend(batch.exchanges or [None] * len(batch))
        trade_ids.extend(batch.trade_ids)
    rows = int(counts.sum())
    columns = [
        symbols,
        pa.array(np.concatenate([b.event_time_ns for b in batches]) // 1000).cast(_MICROS),
        pa.array(np.concatenate([b.price for b in batches])),
        pa.array(np.concatenate([b.size for b in batches])),
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
