"""Protobuf <-> columnar, at the stream's edge: bars to and from the bars topic and tables.

Imported bars arrive one `Bar` per record; streamed bars leave as `BarFrame`s. Both become
rows of `silver.bars` here, and bar messages become the columns the features and alerts
engines take.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from financelake.gen.common.v1 import bar_pb2
from financelake.services.ingestion.convert import INTERVAL_PROTOS, INTERVALS, SOURCE_PROTOS
from financelake.services.ingestion.records import NANOS_PER_SECOND, BarSource, Interval
from financelake.stream.bars import BarFrame
from financelake.stream.lake.tables import BARS

_BARS_SCHEMA = BARS.schema.as_arrow()
_MICROS = pa.timestamp("us", tz="UTC")
SOURCES = {number: source for source, number in SOURCE_PROTOS.items()}


@dataclass(frozen=True, eq=False)
class BarColumns:
    """Bars decoded from the bars topic, row i across every column, in arrival order."""

    symbol: npt.NDArray[np.str_]
    interval: npt.NDArray[np.str_]
    """Interval names: 1m, 5m, ..."""
    source: npt.NDArray[np.str_]
    start_time_ns: npt.NDArray[np.int64]
    open: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64]
    close: npt.NDArray[np.float64]
    volume: npt.NDArray[np.float64]
    vwap: npt.NDArray[np.float64]
    trade_count: npt.NDArray[np.int64]
    adjusted: npt.NDArray[np.bool_]
    revision: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.start_time_ns)

    def take(self, mask: npt.NDArray[np.bool_]) -> BarColumns:
        """The rows where `mask` holds."""
        return BarColumns(**{name: getattr(self, name)[mask] for name in _BAR_FIELDS})


_BAR_FIELDS = tuple(BarColumns.__dataclass_fields__)


def bar_columns(messages: Sequence[bar_pb2.Bar]) -> BarColumns:
    """Columns of bar messages (one Python pass: bars are few, one per symbol-minute)."""
    return BarColumns(
        symbol=np.array([m.symbol for m in messages], np.str_),
        interval=np.array([INTERVALS[m.interval].value for m in messages], np.str_),
        source=np.array([SOURCES[m.source].value for m in messages], np.str_),
        start_time_ns=np.array(
            [m.start_time.seconds * NANOS_PER_SECOND + m.start_time.nanos for m in messages],
            np.int64,
        ),
        open=np.array([m.open for m in messages], np.float64),
        high=np.array([m.high for m in messages], np.float64),
        low=np.array([m.low for m in messages], np.float64),
        close=np.array([m.close for m in messages], np.float64),
        volume=np.array([m.volume for m in messages], np.float64),
        vwap=np.array([m.vwap for m in messages], np.float64),
        trade_count=np.array([m.trade_count for m in messages], np.int64),
        adjusted=np.array([m.adjusted for m in messages], np.bool_),
        revision=np.array([m.revision for m in messages], np.int64),
    )


def frame_columns(frame: BarFrame, interval: Interval = Interval.M1) -> BarColumns:
    """A streamed `BarFrame` (bars built from trades) as `BarColumns`."""
    n = len(frame)
    return BarColumns(
        symbol=frame.symbol,
        interval=np.full(n, interval.value),
        source=np.full(n, BarSource.TRADES.value),
        start_time_ns=frame.start_time_ns,
        open=frame.open,
        high=frame.high,
        low=frame.low,
        close=frame.close,
        volume=frame.volume,
        vwap=frame.vwap,
        trade_count=frame.trade_count,
        adjusted=np.zeros(n, np.bool_),
        revision=frame.revision,
    )


def bars_rows(bars: BarColumns) -> pa.Table:
    """Rows of `silver.bars`."""
    columns = [
        pa.array(bars.symbol, pa.string()),
        pa.array(bars.interval, pa.string()),
        pa.array(bars.start_time_ns // 1000, pa.int64()).cast(_MICROS),
        pa.array(bars.open, pa.float64()),
        pa.array(bars.high, pa.float64()),
        pa.array(bars.low, pa.float64()),
        pa.array(bars.close, pa.float64()),
        pa.array(bars.volume, pa.float64()),
        pa.array(bars.vwap, pa.float64()),
        pa.array(bars.trade_count, pa.int64()),
        pa.array(bars.source, pa.string()),
        pa.array(bars.adjusted, pa.bool_()),
        pa.array(bars.revision, pa.int32()),
    ]
    return pa.Table.from_arrays(columns, schema=_BARS_SCHEMA)


def bar_messages(bars: BarColumns) -> list[bar_pb2.Bar]:
    """Each bar as the bars topic's payload (revision included)."""
    out: list[bar_pb2.Bar] = []
    for i in range(len(bars)):
        seconds, nanos = divmod(int(bars.start_time_ns[i]), NANOS_PER_SECOND)
        message = bar_pb2.Bar(
            symbol=str(bars.symbol[i]),
            interval=INTERVAL_PROTOS[Interval(str(bars.interval[i]))],
            open=float(bars.open[i]),
            high=float(bars.high[i]),
            low=float(bars.low[i]),
            close=float(bars.close[i]),
            volume=float(bars.volume[i]),
            vwap=float(bars.vwap[i]),
            trade_count=int(bars.trade_count[i]),
            source=SOURCE_PROTOS[BarSource(str(bars.source[i]))],
            adjusted=bool(bars.adjusted[i]),
            revision=int(bars.revision[i]),
        )
        message.start_time.seconds = seconds
        message.start_time.nanos = nanos
        out.append(message)
    return out
