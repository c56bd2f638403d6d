"""Valid-by-default protobuf messages for tests; each test overrides what it is about."""

from __future__ import annotations

from collections.abc import Sequence

from financelake.gen.common.v1 import tick_pb2

FIRST_TRADE_NANOS = 1_700_000_000_000_000_000


def tick_batch(
    symbol: str = "AAPL",
    prices: Sequence[float] = (190.5, 190.6),
    exchanges: Sequence[str] = (),
    trade_id_prefix: str = "t",
) -> tick_pb2.TickBatch:
    """A batch of one trade per price, one nanosecond apart, 100 shares each."""
    rows = len(prices)
    return tick_pb2.TickBatch(
        symbol=symbol,
        event_time_unix_nanos=[FIRST_TRADE_NANOS + i for i in range(rows)],
        prices=list(prices),
        sizes=[100.0] * rows,
        exchanges=list(exchanges),
        trade_ids=[f"{trade_id_prefix}{i}" for i in range(rows)],
    )
