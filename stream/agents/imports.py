"""imports: imported bars on the bars topic -> `silver.bars`, with their source.

`ImportHistory` publishes bars (Yahoo, Alpha Vantage, CSV, synthetic) straight to the bars
topic; this agent lands them in the lake. Bars built from trades travel the same topic but
are written by the bars agent, exactly once with its state, so they are skipped here.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from financelake.services.ingestion.records import BarSource
from financelake.stream.agents.core import Emit, LakeAgent, Record
from financelake.stream.convert import bar_columns, bars_rows


class ImportsAgent(LakeAgent):
    """Stateless: replays are skipped by offset."""

    name = "imports"

    def handle(
        self, partition: int, records: Sequence[Record]
    ) -> tuple[pa.Table | None, list[Emit]]:
        columns = bar_columns([r.value for r in records])
        imported = columns.take(columns.source != BarSource.TRADES.value)
        return (bars_rows(imported) if len(imported) else None), []
