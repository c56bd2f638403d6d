"""A columnar fast path for the contract's TickBatch rules (tick.proto).

protovalidate walks a 1,000-trade batch element by element through CEL: ~480 µs, most of
the ingestion server's time. These checks prove the same rules on whole columns, numpy over
the wire bytes (the string columns too, when they can be located there; else one set per
string column): ~50 µs. `valid_request_batches` goes further and proves a request from its
bytes alone, so the server need not parse it at all. They only ever say "valid for certain";
anything else returns False (None), and protovalidate, which stays the authority, then
decides and reports the exact violations. So the fast path can make a call cheaper, never
change its answer.
tests/unit/test_fast_validation.py pins the rule set: a rule added to tick.proto fails CI
until it is covered here.
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
TRADE_IDS_KEY = 6 << 3 | 2
"""The key byte of field 6 (trade ids), length-delimited: "2"."""


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


def tick_request_is_valid(request: TickRequestLike, raw: bytes | None = None) -> bool:
    """True only if every rule of the request and of each batch holds (`raw`: the wire
    bytes the request was parsed from, when at hand)."""
    batches = request.batches
    if not 1 <= len(batches) <= MAX_BATCHES:
        return False
    entries = None if raw is None else request_batches(raw)
    if entries is None or len(entries) != len(batches):
        return all(tick_batch_is_valid(batch) for batch in batches)
    return all(map(tick_batch_is_valid, batches, entries))


_BATCHES_KEY = 1 << 3 | 2
"""The key byte of field 1 (batches) of PublishTicksRequest and IngestTicksRequest."""


def request_batches(raw: bytes) -> list[memoryview] | None:
    """The wire bytes of each batch of a serialised tick request, in order: each is the
    encoding the parsed batch came from. None unless the request holds batches alone."""
    view = memoryview(raw)
    entries = []
    position = 0
    while position < len(view):
        if view[position] != _BATCHES_KEY:
            return None
        read = _length(view, position + 1)
        if read is None:
            return None
        length, position = read
        entries.append(view[position : position + length])
        position += length
    return entries


def valid_request_batches(raw: bytes) -> list[WireBatch] | None:
    """Each batch of a serialised tick request read off its bytes alone, when the bytes are
    a well-formed request (`read_tick_batch`) and every rule provably holds; else None (the
    request is then parsed and validated as usual)."""
    entries = request_batches(raw)
    if entries is None or not 1 <= len(entries) <= MAX_BATCHES:
        return None
    batches = []
    for entry in entries:
        batch = read_tick_batch(entry)
        if batch is None or not _wire_batch_is_valid(batch):
            return None
        batches.append(batch)
    return batches


def tick_batch_is_valid(batch: TickBatchLike, raw: bytes | memoryview | None = None) -> bool:
    """True only if every rule of tick.proto holds for `batch` (`raw`: the wire bytes it was
    parsed from, if at hand; else it is serialised here)."""
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
    if raw is None:
        raw = batch.SerializeToString()
    packed = packed_fields(raw)
    if packed is None:
        return False
    # Every value in these payloads: a foreign encoder might split a column in two runs.
    if not _numbers_valid(
        packed.payloads[_TIMES],
        np.frombuffer(packed.payloads[_PRICES], dtype="<f8"),
        np.frombuffer(packed.payloads[_SIZES], dtype="<f8"),
        rows,
    ):
        return False
    trade_ids_start: int | None = packed.end
    if exchanges:
        run = string_run(raw, packed.end, exchanges, EXCHANGES_KEY)
        trade_ids_start = None if run is None else run.end
        if not _strings_fit(run, batch.exchanges, 0, MAX_EXCHANGE_CHARS, unique=False):
            return False
    run = None if trade_ids_start is None else string_run(raw, trade_ids_start, rows, TRADE_IDS_KEY)
    return _strings_fit(run, batch.trade_ids, 1, MAX_TRADE_ID_CHARS, unique=True)


def _numbers_valid(
    times: memoryview,
    prices: npt.NDArray[np.float64],
    sizes: npt.NDArray[np.float64],
    rows: int,
) -> bool:
    """`rows` positive times, finite prices > 0 and finite sizes >= 0."""
    return (
        len(prices) == rows
        and len(sizes) == rows
        and _positive_varints(times, rows)
        and bool(np.isfinite(prices).all() and (prices > 0).all())
        and bool(np.isfinite(sizes).all() and (sizes >= 0).all())
    )


class PackedFields(NamedTuple):
    """Where a serialised TickBatch keeps its packed columns."""

    payloads: dict[int, memoryview]
    """Field number (2-4) -> its packed payload."""
    end: int
    """Where the fields after them (the string columns) begin."""


def packed_fields(raw: bytes | memoryview) -> PackedFields | None:
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


class WireBatch(NamedTuple):
    """A TickBatch read off its wire bytes alone."""

    raw: memoryview
    """The batch's own bytes."""
    symbol: str
    rows: int
    times: memoryview
    """The packed trade times (varints)."""
    prices: npt.NDArray[np.float64]
    sizes: npt.NDArray[np.float64]
    exchanges: StringRun | None
    """None: the batch names no exchanges."""
    trade_ids: StringRun


_SYMBOL_KEY = 1 << 3 | 2
_HEAD_KEYS = {_SYMBOL_KEY, *(field << 3 | 2 for field in (_TIMES, _PRICES, _SIZES))}


def read_tick_batch(raw: bytes | memoryview) -> WireBatch | None:
    """The batch's columns from its bytes alone, every byte accounted for, when they are laid
    out as protobuf serializers write them: fields in number order, the numeric columns
    packed, each string column one run `string_run` can prove, every string ASCII. None
    otherwise (any other layout, non-ASCII text: parsing decides those), so bytes read here
    are bytes the parser accepts, with the same values."""
    view = memoryview(raw)
    head: dict[int, memoryview] = {}
    position = 0
    while position < len(view) and view[position] in _HEAD_KEYS:
        field = view[position] >> 3
        read = _length(view, position + 1)
        if read is None or (head and field <= max(head)):
            return None
        length, position = read
        head[field] = view[position : position + length]
        position += length
    if len(head) != 4 or len(head[_PRICES]) % 8 or len(head[_SIZES]) % 8:
        return None
    symbol = bytes(head[1])
    times = head[_TIMES]
    rows = _varint_count(times)
    if rows is None or not symbol.isascii():
        return None
    exchanges = None
    if position < len(view) and view[position] == EXCHANGES_KEY:
        exchanges = string_run(view, position, rows, EXCHANGES_KEY)
        if exchanges is None:
            return None
        position = exchanges.end
    trade_ids = string_run(view, position, rows, TRADE_IDS_KEY)
    if trade_ids is None or trade_ids.end != len(view):
        return None
    if not all(int(run.data.max(initial=0)) < 0x80 for run in (exchanges, trade_ids) if run):
        return None
    return WireBatch(
        raw=view,
        symbol=symbol.decode("ascii"),
        rows=rows,
        times=times,
        prices=np.frombuffer(head[_PRICES], dtype="<f8"),
        sizes=np.frombuffer(head[_SIZES], dtype="<f8"),
        exchanges=exchanges,
        trade_ids=trade_ids,
    )


def _varint_count(payload: memoryview) -> int | None:
    """How many varints a packed payload holds; None if its last one is cut short."""
    if len(payload) % 9 == 0 and nine_byte_varints(payload, len(payload) // 9):
        return len(payload) // 9
    data = np.frombuffer(payload, dtype=np.uint8)
    if not len(data) or data[-1] >= 0x80:
        return None
    return int(np.count_nonzero(data < 0x80))


def _wire_batch_is_valid(batch: WireBatch) -> bool:
    # ASCII strings: bytes are characters, so the byte lengths prove the length rules.
    rows = batch.rows
    return bool(
        1 <= rows <= MAX_ROWS
        and SYMBOL.fullmatch(batch.symbol)
        and _numbers_valid(batch.times, batch.prices, batch.sizes, rows)
        and (batch.exchanges is None or _run_fits(batch.exchanges, 0, MAX_EXCHANGE_CHARS))
        and _run_fits(batch.trade_ids, 1, MAX_TRADE_ID_CHARS)
        and distinct(batch.trade_ids)
    )


class StringRun(NamedTuple):
    """Consecutive entries of one repeated string field, as Arrow lays strings out."""

    offsets: npt.NDArray[np.int64]
    """`count + 1` offsets into `data`: value i is data[offsets[i]:offsets[i + 1]]."""
    data: npt.NDArray[np.uint8]
    end: int
    """Where the bytes after the run begin."""
    width: int | None = None
    """The length in bytes every value has, when known to be one."""


def string_run(raw: bytes | memoryview, start: int, count: int, tag: int) -> StringRun | None:
    """The `count` entries of the repeated string field whose one-byte key is `tag`, read
    from the wire bytes at `start` with no Python object per value; None unless they lie
    there consecutively with values under 128 bytes and can be told apart (callers then read
    the message's own container). `count` comes from the parsed message or from the rows
    `read_tick_batch` counted; UTF-8 is the caller's to check (a parse did).

    Each entry is (key, one length byte, value). Two ways to find them, each a proof:
    * stretches of equal lengths (UUIDs, zero-padded serials: one stretch; serials that
      grow a digit at a time: a few): within a stretch every `len + 2` bytes an entry starts
      with `tag` and the stretch's length byte, so walking the entries one by one would
      meet exactly these, whatever bytes the values hold;
    * else the `tag` bytes are guessed to be the keys, and each entry must end exactly where
      the next guessed one starts; an entry ending on a `tag` byte is followed by a key of
      the field, so the chain is the entries themselves. A value holding a `tag` byte breaks
      the chain (trade ids often hold "2", their key).
    """
    region = np.frombuffer(raw, dtype=np.uint8)[start:]
    if not count or len(region) < 2 or region[0] != tag or region[1] >= 0x80:
        return None
    run = _stretched_run(region, count, tag)
    if run is None:
        run = _chained_run(region, count, tag)
    return None if run is None else run._replace(end=start + run.end)


_MAX_STRETCHES = 4


def _stretched_run(region: npt.NDArray[np.uint8], count: int, tag: int) -> StringRun | None:
    stretches: list[tuple[int, int, int]] = []  # (position, entries, value length)
    position = found = 0
    while found < count:
        if len(stretches) == _MAX_STRETCHES or position + 1 >= len(region):
            return None
        length = int(region[position + 1])
        if region[position] != tag or length >= 0x80:
            return None
        entries = _stretch(region, position, tag, length, count - found)
        if not entries:
            return None
        stretches.append((position, entries, length))
        position += entries * (length + 2)
        found += entries
    values = [
        region[at : at + entries * (length + 2)].reshape(entries, length + 2)[:, 2:].ravel()
        for at, entries, length in stretches
    ]
    if len(stretches) == 1:
        offsets = np.arange(count + 1, dtype=np.int64) * length
        return StringRun(offsets, values[0], position, width=length)
    offsets = np.zeros(count + 1, dtype=np.int64)
    lengths = np.repeat([length for _, _, length in stretches], [n for _, n, _ in stretches])
    np.cumsum(lengths, out=offsets[1:])
    return StringRun(offsets, np.concatenate(values), position)


def _stretch(region: npt.NDArray[np.uint8], position: int, tag: int, length: int, most: int) -> int:
    """How many entries with values of `length` bytes follow one another from `position`
    (at most `most`)."""
    stride = length + 2
    most = min(most, (len(region) - position) // stride)
    entries = region[position : position + most * stride].reshape(most, stride)
    fits = (entries[:, 0] == tag) & (entries[:, 1] == length)
    return most if fits.all() else int(fits.argmin())


def _chained_run(region: npt.NDArray[np.uint8], count: int, tag: int) -> StringRun | None:
    keys = np.flatnonzero(region == tag)[:count]
    if len(keys) < count or keys[-1] + 1 >= len(region):
        return None
    lengths = region[keys + 1].astype(np.int64)
    ends = keys + 2 + lengths
    if (lengths >= 0x80).any() or (ends[:-1] != keys[1:]).any():
        return None
    size = int(ends[-1])
    if size > len(region):
        return None
    value_bytes = np.ones(size, dtype=bool)
    value_bytes[keys] = False
    value_bytes[keys + 1] = False
    offsets = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return StringRun(offsets, region[:size][value_bytes], size)


def distinct(run: StringRun) -> bool:
    """True only if the run's values are pairwise different (False may be a hash collision).

    Each value is hashed as its 8-byte words times odd weights, plus its length, mod 2**64:
    equal values hash alike, so distinct hashes prove distinct values.
    """
    count = len(run.offsets) - 1
    if count < 2:
        return True
    if run.width is not None and run.width >= 8:
        hashes = _equal_width_hashes(run.data, count, run.width)
    else:
        lengths = np.diff(run.offsets)
        width = int(lengths.max())
        padded = np.zeros((count, -(-width // 8) * 8), np.uint8)
        if int(lengths.min()) == width:
            padded[:, :width] = run.data.reshape(count, width)
        else:
            rows = np.repeat(np.arange(count), lengths)
            padded[rows, np.arange(len(run.data)) - run.offsets[rows]] = run.data
        words = padded.view("<u8")
        hashes = (words * _WEIGHTS[: words.shape[1]]).sum(axis=1)
        hashes += lengths.astype(np.uint64) * _WEIGHTS[-1]
    hashes.sort()
    return not bool((hashes[1:] == hashes[:-1]).any())


def _equal_width_hashes(
    data: npt.NDArray[np.uint8], count: int, width: int
) -> npt.NDArray[np.uint64]:
    # Values of one width >= 8, back to back: each word is a strided view, no copy. A width
    # that is no multiple of 8 ends with a word overlapping the one before, still a function
    # of the value alone; the length term is the same for all, so it is left out.
    starts = [*range(0, width - 7, 8), *([width - 8] if width % 8 else [])]
    hashes = np.zeros(count, np.uint64)
    for weight, start in zip(_WEIGHTS, starts, strict=False):
        hashes += np.ndarray((count,), "<u8", data, start, (width,)) * weight
    return hashes


# Odd, so a change in one word always changes the hash; 16 words hold any value of a run
# (under 128 bytes), the last weight is the length's. Fixed, so results are reproducible.
_WEIGHTS = np.random.default_rng(20261127).integers(0, 2**62, 17, dtype=np.uint64) * 2 + 1


_CONTINUED = np.uint64(0x8080808080808080)


def latest_event_time(raw: bytes | memoryview, rows: int) -> int | None:
    """The latest of a serialised batch's `rows` trade times, read off the packed wire bytes
    when each takes nine (nanoseconds from 2001 to 2262 do); None otherwise."""
    packed = packed_fields(raw)
    return None if packed is None else latest_time(packed.payloads[_TIMES], rows)


def latest_time(times: memoryview, rows: int) -> int | None:
    """The latest of `rows` packed trade times if each takes nine bytes; None otherwise."""
    if not nine_byte_varints(times, rows):
        return None
    # The last byte holds the top bits; the first eight, read as one little-endian integer,
    # order as their values do (their continuation bits are all set).
    top = np.frombuffer(times, dtype=np.uint8)[8::9]
    low = np.ndarray((rows,), dtype="<u8", buffer=times, strides=(9,))
    candidates = np.flatnonzero(top == top.max())
    best = int(candidates[low[candidates].argmax()])
    value = int.from_bytes(times[9 * best : 9 * best + 9], "little")
    return sum(((value >> (8 * i)) & 0x7F) << (7 * i) for i in range(9))


def _varint(view: memoryview, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = view[position]
        value |= (byte & 0x7F) << shift
        position += 1
        if byte < 0x80:
            return value, position
        shift += 7


def _length(view: memoryview, position: int) -> tuple[int, int] | None:
    """A length prefix at `position` and where its field's bytes begin; None when the prefix
    or the bytes it announces run past the end."""
    value = shift = 0
    while position < len(view) and shift < 64:
        byte = view[position]
        value |= (byte & 0x7F) << shift
        position += 1
        if byte < 0x80:
            return (value, position) if position + value <= len(view) else None
        shift += 7
    return None


def _positive_varints(payload: memoryview, rows: int) -> bool:
    """`rows` packed int64s, all > 0: none is the one-byte 0, none takes ten bytes (the
    encoding of every negative int64)."""
    if nine_byte_varints(payload, rows):
        return True
    data = np.frombuffer(payload, dtype=np.uint8)
    ends = np.flatnonzero(data < 0x80)
    if len(ends) != rows:
        return False
    lengths = np.diff(ends, prepend=-1)
    zero = (lengths == 1) & (data[ends] == 0)
    return not bool(zero.any() or (lengths >= 10).any())


def nine_byte_varints(payload: memoryview | bytes, rows: int) -> bool:
    """True if `payload` is `rows` varints of nine bytes each (the width of nanosecond times
    from 2001 to 2262): only the last byte of each lacks the continuation bit."""
    if not rows or len(payload) != 9 * rows:
        return False
    top = np.frombuffer(payload, dtype=np.uint8)[8::9]
    low = np.ndarray((rows,), dtype="<u8", buffer=payload, strides=(9,))
    return not bool((top >= 0x80).any()) and bool(((low & _CONTINUED) == _CONTINUED).all())


def _strings_fit(
    run: StringRun | None, values: Sequence[str], min_chars: int, max_chars: int, *, unique: bool
) -> bool:
    """Every value has min..max characters (code points, as protovalidate counts them),
    and, if asked, no value repeats. Proven on the wire bytes when `run` holds them (a UTF-8
    value has no fewer bytes than characters, and no bytes only when it is empty); else, or
    when that proof fails, on the container's strings."""
    if (
        run is not None
        and min_chars <= 1
        and _run_fits(run, min_chars, max_chars)
        and (not unique or distinct(run))
    ):
        return True
    # The set is the one pass that makes str objects; lengths are then read per distinct
    # value (exchanges have a handful).
    distinct_values = set(values)
    if unique and len(distinct_values) != len(values):
        return False
    char_counts = list(map(len, distinct_values))
    return min(char_counts) >= min_chars and max(char_counts) <= max_chars


def _run_fits(run: StringRun, min_bytes: int, max_bytes: int) -> bool:
    """Every value of the run has min..max bytes."""
    if run.width is not None:
        return min_bytes <= run.width <= max_bytes
    lengths = np.diff(run.offsets)
    return int(lengths.min()) >= min_bytes and int(lengths.max()) <= max_bytes
