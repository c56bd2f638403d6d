"""Predictions written to `gold.predictions`, for scoring them later against what happened.

Calls add their predictions to a buffer; a background task appends the buffer to the table
every `flush_interval_s` in one commit (one commit per call would flood the table's history
with tiny snapshots and files). A failed append keeps the rows for the next flush, up to
`max_buffered` rows; beyond that the oldest are dropped and counted, so a lake outage costs
memory in bounds and never fails a Predict call.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass

import pyarrow as pa
from pyiceberg.table import Table

from financelake.stream.lake.tables import PREDICTIONS

logger = logging.getLogger(__name__)

DEFAULT_FLUSH_INTERVAL_S = 2.0
DEFAULT_MAX_BUFFERED = 1_000_000
_SCHEMA = PREDICTIONS.schema.as_arrow()
_NANOS_PER_MICRO = 1_000


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    """One row of gold.predictions."""

    symbol: str
    interval: str
    feature_time_ns: int
    predicted_time_ns: int
    model_name: str
    model_version: str
    probability_up: float
    expected_return: float


class PredictionLog:
    """Buffers predictions and appends them to gold.predictions in the background."""

    def __init__(
        self,
        *,
        flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
        max_buffered: int = DEFAULT_MAX_BUFFERED,
    ) -> None:
        self._flush_interval_s = flush_interval_s
        self._buffer: deque[PredictionRecord] = deque(maxlen=max_buffered)
        self._table: Table | None = None
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0
        self.written = 0

    def add(self, records: list[PredictionRecord]) -> None:
        """Queue rows for the next flush (on the event loop; never blocks)."""
        overflow = len(self._buffer) + len(records) - (self._buffer.maxlen or 0)
        if overflow > 0:
            self.dropped += overflow
        self._buffer.extend(records)

    def use_table(self, table: Table) -> None:
        """Write to `table` (gold.predictions) from now on and start flushing."""
        self._table = table
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="prediction-log")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_interval_s)
            await self.flush()

    async def flush(self) -> None:
        """Append what is buffered in one commit (in a worker thread)."""
        if self._table is None or not self._buffer:
            return
        records = list(self._buffer)
        self._buffer.clear()
        try:
            await asyncio.to_thread(self._table.append, to_arrow(records))
        except Exception:  # the lake may be away for a while: keep the rows and retry
            logger.exception("appending %d predictions failed; retrying", len(records))
            self._buffer.extendleft(reversed(records[-(self._buffer.maxlen or 0) :]))
            return
        self.written += len(records)

    async def stop(self) -> None:
        """Stop the background flushes and write what is left."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        await self.flush()


def to_arrow(records: list[PredictionRecord]) -> pa.Table:
    """The records as a gold.predictions table."""
    return pa.table(
        {
            "symbol": [r.symbol for r in records],
            "interval": [r.interval for r in records],
            "feature_time": pa.array(
                [r.feature_time_ns // _NANOS_PER_MICRO for r in records],
                _SCHEMA.field("feature_time").type,
            ),
            "predicted_time": pa.array(
                [r.predicted_time_ns // _NANOS_PER_MICRO for r in records],
                _SCHEMA.field("predicted_time").type,
            ),
            "model_name": [r.model_name for r in records],
            "model_version": [r.model_version for r in records],
            "probability_up": [r.probability_up for r in records],
            "expected_return": [r.expected_return for r in records],
        },
        schema=_SCHEMA,
    )
