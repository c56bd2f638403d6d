"""Market-data domain <-> protobuf, at the edge: bars and symbol summaries out, requests in."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from google.protobuf.timestamp_pb2 import Timestamp

from financelake.gen.common.v1 import bar_pb2
from financelake.gen.marketdata.v1 import marketdata_pb2
from financelake.services.errors import FieldViolation, InvalidInput
from financelake.services.ingestion.convert import INTERVALS, SOURCE_PROTOS, timestamp
from financelake.services.ingestion.records import NANOS_PER_SECOND, Interval
from financelake.services.marketdata.bar_store import NANOS_PER_MICRO, SymbolSummary

_SOURCES: dict[str, bar_pb2.BarSource] = {
    source.value: number for source, number in SOURCE_PROTOS.items()
}


def nanos(value: Timestamp) -> int:
    """Nanoseconds since the epoch of a Timestamp."""
    return value.seconds * NANOS_PER_SECOND + value.nanos


def interval(number: bar_pb2.Interval) -> Interval:
    """The domain interval of a request's `interval` (protovalidate already refuses 0)."""
    try:
        return INTERVALS[number]
    except KeyError:
        raise InvalidInput(
            "interval is required",
            violations=[FieldViolation("interval", "must be a defined interval, not unset")],
        ) from None


def bar_messages(bars: pa.Table, symbol: str, number: bar_pb2.Interval) -> list[bar_pb2.Bar]:
    """Each row of `bars` (`bar_store.SERVED_COLUMNS`) as a common.v1.Bar."""
    starts = pc.cast(bars["start_time"], pa.int64()).to_pylist()
    return [
        bar_pb2.Bar(
            symbol=symbol,
            interval=number,
            start_time=timestamp(start * NANOS_PER_MICRO),
            open=o,
            high=h,
            low=lo,
            close=c,
            volume=v,
            vwap=w,
            trade_count=n,
            source=_SOURCES.get(source, bar_pb2.BAR_SOURCE_UNSPECIFIED),
            adjusted=adjusted,
            revision=revision,
        )
        for start, o, h, lo, c, v, w, n, source, adjusted, revision in zip(
            starts,
            bars["open"].to_pylist(),
            bars["high"].to_pylist(),
            bars["low"].to_pylist(),
            bars["close"].to_pylist(),
            bars["volume"].to_pylist(),
            bars["vwap"].to_pylist(),
            bars["trade_count"].to_pylist(),
            bars["source"].to_pylist(),
            bars["adjusted"].to_pylist(),
            bars["revision"].to_pylist(),
            strict=True,
        )
    ]


def symbol_summary(summary: SymbolSummary) -> marketdata_pb2.SymbolSummary:
    """A SymbolSummary as the contract's message."""
    return marketdata_pb2.SymbolSummary(
        symbol=summary.symbol,
        last_price=summary.last_price,
        previous_close=summary.previous_close,
        change=summary.change,
        change_percent=summary.change_percent,
        volume_today=summary.volume_today,
        first_data_time=timestamp(summary.first_data_ns),
        last_data_time=timestamp(summary.last_data_ns),
    )
