"""TickBatch bytes -> columns: the wire-level fast path equals the message's own accessors."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pytest

from financelake.gen.common.v1 import tick_pb2
from financelake.services.ingestion.fast_validation import string_run
from financelake.stream.tick_columns import TickColumns, decode_tick_batch, decode_varints


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
    assert isinstance(columns.exchanges, pa.Array)  # read off the wire
    assert columns.exchanges.to_pylist() == list(batch.exchanges)
    assert isinstance(columns.trade_ids, pa.Array)  # four stretches of equal lengths
    assert columns.trade_ids.to_pylist() == list(batch.trade_ids)
    assert len(columns) == 2000


def _values(column: Sequence[str] | pa.Array) -> list[str]:
    return column.to_pylist() if isinstance(column, pa.Array) else list(column)


def _decoded(exchanges: list[str], trade_ids: list[str]) -> TickColumns:
    """A serialised batch of these string columns, decoded."""
    rows = len(trade_ids)
    batch = tick_pb2.TickBatch(
        symbol="X",
        event_time_unix_nanos=list(range(1, rows + 1)),
        prices=[1.0] * rows,
        sizes=[1.0] * rows,
        exchanges=exchanges,
        trade_ids=trade_ids,
    )
    return decode_tick_batch(batch.SerializeToString())


@pytest.mark.parametrize(
    ("exchanges", "from_wire"),
    [
        (["XNAS", "", "BATS-Z", "Börse", "東証", "X" * 16], True),
        (["XNAS", "A*B", "ARCX"], True),  # the key byte inside a value, three stretches
        (["XNAS", "A*B", "ARCX", "X*", "BATS-Z"], False),  # and too many: the container
        (["XNAS", "X" * 127], True),
        (["XNAS", "X" * 128], False),  # a two-byte length
    ],
    ids=[
        "mixed-widths-and-utf8",
        "key-byte-in-a-value",
        "key-byte-and-widths",
        "longest-one-byte-length",
        "longer",
    ],
)
def test_exchanges_read_off_the_wire_or_from_the_message_are_the_same(
    exchanges: list[str], from_wire: bool
) -> None:
    # Ids full of the exchanges' key byte "*": they follow the run and must not matter.
    trade_ids = [f"*{i}*" for i in range(len(exchanges))]
    columns = _decoded(exchanges, trade_ids)
    assert isinstance(columns.exchanges, pa.Array) is from_wire
    assert _values(columns.exchanges) == exchanges
    assert _values(columns.trade_ids) == trade_ids


@pytest.mark.parametrize(
    ("exchanges", "trade_ids", "from_wire"),
    [
        ([], [f"T-{i:06d}" for i in range(30)], True),  # equal lengths, "2" inside
        (["XNAS"] * 3, ["1", "10", "100"], True),  # mixed lengths without "2"
        ([], [f"T-{i}" for i in range(1_000)], True),  # serials: stretches, "2" inside
        (["XNAS"] * 6, ["2", "12", "123", "1234", "12", "2"], False),  # neither
        (["XNAS", "A*B", "ARCX", "X*", "BATS-Z"], list("abcde"), False),  # start unknown
    ],
    ids=["equal-lengths", "chained", "stretches", "neither", "after-unread-exchanges"],
)
def test_trade_ids_read_off_the_wire_or_from_the_message_are_the_same(
    exchanges: list[str], trade_ids: list[str], from_wire: bool
) -> None:
    columns = _decoded(exchanges, trade_ids)
    assert isinstance(columns.trade_ids, pa.Array) is from_wire
    assert _values(columns.trade_ids) == trade_ids
    assert _values(columns.exchanges) == exchanges


def test_exchanges_interleaved_with_trade_ids_decode_from_the_message() -> None:
    # Legal protobuf, though no serializer we know writes it: repeated fields interleaved.
    rows = [
        tick_pb2.TickBatch(exchanges=[exchange], trade_ids=[trade_id]).SerializeToString()
        for exchange, trade_id in [("XNAS", "a"), ("ARCX", "b")]
    ]
    head = tick_pb2.TickBatch(
        symbol="X", event_time_unix_nanos=[1, 2], prices=[1.0, 2.0], sizes=[1.0, 1.0]
    ).SerializeToString()
    columns = decode_tick_batch(head + b"".join(rows))
    assert _values(columns.exchanges) == ["XNAS", "ARCX"]
    assert _values(columns.trade_ids) == ["a", "b"]


def test_a_column_split_across_two_runs_decodes_from_the_message() -> None:
    head = tick_pb2.TickBatch(
        symbol="X", event_time_unix_nanos=[1, 2], prices=[1.5], sizes=[1, 2], trade_ids=["a", "b"]
    ).SerializeToString()
    columns = decode_tick_batch(head + tick_pb2.TickBatch(prices=[2.5]).SerializeToString())
    assert columns.price.tolist() == [1.5, 2.5]
    assert _values(columns.trade_ids) == ["a", "b"]


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


@pytest.mark.parametrize(
    "raw",
    [bytes([0x2A, 1, 0x41, 0x2A]), bytes([0x2A, 5, 0x41]), bytes([0x2A, 0x80, 1, 0x41])],
    ids=["key-byte-last", "value-past-the-end", "two-byte-length"],
)
def test_a_string_run_that_cannot_be_proven_is_none_never_an_error(raw: bytes) -> None:
    # An exception here would reach Faust as a decode error, which acknowledges the record
    # unprocessed: it must only ever send the decoder to the message's container.
    assert string_run(raw, 0, 2, 0x2A) is None


def test_nine_byte_times_decode_exactly_at_every_bit() -> None:
    # Every time of this century takes nine bytes: a word-wise decode of its own, checked
    # at the edges of the width and at each single bit.
    rng = np.random.default_rng(9)
    times = [2**56, 2**56 + 1, 2**63 - 1, *(2**56 | 1 << bit for bit in range(56))]
    times += rng.integers(2**56, 2**63 - 1, 500, dtype=np.int64).tolist()
    payload = tick_pb2.TickBatch(event_time_unix_nanos=times).SerializeToString()[3:]
    assert len(payload) == 9 * len(times)  # the packed payload alone, nine bytes a time

    assert decode_varints(payload).tolist() == times
