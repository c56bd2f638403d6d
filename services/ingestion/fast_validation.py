"""A columnar fast path for the contract's TickBatch rules (tick.proto).

protovalidate walks a 1,000-trade batch element by element through CEL: ~480 µs, most of
the ingestion server's time. These checks prove the same rules on whole columns (numpy over
the packed wire bytes, one set per string column): ~160 µs. They only ever say "valid
for certain"; anything else returns False, and protovalidate,
which stays the authority, then decides and reports the exact violations. So the fast path
can make a call cheaper, never change its answer. tests/unit/test_fast_validation.py pins the
rule set: a rule added to tick.proto fails CI until it is covered here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

import numpy as np

# The rules of tick.proto / ingestion_service.proto, as these checks implement them.
SYMBOL = re.compile(r"\^?[A-Z0-9][A-Z0-9.=\-]{0,19}")  # fullmatch: RE2's `$` is end of text
MAX_ROWS = 10_000
MAX_BATCHES = 100
MAX_EXCHANGE_CHARS = 16
MAX_TRADE_ID_CHARS = 64

_TIMES, _PRICES, _SIZES = 2, 3, 4


class TickBatchLike(Protocol):
    """The TickBatch fields the checks read."""

    symbol: str

    @property
    def event_time_unix_nanos(self) -> Sequence[int]: ...
    @property
    def prices(self) -> Sequence[float]: ...
    @property
    def sizes(self) -> Sequence[float]: ...
    @property
    def exchanges(self) -> Sequence[str]: ...
    @property
    def trade_ids(self) -> Sequence[str]: ...

    def SerializeToString(self) -> bytes: ...  # protobuf's name


class TickRequestLike(Protocol):
    """PublishTicksRequest and IngestTicksRequest: a list of batches, nothing else."""

    @property
    def batches(self) -> Sequence[TickBatchLike]: ...


def tick_request_is_valid(request: TickRequestLike) -> bool:
    """True only if every rule of the request and of each batch holds."""
    return 1 <= len(request.batches) <= MAX_BATCHES and all(
        tick_batch_is_valid(batch) for batch in request.batches
    )


def tick_batch_is_valid(batch: TickBatchLike) -> bool:
    """True only if every rule of tick.proto holds for `batch`."""
    rows = len(batch.event_time_unix_nanos)
    exchanges = len(batch.exchanges)
    if not (
        1 <= rows <= MAX_ROWS
        and len(batch.prices) == rows
        and len(batch.sizes) == rows
        and len(batch.trade_ids) == rows
        and exchanges in (0, rows)
        and SYMBOL.fullmatch(batch.symbol)
    ):
        return False
    packed = packed_fields(batch.SerializeToString())
    if packed is None:
        return False
    prices = np.frombuffer(packed[_PRICES], dtype="<f8")
    sizes = np.frombuffer(packed[_SIZES], dtype="<f8")
    return (
        _positive_varints(packed[_TIMES], rows)
        and bool(np.isfinite(prices).all() and (prices > 0).all())
        and bool(np.isfinite(sizes).all() and (sizes >= 0).all())
        and (exchanges == 0 or _strings_fit(batch.exchanges, 0, MAX_EXCHANGE_CHARS, False))
        and _strings_fit(batch.trade_ids, 1, MAX_TRADE_ID_CHARS, True)
    )


def packed_fields(raw: bytes) -> dict[int, memoryview] | None:
    """The payloads of the packed fields 2-4, which the serializer writes right after the
    symbol (fields in number order); None if the bytes are laid out otherwise."""
    view = memoryview(raw)
    found: dict[int, memoryview] = {}
    position = 0
    while position < len(view) and len(found) < 3:
        tag = view[position]
        field, wire_type = tag >> 3, tag & 7
        if wire_type != 2 or field > _SIZES:
            return None
        length, position = _varint(view, position + 1)
        if field != 1:
            found[field] = view[position : position + length]
        position += length
    return found if len(found) == 3 else None


def _varint(view: memoryview, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = view[position]
        value |= (byte & 0x7F) << shift
        position += 1
        if byte < 0x80:
            return value, position
        shift += 7


def _positive_varints(payload: memoryview, rows: int) -> bool:
    """`rows` packed int64s, all > 0: none is the one-byte 0, none takes ten bytes (the
    encoding of every negative int64)."""
    data = np.frombuffer(payload, dtype=np.uint8)
    ends = np.flatnonzero(data < 0x80)
    if len(ends) != rows:
        return False
    lengths = np.diff(ends, prepend=-1)
    zero = (lengths == 1) & (data[ends] == 0)
    return not bool(zero.any() or (lengths >= 10).any())


def _strings_fit(values: Sequence[str], min_chars: int, max_chars: int, unique: bool) -> bool:
    """Every value has min..max characters (code points, as protovalidate counts them),
    and, if asked, no value repeats."""
    # The set is the one pass that makes str objects; lengths are then read per distinct
    # value (exchanges have a handful).
    distinct = set(values)
    if unique and len(distinct) != len(values):
        return False
    lengths = list(map(len, distinct))
    return min(lengths) >= min_chars and max(lengths) <= max_chars
