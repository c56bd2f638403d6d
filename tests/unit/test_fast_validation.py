"""The columnar fast path never accepts what protovalidate refuses, and accepts real batches.

It may only make validation cheaper: whatever it accepts must be valid by the contract's
rules, and if the rules change it must be revisited (the pinned rule set below).
"""

from __future__ import annotations

import itertools
import math
import random
import struct
from typing import Any

import numpy as np
import protovalidate
import pytest
from google.protobuf.message import DecodeError

from financelake.gen.common.v1 import tick_pb2
from financelake.gen.ingestion.v1 import ingestion_service_pb2 as pb
from financelake.services.ingestion.fast_validation import (
    TRADE_IDS_KEY,
    StringRun,
    distinct,
    latest_event_time,
    packed_fields,
    request_batches,
    string_run,
    tick_batch_is_valid,
    tick_request_is_valid,
    valid_request_batches,
)

pytestmark = pytest.mark.unit

# The rules fast_validation.py implements. If this fails, a rule of tick.proto or of the
# tick requests changed: make fast_validation.py prove the new rule set, then update this.
PINNED_RULES = [
    'financelake.common.v1.TickBatch: [buf.validate.message] { cel { id: "tick_batch.columns_same_length" message: "event_time_unix_nanos, prices, sizes and trade_ids must have the same number of rows" expression: "this.prices.size() == this.event_time_unix_nanos.size() && this.sizes.size() == this.event_time_unix_nanos.size() && this.trade_ids.size() == this.event_time_unix_nanos.size()" } cel { id: "tick_batch.exchanges_length" message: "exchanges must be empty or have one entry per row" expression: "this.exchanges.size() == 0 || this.exchanges.size() == this.event_time_unix_nanos.size()" } }',  # noqa: E501
    'financelake.common.v1.TickBatch.symbol: [buf.validate.field] { string { pattern: "^\\\\^?[A-Z0-9][A-Z0-9.=\\\\-]{0,19}$" } }',  # noqa: E501
    "financelake.common.v1.TickBatch.event_time_unix_nanos: [buf.validate.field] { repeated { min_items: 1 max_items: 10000 items { int64 { gt: 0 } } } }",  # noqa: E501
    "financelake.common.v1.TickBatch.prices: [buf.validate.field] { repeated { max_items: 10000 items { double { gt: 0 finite: true } } } }",  # noqa: E501
    "financelake.common.v1.TickBatch.sizes: [buf.validate.field] { repeated { max_items: 10000 items { double { gte: 0 finite: true } } } }",  # noqa: E501
    "financelake.common.v1.TickBatch.exchanges: [buf.validate.field] { repeated { max_items: 10000 items { string { max_len: 16 } } } }",  # noqa: E501
    "financelake.common.v1.TickBatch.trade_ids: [buf.validate.field] { repeated { max_items: 10000 unique: true items { string { min_len: 1 max_len: 64 } } } }",  # noqa: E501
    "financelake.ingestion.v1.PublishTicksRequest.batches: [buf.validate.field] { repeated { min_items: 1 max_items: 100 } }",  # noqa: E501
    "financelake.ingestion.v1.IngestTicksRequest.batches: [buf.validate.field] { repeated { min_items: 1 max_items: 100 } }",  # noqa: E501
]


def _rules(descriptor: Any) -> list[str]:
    lines = []
    options = " ".join(str(descriptor.GetOptions()).split())
    if options:
        lines.append(f"{descriptor.full_name}: {options}")
    for field in descriptor.fields:
        lines.append(f"{field.full_name}: {' '.join(str(field.GetOptions()).split())}")
    return lines


def test_the_rule_set_is_the_one_the_fast_path_implements() -> None:
    current = [
        line
        for message in (tick_pb2.TickBatch, pb.PublishTicksRequest, pb.IngestTicksRequest)
        for line in _rules(message.DESCRIPTOR)
    ]
    assert current == PINNED_RULES


def _valid_batch(rng: random.Random, rows: int) -> tick_pb2.TickBatch:
    symbol = rng.choice(["AAPL", "BRK.B", "BTC-USD", "EURUSD=X", "^GSPC", "A", "Z" * 20])
    return tick_pb2.TickBatch(
        symbol=symbol,
        event_time_unix_nanos=[1_700_000_000_000_000_000 + i * 1_000 for i in range(rows)],
        prices=[rng.uniform(0.01, 5_000.0) for _ in range(rows)],
        sizes=[float(rng.choice([0, 1, 100, 250])) for _ in range(rows)],
        exchanges=[rng.choice(["XNAS", "XNYS", "", "ÉCHANGE-ÜNICODE!"]) for _ in range(rows)]
        if rng.random() < 0.7
        else [],
        trade_ids=_trade_ids(rng, symbol, rows),
    )


def _trade_ids(rng: random.Random, symbol: str, rows: int) -> list[str]:
    """Ids of every shape the wire path distinguishes: equal lengths (read at a fixed
    stride), mixed lengths without the key byte "2" (chained), mixed lengths with it (the
    container), non-ASCII."""
    style = rng.randrange(4)
    if style == 0:
        return [f"{symbol}-{i:012d}" for i in range(rows)]
    if style == 1:
        return [f"{i:o}".replace("2", "8") + "x" * rng.randrange(3) for i in range(rows)]
    if style == 2:
        return [f"{symbol}-{i}" for i in range(rows)]
    return [f"{symbol}-{i}-{'é' * rng.randrange(3)}" for i in range(rows)]


def _mutate(batch: tick_pb2.TickBatch, rng: random.Random) -> None:
    rows = len(batch.prices)
    row = rng.randrange(rows)
    mutation = rng.randrange(20)
    if mutation == 0:
        batch.prices[row] = rng.choice([0.0, -0.0, -1.0, math.nan, math.inf, -math.inf])
    elif mutation == 1:
        batch.sizes[row % len(batch.sizes)] = rng.choice([-0.0, -1e-300, math.nan, math.inf])
    elif mutation == 2:
        times = batch.event_time_unix_nanos  # earlier mutations may have made columns ragged
        times[row % len(times)] = rng.choice([0, -1, -(2**63), 2**63 - 1, 1])
    elif mutation == 3:
        batch.symbol = rng.choice(["", "aapl", "AAPL\n", "A B", "-AAPL", "A" * 21, "ÄAPL", "^"])
    elif mutation == 4:
        exchanges = ["XNAS"] * rows
        exchanges[row] = rng.choice(["X" * 17, "Ü" * 16, "Ü" * 17, "X\x00Y", ""])
        del batch.exchanges[:]
        batch.exchanges.extend(exchanges)
    elif mutation == 5:
        batch.trade_ids[row % len(batch.trade_ids)] = rng.choice(
            ["", "x" * 65, "é" * 64, "é" * 65, "a\x00b"]
        )
    elif mutation == 6:
        ids = len(batch.trade_ids)
        batch.trade_ids[row % ids] = batch.trade_ids[(row + 1) % ids]
    elif mutation == 7:
        column = rng.randrange(3)
        if column == 0:
            batch.prices.append(1.0)
        elif column == 1:
            batch.sizes.append(1.0)
        else:
            batch.event_time_unix_nanos.append(1)
    elif mutation == 8:
        batch.trade_ids.append("extra")
    elif mutation == 9:
        del batch.exchanges[:]
        batch.exchanges.append("XNAS")
    # Other draws leave the batch valid.


@pytest.mark.parametrize("seed", range(4))
def test_whatever_the_fast_path_accepts_protovalidate_accepts(seed: int) -> None:
    rng = random.Random(seed)
    validator = protovalidate.Validator()
    accepted = refused_by_both = 0
    for _ in range(150):
        batch = _valid_batch(rng, rng.choice([1, 2, 7, 100]))
        for _ in range(rng.randrange(3)):
            _mutate(batch, rng)
        fast = tick_batch_is_valid(batch)
        valid = not validator.collect_violations(batch)
        assert not (fast and not valid), batch
        accepted += fast
        refused_by_both += not fast and not valid
    assert accepted > 30, "the fast path accepts too little to be worth it"
    assert refused_by_both > 30, "the mutations do not exercise the rules"


def test_real_batches_take_the_fast_path() -> None:
    rng = random.Random(7)
    for rows in (1, 1_000, 10_000):
        assert tick_batch_is_valid(_valid_batch(rng, rows))
    assert not tick_batch_is_valid(_valid_batch(rng, 10_001))


@pytest.mark.parametrize(("count", "valid"), [(0, False), (1, True), (100, True), (101, False)])
def test_request_batch_count_limits(count: int, valid: bool) -> None:
    rng = random.Random(count)
    request = pb.PublishTicksRequest(batches=[_valid_batch(rng, 2) for _ in range(count)])
    assert tick_request_is_valid(request) is valid
    assert (not protovalidate.Validator().collect_violations(request)) is valid


def _wire_trade_ids(ids: list[str]) -> tuple[StringRun | None, int]:
    """The trade ids of a batch without exchanges as `string_run` reads them; the bytes'
    length."""
    raw = tick_pb2.TickBatch(
        symbol="A",
        event_time_unix_nanos=[1] * len(ids),
        prices=[1.0] * len(ids),
        sizes=[1.0] * len(ids),
        trade_ids=ids,
    ).SerializeToString()
    packed = packed_fields(raw)
    assert packed is not None
    return string_run(raw, packed.end, len(ids), TRADE_IDS_KEY), len(raw)


def _values(run: StringRun) -> list[str]:
    return [bytes(run.data[a:b]).decode() for a, b in itertools.pairwise(run.offsets)]


def _packed_times(payload: memoryview) -> list[int]:
    """A packed times payload as protobuf reads it: the field of a batch holding only it."""
    length, prefix = len(payload), bytearray()
    while length >= 0x80:
        prefix.append(length & 0x7F | 0x80)
        length >>= 7
    prefix.append(length)
    batch = tick_pb2.TickBatch.FromString(bytes([0x12, *prefix]) + bytes(payload))
    return list(batch.event_time_unix_nanos)


@pytest.mark.parametrize(
    "ids",
    [
        [f"AAPL-{i:012d}" for i in range(1_000)],  # equal lengths, "2" inside
        ["1b4e28ba-2fa1-11d2-883f-0016d3cca427", "6ba7b810-9dad-11d1-80b4-00c04fd430c8"],
        ["T1", "T10", "T100", "x"],  # mixed lengths, no "2"
        [f"AAPL-{i}" for i in range(5_000)],  # serials, a stretch per digit count
        ["é", "ü"],
    ],
)
def test_trade_ids_are_read_off_the_wire_when_their_layout_is_provable(ids: list[str]) -> None:
    run, size = _wire_trade_ids(ids)
    assert run is not None
    assert _values(run) == ids
    assert run.end == size


def test_mixed_length_trade_ids_holding_their_key_byte_are_left_to_the_container() -> None:
    # Chained, the "2"s break the chain; as stretches of equal lengths, there are too many.
    assert _wire_trade_ids(["A-2", "A-12", "A-123", "A-1234", "A-12", "A-2"])[0] is None


def _run_of(values: list[str]) -> StringRun:
    encoded = [v.encode() for v in values]
    offsets = np.concatenate([[0], np.cumsum([len(e) for e in encoded])]).astype(np.int64)
    widths = {len(e) for e in encoded}
    width = widths.pop() if len(widths) == 1 else None  # as the wire reader tells it
    return StringRun(offsets, np.frombuffer(b"".join(encoded), np.uint8), 0, width)


@pytest.mark.parametrize(
    ("values", "unique"),
    [
        ([f"AAPL-{i:012d}" for i in range(1_000)], True),
        ([f"AAPL-{i % 999:012d}" for i in range(1_000)], False),
        # Equal widths of 8 or more: words read in place, the last one overlapping.
        ([f"{i:08d}" for i in range(300)] + ["00000007"], False),
        (["AAPL-000000000001", "AAPL-000000000002"], True),
        (["AAPL-0000000000017", "AAPL-0000000000071"], True),
        (["AAPL-0000000000017", "AAPL-0000000000017"], False),
        (["a", "a\x00"], True),  # zero padding must not make them equal
        (["x", "yy", "x"], False),
        (["x", "yy", "z" * 127], True),
        (["", ""], False),
        (["only"], True),
    ],
)
def test_distinct_proves_uniqueness_and_never_passes_a_repeat(
    values: list[str], unique: bool
) -> None:
    assert distinct(_run_of(values)) is unique


def test_a_request_is_sliced_into_the_bytes_of_each_batch() -> None:
    rng = random.Random(5)
    batches = [_valid_batch(rng, rows) for rows in (1, 300, 7)]
    raw = pb.IngestTicksRequest(batches=batches).SerializeToString()

    entries = request_batches(raw)

    assert entries is not None
    assert [bytes(e) for e in entries] == [b.SerializeToString() for b in batches]
    assert tick_request_is_valid(pb.IngestTicksRequest.FromString(raw), raw)
    # Anything but batches (a field this code does not know): no slicing.
    assert request_batches(raw + b"\x10\x01") is None


def test_a_column_split_across_two_runs_is_left_to_protovalidate() -> None:
    # Legal protobuf a foreign encoder may write: the second run of prices, after the trade
    # ids, holds a NaN the first run does not show.
    head = tick_pb2.TickBatch(
        symbol="A",
        event_time_unix_nanos=[1, 2],
        prices=[1.0],
        sizes=[1.0, 1.0],
        trade_ids=["a", "b"],
    ).SerializeToString()
    raw = head + tick_pb2.TickBatch(prices=[math.nan]).SerializeToString()
    batch = tick_pb2.TickBatch.FromString(raw)
    assert batch.prices[0] == 1.0
    assert math.isnan(batch.prices[1])

    assert not tick_batch_is_valid(batch, raw)
    assert protovalidate.Validator().collect_violations(batch)


@pytest.mark.parametrize("seed", range(3))
def test_the_latest_time_read_off_the_wire_is_the_latest_trade(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(300):
        rows = int(rng.integers(1, 60))
        # Nanoseconds of this century (nine-byte varints), ties and neighbours included.
        times = rng.integers(2**56, 2**56 + int(rng.choice([10, 2**20, 2**62])), rows)
        if rng.random() < 0.2:
            times[int(rng.integers(rows))] = int(rng.integers(1, 2**50))  # a shorter varint
        raw = tick_pb2.TickBatch(
            symbol="A",
            event_time_unix_nanos=times.tolist(),
            prices=[1.0] * rows,
            sizes=[1.0] * rows,
        ).SerializeToString()
        latest = latest_event_time(raw, rows)
        if (times >= 2**56).all():
            assert latest == int(times.max())
        else:
            assert latest is None


def _corrupt(raw: bytes, rng: random.Random) -> bytes:
    """The request's bytes, cut short, with a byte changed or with bytes appended."""
    damage = rng.randrange(4)
    if damage == 0:
        return raw[: rng.randrange(len(raw))]
    if damage == 1:
        at = rng.randrange(len(raw))
        return raw[:at] + bytes([rng.randrange(256)]) + raw[at + 1 :]
    if damage == 2:
        return raw + rng.choice([b"\x0a", b"\x0a\x05", b"\x10\x01", b"\x0a\x00"])
    return raw


@pytest.mark.parametrize("seed", range(4))
def test_whatever_is_read_off_the_wire_is_what_the_parser_reads_and_valid(seed: int) -> None:
    rng = random.Random(seed)
    validator = protovalidate.Validator()
    read = 0
    for _ in range(150):
        batches = [_valid_batch(rng, rng.choice([1, 2, 7, 100])) for _ in range(rng.randint(1, 3))]
        for batch in batches:
            if rng.random() < 0.7:  # most venues have ASCII codes
                batch.exchanges[:] = [e if e.isascii() else "XASX" for e in batch.exchanges]
            for _ in range(rng.randrange(3) * (rng.random() < 0.5)):
                _mutate(batch, rng)
        raw = _corrupt(pb.IngestTicksRequest(batches=batches).SerializeToString(), rng)

        wire = valid_request_batches(raw)

        if wire is None:
            continue
        read += 1
        request = pb.IngestTicksRequest.FromString(raw)  # raises if the bytes were not whole
        assert not validator.collect_violations(request)
        assert len(wire) == len(request.batches)
        for got, batch in zip(wire, request.batches, strict=True):
            assert bytes(got.raw) == batch.SerializeToString()
            assert got.symbol == batch.symbol
            assert got.rows == len(batch.event_time_unix_nanos)
            assert _packed_times(got.times) == list(batch.event_time_unix_nanos)
            assert got.prices.tolist() == list(batch.prices)
            assert got.sizes.tolist() == list(batch.sizes)
            assert (_values(got.exchanges) if got.exchanges else []) == list(batch.exchanges)
            assert _values(got.trade_ids) == list(batch.trade_ids)
    assert read > 5, "the draws leave the wire path nothing to read"


def test_real_requests_are_read_off_the_wire() -> None:
    rng = random.Random(3)
    batch = _valid_batch(rng, 1_000)
    batch.trade_ids[:] = [f"{batch.symbol}-{i:012d}" for i in range(1_000)]
    del batch.exchanges[:]
    batch.exchanges.extend(["XNAS", "XNYS", "IEXG"] * 333 + ["XNAS"])
    raw = pb.IngestTicksRequest(batches=[batch, batch]).SerializeToString()

    wire = valid_request_batches(raw)

    assert wire is not None
    assert [w.rows for w in wire] == [1_000, 1_000]
    # Left to the parser: text that is not ASCII (its UTF-8 check), a repeated trade id.
    batch.trade_ids[7] = "é"
    assert valid_request_batches(pb.IngestTicksRequest(batches=[batch]).SerializeToString()) is None
    batch.trade_ids[7] = batch.trade_ids[8]
    assert valid_request_batches(pb.IngestTicksRequest(batches=[batch]).SerializeToString()) is None


def _field(key: int, payload: bytes) -> bytes:
    return bytes([key, len(payload)]) + payload


@pytest.mark.parametrize(
    "times",
    [
        b"\x01\x81",  # the last time is cut short
        b"\x01",  # fine: the control case
    ],
)
def test_bytes_the_parser_refuses_are_never_read_off_the_wire(times: bytes) -> None:
    one = struct.pack("<d", 1.0)
    batch = b"".join(
        [
            _field(0x0A, b"A"),
            _field(0x12, times),
            _field(0x1A, one),
            _field(0x22, one),
            _field(0x32, b"t"),
        ]
    )
    raw = _field(0x0A, batch)
    try:
        pb.IngestTicksRequest.FromString(raw)
        parsed = True
    except DecodeError:
        parsed = False

    assert parsed is (times == b"\x01")
    assert (valid_request_batches(raw) is not None) is parsed
    # A length that runs past the end, whatever it cuts.
    assert valid_request_batches(raw[:-1]) is None
