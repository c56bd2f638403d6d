"""features: bars on the bars topic -> indicators per symbol and interval in `gold.features`.

Incremental: one `FeatureEngine` per partition advances each (symbol, interval) by the bars
that close, never recomputing history, and is checkpointed with each commit. Repeated bars
(the bars topic is at least once) are recognised and skipped by the engine.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import pyarrow as pa

from financelake.stream.agents.core import Emit, Record, State, StatefulAgent
from financelake.stream.convert import bar_columns
from financelake.stream.features_engine import FeatureEngine


class FeaturesAgent(StatefulAgent[FeatureEngine]):
    """Bars of every source and interval to their indicators."""

    name = "features"

    def new_state(self) -> FeatureEngine:
        return FeatureEngine()

    def restore_state(self, data: State) -> FeatureEngine:
        return FeatureEngine.from_dict(data)

    def handle(
        self, partition: int, records: Sequence[Record]
    ) -> tuple[pa.Table | None, list[Emit]]:
        bars = bar_columns([r.value for r in records])
        rows = self.states[partition].apply(
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
