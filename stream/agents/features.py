"""features: bars on the bars topic -> indicators per symbol and interval in `gold.features`.

Incremental: one `FeatureEngine` per partition advances each (symbol, interval) by the bars
that close, never recomputing history, and is checkpointed with each commit. Repeated bars
(the bars topic is at least once) are recognised and skipped by the engine.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import pyarrow as pa
from pyiceberg.table import Table

from financelake.stream.agents.core import CommitPolicy, Emit, LakeAgent, Record, State
from financelake.stream.convert import bar_columns
from financelake.stream.features_engine import FeatureEngine


class FeaturesAgent(LakeAgent):
    """Bars of every source and interval to their indicators."""

    name = "features"
    stateful = True

    def __init__(
        self, *, table: Table, topic: str, group: str, policy: CommitPolicy | None = None
    ) -> None:
        super().__init__(table=table, topic=topic, group=group, policy=policy)
        self._engines: dict[int, FeatureEngine] = {}

    def load_state(self, partition: int, state: State | None) -> None:
        self._engines[partition] = (
            FeatureEngine() if state is None else FeatureEngine.from_dict(state)
        )

    def dump_state(self, partition: int) -> State | None:
        return self._engines[partition].to_dict()

    def forget(self, partition: int) -> None:
        self._engines.pop(partition, None)

    def handle(
        self, partition: int, records: Sequence[Record]
    ) -> tuple[pa.Table | None, list[Emit]]:
        bars = bar_columns([r.value for r in records])
        rows = self._engines[partition].apply(
            bars.symbol,
            bars.interval,
            bars.start_time_ns,
            bars.open,
            bars.high,
            bars.low,
            bars.close,
            bars.volume,
            bars.revision,
            now_ns=time.time_ns(),
        )
        return rows, []
