"""Columnar market data as the ingestion domain sees it: numpy columns, one symbol each.

Sources (synthetic, csv, yahoo, alphavantage) produce these; `convert.py` turns them into
the Kafka payloads at the edge. No gRPC, Kafka or protobuf here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

Int64s = npt.NDArray[np.int64]
Float64s = npt.NDArray[np.float64]

NANOS_PER_SECOND = 1_000_000_000


class Interval(enum.Enum):
    """Bar widths, with their length in seconds (1d and 1wk are calendar widths)."""

    M1 = "1m"
    M5 = "5m"
    M15 = "15m"
    M30 = "30m"
    H1 = "1h"
    D1 = "1d"
    WK1 = "1wk"

    @property
    def seconds(self) -> int:
        """Nominal width in seconds."""
        return _SECONDS[self]


_SECONDS = {
    Interval.M1: 60,
    Interval.M5: 300,
    Interval.M15: 900,
    Interval.M30: 1800,
    Interval.H1: 3600,
    Interval.D1: 86_400,
    Interval.WK1: 604_800,
}


class BarSource(enum.Enum):
    """Where imported bars came from (recorded with each bar)."""

    TRADES = "trades"
    YAHOO = "yahoo"
    ALPHAVANTAGE = "alphavantage"
    CSV = "csv"
    SYNTHETIC = "synthetic"


@dataclass(frozen=True, eq=False)
class Trades:
    """Trades of one symbol, row i across every column, ordered by event time."""

    symbol: str
    event_time_ns: Int64s
    """Nanoseconds since the Unix epoch, UTC."""
    price: Float64s
    size: Float64s
    trade_id: list[str]
    exchange: list[str] = field(default_factory=list)
    """One venue per row, or empty when the source reports none."""

    def __len__(self) -> int:
        return len(self.event_time_ns)

    def rows(self, start: int, stop: int) -> Trades:
        """Rows [start, stop), sharing the column buffers."""
        return Trades(
            symbol=self.symbol,
            event_time_ns=self.event_time_ns[start:stop],
            price=self.price[start:stop],
            size=self.size[start:stop],
            trade_id=self.trade_id[start:stop],
            exchange=self.exchange[start:stop],
        )


@dataclass(frozen=True, eq=False)
class Bars:
    """OHLCV bars of one symbol and interval, ordered by start time."""

    symbol: str
    interval: Interval
    source: BarSource
    start_time_ns: Int64s
    """Inclusive window start, nanoseconds since the Unix epoch, UTC."""
    open: Float64s
    high: Float64s
    low: Float64s
    close: Float64s
    volume: Float64s
    vwap: Float64s
    """0 where the source gives none."""
    trade_count: Int64s
    """0 where the source gives none."""
    adjusted: bool = False
    """True when prices are split/dividend adjusted."""

    def __len__(self) -> int:
        return len(self.start_time_ns)

    def rows(self, start: int, stop: int) -> Bars:
        """Rows [start, stop), sharing the column buffers."""
        return Bars(
            symbol=self.symbol,
            interval=self.interval,
            source=self.source,
            start_time_ns=self.start_time_ns[start:stop],
            open=self.open[start:stop],
            high=self.high[start:stop],
            low=self.low[start:stop],
            close=self.close[start:stop],
            volume=self.volume[start:stop],
            vwap=self.vwap[start:stop],
            trade_count=self.trade_count[start:stop],
            adjusted=self.adjusted,
        )
