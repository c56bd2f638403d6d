"""TickBatch bytes -> columns: the wire-level fast path equals the message's own accessors."""

from __future__ import annotations

import numpy as np
import pytest

from financelake.gen.common.v1 import tick_pb2
from financelake.stream.tick_columns import decode_tick_batch, decode_varints


def test_columns_equal_the_message_fields_for_any_magnitude_of_time() -> None:
    rng = np.random.default_rng(3)
    # 1 byte to 9 bytes per varint: small test times up to nanoseconds in 2100.
    times = np.sort(rng.integers(1, 4_102_444_800 * 10**9, 2000, dtype=np.int64))
    times[:5] = [1, 127, 128, 16_383, 16_384]
    batch = tick_pb2.TickBatch(
        symbol="BRK.B",
        event_time_unix_nanos=times.tolist(),
        prices=rng.uniform(0.0001, 1e6, 2000).tolist(),
        sizes=rng.uniform(0, 1e4, 2000).tolist(),
        exchanges=["XNYS", "ARCX"] * 1000,
        trade_ids=[f"id-{i}" for i in range(2000)],
    )
    columns = decode_tick_batch(batch.SerializeToString())
    assert columns.symbol == "BRK.B"
    assert np.array_equal(columns.event_time_ns, times)
    assert np.array_equal(columns.price, np.asarray(batch.prices))
    assert np.array_equal(columns.size, np.asarray(batch.sizes))
    assert columns.exchanges == list(batch.exchanges)
    assert columns.trade_ids == list(batch.trade_ids)
    assert len(columns) == 2000


def test_fields_in_another_order_still_decode() -> None:
    # A foreign serializer may write the symbol last; the decoder falls back to the message.
    batch = tick_pb2.TickBatch(
        event_time_unix_nanos=[5, 6], prices=[1.5, 2.5], sizes=[1, 2], trade_ids=["a", "b"]
    )
    raw = batch.SerializeToString() + tick_pb2.TickBatch(symbol="ZZ").SerializeToString()
    columns = decode_tick_batch(raw)
    assert columns.symbol == "ZZ"
    assert columns.event_time_ns.tolist() == [5, 6]
    assert columns.exchanges == []


@pytest.mark.parametrize(
    "payload",
    [bytes([0x80]), bytes([0x01, 0xFF]), bytes([0xFF] * 9 + [0x01])],
    ids=["unterminated", "ends-inside-a-value", "ten-bytes-is-negative"],
)
def test_malformed_varints_are_refused(payload: bytes) -> None:
    with pytest.raises(ValueError, match="varint"):
        decode_varints(payload)


def test_ragged_columns_are_refused() -> None:
    batch = tick_pb2.TickBatch(
        symbol="X", event_time_unix_nanos=[1, 2], prices=[1.0], sizes=[1, 1], trade_ids=["a", "b"]
    )
    with pytest.raises(ValueError, match="ragged columns"):
        decode_tick_batch(batch.SerializeToString())
