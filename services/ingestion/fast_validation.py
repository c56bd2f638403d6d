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
from typing import NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

# The rules of tick.proto / ingestion_service.proto, as these checks implement them.
SYMBOL = re.compile(r"\^?[A-Z0-9][A-Z0-9.=\-]{0,19}")  # fullmatch: RE2's `$` is end of text
MAX_ROWS = 10_000
MAX_BATCHES = 100
MAX_EXCHANGE_CHARS = 16
MAX_TRADE_ID_CHARS = 64

_TIMES, _PRICES, _SIZES = 2, 3, 4
EXCHANGES_KEY = 5 << 3 | 2
"""The key byte of field 5 (exchanges), length-delimited."""


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
    raw = batch.SerializeToString()
    packed = packed_fields(raw)
    if packed is None:
        return False
    prices = np.frombuffer(packed.payloads[_PRICES], dtype="<f8")
    sizes = np.frombuffer(packed.payloads[_SIZES], dtype="<f8")
    return (
        _positive_varints(packed.payloads[_TIMES], rows)
        and bool(np.isfinite(prices).all() and (prices > 0).all())
        and bool(np.isfinite(sizes).all() and (sizes >= 0).all())
        and (exchanges == 0 or _exchanges_fit(raw, packed.end, batch.exchanges))
        and _strings_fit(batch.trade_ids, 1, MAX_TRADE_ID_CHARS, True)
    )


class PackedFields(NamedTuple):
    """Where a serialised TickBatch keeps its packed columns."""

    payloads: dict[int, memoryview]
    """Field number (2-4) -> its packed payload."""
    end: int
    """Where the fields after them (the string columns) begin."""


def packed_fields(raw: bytes) -> PackedFields | None:
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
    return PackedFields(found, position) if len(found) == 3 else None


class StringRun(NamedTuple):
    """Consecutive entries of one repeated string field, as Arrow lays strings out."""

    offsets: npt.NDArray[np.int64]
    """`count + 1` offsets into `data`: value i is data[offsets[i]:offsets[i + 1]]."""
    data: npt.NDArray[np.uint8]
    end: int
    """Where the bytes after the run begin."""


def string_run(raw: bytes, start: int, count: int, tag: int) -> StringRun | None:
    """The `count` entries of the repeated string field whose one-byte key is `tag`, read
    from the wire bytes at `start` with no Python object per value; None unless they lie
    there consecutively with values under 128 bytes, and no stray `tag` byte inside a value
    hides where one entry ends (callers then read the message's own container).

    Entries are found by guessing that the `tag` bytes are their keys and proving it: each
    entry (key, one length byte, value) must end exactly where the next guessed one starts.
    An entry ending on a byte equal to `tag` is followed by a key of that field, so the
    proven chain is the field's entries themselves; with `count` taken from the parsed
    message (which also checked the values are UTF-8), it is all of them.
    """
    region = np.frombuffer(raw, dtype=np.uint8)[start:]
    keys = np.flatnonzero(region == tag)[:count]
    if len(keys) < count or not count or keys[0] != 0 or keys[-1] + 1 >= len(region):
        return None
    lengths = region[keys + 1].astype(np.int64)
    ends = keys + 2 + lengths
    if (lengths >= 0x80).any() or (ends[:-1] != keys[1:]).any():
        return None
    size = int(ends[-1])
    value_bytes = np.ones(size, dtype=bool)
    value_bytes[keys] = False
    value_bytes[keys + 1] = False
    offsets = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return StringRun(offsets, region[:size][value_bytes], start + size)


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


def _exchanges_fit(raw: bytes, start: int, exchanges: Sequence[str]) -> bool:
    # Read off the wire when they can be (a UTF-8 value has at least as many bytes as
    # characters, so a byte length within the limit proves the character count is).
    run = string_run(raw, start, len(exchanges), EXCHANGES_KEY)
    if run is not None and int(np.diff(run.offsets).max()) <= MAX_EXCHANGE_CHARS:
        return True
    return _strings_fit(exchanges, 0, MAX_EXCHANGE_CHARS, False)


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
