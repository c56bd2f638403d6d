"""Market-data domain <-> protobuf, at the edge: bars and symbol summaries out, requests in."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from google.protobuf.timestamp_pb2 import Timestamp

from financelake.gen.common.v1 import bar_pb2
from financelake.gen.marketdata.v1 import marketdata_pb2
from financelake.gen.marketdata.v1 import marketdata_service_pb2 as pb
from financelake.services.errors import FieldViolation, InvalidInput
from financelake.services.ingestion.convert import (
    INTERVAL_PROTOS,
    INTERVALS,
    SOURCE_PROTOS,
    timestamp,
)
from financelake.services.ingestion.records import NANOS_PER_SECOND, Interval
from financelake.services.marketdata.bar_store import NANOS_PER_MICRO, SymbolSummary
from financelake.services.marketdata.indicators import Indicators
from financelake.services.marketdata.live import LiveBar, LiveQuote

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


def bars_arrow_stream(bars: pa.Table, symbol: str, interval: Interval) -> bytes:
    """`bars` (`bar_store.SERVED_COLUMNS`) as one Arrow IPC stream, the symbol and interval
    in its schema metadata: no per-bar work, the columns are written as they are held."""
    table = bars.replace_schema_metadata({"symbol": symbol, "interval": interval.value})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    data: bytes = sink.getvalue().to_pybytes()
    return data


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


def live_bar_message(bar: LiveBar) -> bar_pb2.Bar:
    """A bar of the live view as a common.v1.Bar."""
    return bar_pb2.Bar(
        symbol=bar.symbol,
        interval=INTERVAL_PROTOS[bar.interval],
        start_time=timestamp(bar.start_time_ns),
        open=bar.open,
        high=bar.high,
        low=bar.low,
        close=bar.close,
        volume=bar.volume,
        vwap=bar.vwap,
        trade_count=bar.trade_count,
        source=_SOURCES[bar.source],
        adjusted=bar.adjusted,
        revision=bar.revision,
    )


def quote_message(quote: LiveQuote) -> marketdata_pb2.Quote:
    """GetQuote's answer from the live view."""
    message = marketdata_pb2.Quote(
        symbol=quote.symbol,
        last_price=quote.trade.price,
        last_size=quote.trade.size,
        last_trade_time=timestamp(quote.trade.time_ns),
    )
    if quote.current_bar is not None:
        message.current_bar.CopyFrom(live_bar_message(quote.current_bar))
    message.staleness.FromNanoseconds(quote.staleness_ns)
    return message


def lake_quote_message(summary: SymbolSummary, now_ns: int) -> marketdata_pb2.Quote:
    """GetQuote's answer for a symbol with no live trade: the close and start of its latest
    bar in the lake (no size, no bar in progress), and how old that is."""
    message = marketdata_pb2.Quote(
        symbol=summary.symbol,
        last_price=summary.last_price,
        last_trade_time=timestamp(summary.last_data_ns),
    )
    message.staleness.FromNanoseconds(max(0, now_ns - summary.last_data_ns))
    return message


def indicators_response(result: Indicators) -> pb.GetIndicatorsResponse:
    """GetIndicators' answer: the bars' times and one series per spec, in request order.
    Values still warming up stay NaN (a double NaN on the wire, "NaN" in JSON)."""
    return pb.GetIndicatorsResponse(
        times=[timestamp(time_ns) for time_ns in result.times_ns.tolist()],
        series=[
            marketdata_pb2.IndicatorSeries(
                indicator=values.spec.text,
                lines=[
                    marketdata_pb2.IndicatorLine(name=name, values=line.tolist())
                    for name, line in values.lines.items()
                ],
            )
            for values in result.series
        ],
    )
