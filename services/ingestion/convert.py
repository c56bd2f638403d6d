"""Protobuf <-> ingestion domain, at the edge: Kafka records out, import requests in."""

from __future__ import annotations

import time
from collections.abc import Sequence

from google.protobuf.timestamp_pb2 import Timestamp

from financelake.gen.common.v1 import bar_pb2, tick_pb2
from financelake.gen.common.v1.corporate_action_pb2 import CorporateAction
from financelake.gen.ingestion.v1 import import_pb2
from financelake.gen.ingestion.v1 import ingestion_service_pb2 as pb
from financelake.services.errors import FieldViolation, InvalidInput
from financelake.services.ingestion.imports import CsvInput, ImportRequest, ImportSource
from financelake.services.ingestion.records import (
    NANOS_PER_SECOND,
    Bars,
    BarSource,
    Interval,
    Trades,
)
from financelake.services.ingestion.sources import RowProblem
from financelake.services.ingestion.sources.corporate_actions import CorporateActions
from financelake.services.ingestion.sources.synthetic_model import SyntheticOptions

INTERVALS: dict[bar_pb2.Interval, Interval] = {
    bar_pb2.INTERVAL_1M: Interval.M1,
    bar_pb2.INTERVAL_5M: Interval.M5,
    bar_pb2.INTERVAL_15M: Interval.M15,
    bar_pb2.INTERVAL_30M: Interval.M30,
    bar_pb2.INTERVAL_1H: Interval.H1,
    bar_pb2.INTERVAL_1D: Interval.D1,
    bar_pb2.INTERVAL_1WK: Interval.WK1,
}
INTERVAL_PROTOS = {interval: number for number, interval in INTERVALS.items()}
SOURCE_PROTOS: dict[BarSource, bar_pb2.BarSource] = {
    BarSource.TRADES: bar_pb2.BAR_SOURCE_TRADES,
    BarSource.YAHOO: bar_pb2.BAR_SOURCE_YAHOO,
    BarSource.ALPHAVANTAGE: bar_pb2.BAR_SOURCE_ALPHAVANTAGE,
    BarSource.CSV: bar_pb2.BAR_SOURCE_CSV,
    BarSource.SYNTHETIC: bar_pb2.BAR_SOURCE_SYNTHETIC,
}
_IMPORT_SOURCES = {
    import_pb2.IMPORT_SOURCE_YAHOO: ImportSource.YAHOO,
    import_pb2.IMPORT_SOURCE_ALPHAVANTAGE: ImportSource.ALPHAVANTAGE,
    import_pb2.IMPORT_SOURCE_SYNTHETIC: ImportSource.SYNTHETIC,
    import_pb2.IMPORT_SOURCE_CSV: ImportSource.CSV,
}


def timestamp(time_ns: int) -> Timestamp:
    """A Timestamp from nanoseconds since the epoch."""
    seconds, nanos = divmod(time_ns, NANOS_PER_SECOND)
    return Timestamp(seconds=seconds, nanos=nanos)


def _nanos(value: Timestamp) -> int:
    return value.seconds * NANOS_PER_SECOND + value.nanos


def tick_batch(trades: Trades) -> tick_pb2.TickBatch:
    """One symbol's trades as the ticks topic's payload (columns copied in C via lists)."""
    return tick_pb2.TickBatch(
        symbol=trades.symbol,
        event_time_unix_nanos=trades.event_time_ns.tolist(),
        prices=trades.price.tolist(),
        sizes=trades.size.tolist(),
        exchanges=trades.exchange,
        trade_ids=trades.trade_id,
    )


def bar_messages(bars: Bars) -> list[bar_pb2.Bar]:
    """Each bar as the bars topic's payload."""
    interval = INTERVAL_PROTOS[bars.interval]
    source = SOURCE_PROTOS[bars.source]
    return [
        bar_pb2.Bar(
            symbol=bars.symbol,
            interval=interval,
            start_time=timestamp(start),
            open=o,
            high=h,
            low=lo,
            close=c,
            volume=v,
            vwap=w,
            trade_count=n,
            source=source,
            adjusted=bars.adjusted,
        )
        for start, o, h, lo, c, v, w, n in zip(
            bars.start_time_ns.tolist(),
            bars.open.tolist(),
            bars.high.tolist(),
            bars.low.tolist(),
            bars.close.tolist(),
            bars.volume.tolist(),
            bars.vwap.tolist(),
            bars.trade_count.tolist(),
            strict=True,
        )
    ]


def corporate_actions(actions: CorporateActions, source: BarSource) -> list[CorporateAction]:
    """Each dividend or split as the actions topic's payload."""
    return [
        CorporateAction(
            symbol=actions.symbol,
            ex_date=timestamp(time_ns),
            dividend=dividend,
            split_ratio=ratio,
            source=SOURCE_PROTOS[source],
        )
        for time_ns, dividend, ratio in zip(
            actions.time_ns.tolist(),
            actions.dividend.tolist(),
            actions.split_ratio.tolist(),
            strict=True,
        )
    ]


def row_errors(problems: Sequence[RowProblem]) -> list[import_pb2.RowError]:
    """Refused source rows as the progress message reports them."""
    return [
        import_pb2.RowError(
            line=p.line,
            field=p.field,
            reason=p.reason,
            time=timestamp(p.time_ns) if p.time_ns is not None else None,
        )
        for p in problems
    ]


def import_request(request: pb.ImportHistoryRequest) -> ImportRequest:
    """The domain form of a (contract-validated) ImportHistoryRequest."""
    source = _IMPORT_SOURCES[request.source]
    interval = INTERVALS.get(request.interval)
    synthetic = request.synthetic
    wants_trades = synthetic.output == import_pb2.SYNTHETIC_OUTPUT_TRADES
    if interval is None and not (source is ImportSource.SYNTHETIC and wants_trades):
        raise InvalidInput(
            "an interval is required to import bars",
            violations=[FieldViolation("interval", "required for bars", "REQUIRED")],
        )
    csv = None
    if source is ImportSource.CSV:
        which = request.csv.WhichOneof("input")
        if which is None:
            raise InvalidInput(
                "a csv import needs csv.path or csv.data",
                violations=[FieldViolation("csv.input", "path or data is required", "REQUIRED")],
            )
        csv = CsvInput(
            path=request.csv.path if which == "path" else None,
            data=request.csv.data if which == "data" else None,
            column_mapping=dict(request.csv.column_mapping),
            default_symbol=request.csv.default_symbol,
        )
    return ImportRequest(
        source=source,
        symbols=tuple(request.symbols),
        interval=interval,
        start_ns=_nanos(request.start_time) if request.HasField("start_time") else None,
        end_ns=_nanos(request.end_time) if request.HasField("end_time") else time.time_ns(),
        adjusted=request.adjusted,
        csv=csv,
        synthetic=SyntheticOptions.with_defaults(
            seed=synthetic.seed,
            start_price=synthetic.start_price,
            annual_drift=synthetic.annual_drift,
            annual_volatility=synthetic.annual_volatility,
            jumps_per_day=synthetic.jumps_per_day,
            calendar=synthetic.calendar,
            trades_per_minute=synthetic.trades_per_minute,
        ),
        synthetic_trades=wants_trades,
    )
