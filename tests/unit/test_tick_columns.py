"""TickBatch bytes -> columns: the C reader equals the protobuf parser on every input it
accepts, and declines the rest to it."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pytest
from google.protobuf.message import DecodeError

from financelake.gen.common.v1 import tick_pb2
from financelake.services.ingestion.fast_validation import string_run
from financelake.stream._tick_wire import read_tick_batch
from financelake.stream.tick_columns import TickColumns, decode_tick_batch


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
    assert isinstance(columns.trade_ids, pa.Array)
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
        (["XNAS", "", "BATS-Z", "X" * 16], True),
        (["XNAS", "Börse", "東証"], False),  # not ASCII: protobuf checks the UTF-8
        (["XNAS", "A*B", "ARCX", "X*", "BATS-Z"], True),  # the key byte inside values
        (["XNAS", "X" * 128, "X" * 20_000], True),  # two- and three-byte lengths
    ],
    ids=["mixed-widths", "utf8", "key-byte-in-values", "long"],
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
    ("exchanges", "trade_ids"),
    [
        ([], [f"T-{i:06d}" for i in range(30)]),  # equal lengths, "2" (the key) inside
        ([], [f"T-{i}" for i in range(1_000)]),  # serials
        (["XNAS"] * 6, ["2", "12", "123", "1234", "12", "2"]),
        (["XNAS", "A*B", "ARCX", "X*", "BATS-Z"], list("abcde")),
    ],
    ids=["equal-lengths", "serials", "key-bytes", "after-exchanges-with-key-bytes"],
)
def test_trade_ids_read_off_the_wire_are_the_message_values(
    exchanges: list[str], trade_ids: list[str]
) -> None:
    columns = _decoded(exchanges, trade_ids)
    assert isinstance(columns.trade_ids, pa.Array)
    assert _values(columns.trade_ids) == trade_ids
    assert _values(columns.exchanges) == exchanges


def test_exchanges_interleaved_with_trade_ids_decode() -> None:
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


def test_a_column_split_across_two_runs_decodes() -> None:
    head = tick_pb2.TickBatch(
        symbol="X", event_time_unix_nanos=[1, 2], prices=[1.5], sizes=[1, 2], trade_ids=["a", "b"]
    ).SerializeToString()
    columns = decode_tick_batch(head + tick_pb2.TickBatch(prices=[2.5]).SerializeToString())
    assert columns.price.tolist() == [1.5, 2.5]
    assert _values(columns.trade_ids) == ["a", "b"]


def test_fields_in_another_order_still_decode() -> None:
    # A foreign serializer may write the symbol last.
    batch = tick_pb2.TickBatch(
        event_time_unix_nanos=[5, 6], prices=[1.5, 2.5], sizes=[1, 2], trade_ids=["a", "b"]
    )
    raw = batch.SerializeToString() + tick_pb2.TickBatch(symbol="ZZ").SerializeToString()
    columns = decode_tick_batch(raw)
    assert columns.symbol == "ZZ"
    assert columns.event_time_ns.tolist() == [5, 6]
    assert columns.exchanges == []


@pytest.mark.parametrize(
    "raw",
    [
        bytes([0x12, 1, 0x80]),  # a packed time cut short
        bytes([0x12, 2, 0x01]),  # a payload past the end
        bytes([0x0A, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]),  # a length past 32 bits
        bytes([0x19, 1, 2]),  # an unpacked price cut short
        bytes([0x1A, 3, *b"abc"]),  # packed prices not whole doubles
        bytes([0x0B]),  # a group
        bytes([0x0A, 2, 0xC3, 0x28]),  # a symbol that is no UTF-8
    ],
    ids=["time", "payload", "length", "price", "packed-prices", "group", "utf8"],
)
def test_bytes_protobuf_refuses_are_a_decode_error(raw: bytes) -> None:
    assert read_tick_batch(raw) is None
    with pytest.raises(DecodeError):
        decode_tick_batch(raw)


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
    packed = tick_pb2.TickBatch(event_time_unix_nanos=times).SerializeToString()
    assert len(packed) == 3 + 9 * len(times)  # key, length, then nine bytes a time
    rows = len(times)
    batch = tick_pb2.TickBatch(
        event_time_unix_nanos=times, prices=[1.0] * rows, sizes=[1.0] * rows, trade_ids=["t"] * rows
    )
    assert decode_tick_batch(batch.SerializeToString()).event_time_ns.tolist() == times


# ---- differential: the C reader against protobuf's parser on valid and corrupted bytes ----


def _varint(value: int) -> bytes:
    value &= 2**64 - 1  # negative int64s are ten bytes, two's complement
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _text(rng: np.random.Generator) -> str:
    # ASCII with the fields' key bytes ("\n", "*", "2", ...) in it.
    return "".join(rng.choice(list("\n\x12\x1a*2AB-09xyz"), int(rng.integers(0, 12))))


def _encodings(rng: np.random.Generator) -> bytes:
    """One batch's fields, each written as some serializer might: split into several runs in
    any order, packed or not, among unknown fields."""
    rows = int(rng.integers(0, 40))
    times = rng.choice([1, 300, 2**40, 1_700_000_000 * 10**9, 2**63 - 1, -5], rows).tolist()
    prices = rng.normal(100, 50, rows).tolist()
    parts: list[bytes] = []
    for field, values in ((2, times), (3, prices), (4, rng.uniform(0, 9, rows).tolist())):
        cut = int(rng.integers(0, rows + 1))
        for chunk in (values[:cut], values[cut:]):
            if not chunk:
                continue
            if rng.random() < 0.5:  # packed, as protobuf writes it
                parts.append(
                    tick_pb2.TickBatch(
                        **{tick_pb2.TickBatch.DESCRIPTOR.fields_by_number[field].name: chunk}
                    ).SerializeToString()
                )
            elif field == 2:
                parts.append(b"".join(_key(2, 0) + _varint(v) for v in chunk))
            else:
                parts.append(b"".join(_key(field, 1) + np.float64(v).tobytes() for v in chunk))
    exchanges = [_text(rng) for _ in range(rows)] if rng.random() < 0.5 else []
    for field, strings in ((5, exchanges), (6, [_text(rng) for _ in range(rows)])):
        parts.extend(_key(field, 2) + _varint(len(s)) + s.encode() for s in strings)
    for _ in range(int(rng.integers(0, 3))):
        parts.append(tick_pb2.TickBatch(symbol=_text(rng)).SerializeToString())
    for _ in range(int(rng.integers(0, 3))):
        field = int(rng.integers(7, 3000))
        wire = int(rng.choice([0, 1, 2, 5]))
        body = {0: _varint(int(rng.integers(0, 2**40))), 1: bytes(8), 5: bytes(4)}
        parts.append(_key(field, wire) + body.get(wire, _varint(3) + b"abc"))
    order = rng.permutation(len(parts))
    return b"".join(parts[i] for i in order)


def _corrupted(raw: bytes, rng: np.random.Generator) -> bytes:
    data = bytearray(raw)
    for _ in range(int(rng.integers(1, 4))):
        kind = rng.integers(0, 3)
        if kind == 0 and data:
            data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        elif kind == 1 and data:
            del data[int(rng.integers(0, len(data))) :]
        else:
            data.insert(int(rng.integers(0, len(data) + 1)), int(rng.integers(0, 256)))
    return bytes(data)


def _same_as_protobuf(raw: bytes) -> bool:
    """True when the C reader declined the bytes or read what protobuf parses from them;
    False when it read bytes protobuf refuses, or read them otherwise."""
    read = read_tick_batch(raw)
    if read is None:
        return True
    try:
        message = tick_pb2.TickBatch.FromString(raw)
    except DecodeError:
        return False
    symbol, times, prices, sizes, exchange_offsets, exchanges, trade_id_offsets, trade_ids = read

    def strings(offsets: bytes, data: bytes) -> list[str]:
        bounds = np.frombuffer(offsets, np.int64).tolist()
        return [data[a:b].decode() for a, b in itertools.pairwise(bounds)]

    return (
        symbol == message.symbol
        and np.frombuffer(times, np.int64).tolist() == list(message.event_time_unix_nanos)
        and np.array_equal(np.frombuffer(prices), np.asarray(message.prices), equal_nan=True)
        and np.array_equal(np.frombuffer(sizes), np.asarray(message.sizes), equal_nan=True)
        and strings(exchange_offsets, exchanges) == list(message.exchanges)
        and strings(trade_id_offsets, trade_ids) == list(message.trade_ids)
    )


def test_the_reader_reads_every_valid_encoding_as_protobuf_does() -> None:
    rng = np.random.default_rng(20261127)
    for _ in range(2_000):
        raw = _encodings(rng)
        assert read_tick_batch(raw) is not None, raw  # valid and ASCII: never declined
        assert _same_as_protobuf(raw), raw


def test_corrupted_bytes_are_declined_or_read_as_protobuf_reads_them() -> None:
    rng = np.random.default_rng(7)
    read = 0
    for _ in range(5_000):
        raw = _corrupted(_encodings(rng), rng)
        assert _same_as_protobuf(raw), raw
        read += read_tick_batch(raw) is not None
    assert read > 500, "the corruptions leave the reader nothing to read"
