"""Bars from a CSV file: one vectorised pass, every refused row reported with its file line.

The file is parsed by pyarrow with every column read as a string, then each check runs on
whole columns (pyarrow compute kernels and numpy), so the good path has no per-row Python;
only refused rows are visited one by one, to phrase their `RowProblem`.

Columns, by our names: `symbol`, `time`, `open`, `high`, `low`, `close`, `volume`, and the
optional `vwap` and `trade_count` (0 when absent or empty). A header matches one of our
names case-insensitively (`Open` is `open`); `column_mapping` names the others
(`{"Date": "time", "Adj Close": "close"}`), and an explicit mapping wins over a header that
merely spells the same name (Yahoo's export has both `Close` and `Adj Close`). Other
columns are ignored. Without a `symbol` column every row belongs to `default_symbol`.

Times, detected per value:

* an ISO 8601 date-time with `Z` or a `±HH:MM` / `±HHMM` / `±HH` offset, `T` or a space
  between date and time, seconds and up to 9 fraction digits optional;
* a date alone (`2024-01-02`): midnight UTC of that date, the convention daily bars use;
* a plain number is Unix epoch time, its magnitude picking the unit: below 1e11 seconds
  (1e11 s is the year 5138), below 1e14 milliseconds, below 1e17 microseconds, else
  nanoseconds. A fraction is allowed (`1700000000.5`).

A date-time without an offset is refused rather than guessed: its zone is unknowable here.
Lines end in LF or CRLF; empty lines are skipped but still counted, and a quoted value may
span lines (RFC 4180), so reported line numbers are the ones an editor shows.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from financelake.services.errors import FieldViolation, InvalidInput
from financelake.services.ingestion.records import (
    NANOS_PER_SECOND,
    Bars,
    BarSource,
    Float64s,
    Int64s,
    Interval,
)
from financelake.services.ingestion.sources import RowProblem, SourceError

Bools = npt.NDArray[np.bool_]

SYMBOL_PATTERN: Final = r"^\^?[A-Z0-9][A-Z0-9.=\-]{0,19}$"
"""The contracts' symbol rule (`common/v1/tick.proto`): refused here means refused there."""

REQUIRED_COLUMNS: Final = ("time", "open", "high", "low", "close", "volume")
OPTIONAL_COLUMNS: Final = ("symbol", "vwap", "trade_count")
COLUMNS: Final = ("symbol", *REQUIRED_COLUMNS, "vwap", "trade_count")

_SYMBOL = re.compile(SYMBOL_PATTERN)
# Arrow's float parser takes exactly these plus inf/nan spellings; anything else would make
# the whole-column cast fail, so values are screened first and the refused ones swapped out.
_NUMBER = r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$"
_NON_FINITE = r"^[+-]?(?:inf|infinity|nan)$"
_ISO = (
    r"^(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})"
    r"(?:[Tt ](?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<f>\d{1,9}))?)?"
    r"(?P<z>[Zz]|(?P<zs>[+-])(?P<zh>\d{2})(?::?(?P<zm>\d{2}))?)?)?$"
)
# 19 digits: today's epoch nanoseconds; values past int64 are screened before the cast.
_EPOCH = r"^(?P<neg>-?)(?P<i>\d{1,19})(?:\.(?P<f>\d{1,9}))?$"
# Capture-free forms for the fast path: the same grammar as _ISO / _EPOCH, one shape each.
_ZONED = (
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?"
    r"(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$"
)
_DATE = r"^\d{4}-\d{2}-\d{2}$"
_INTEGER = r"^-?\d{1,19}$"
_TIME_HELP = "expected ISO 8601 with Z or an offset, YYYY-MM-DD, or epoch seconds/milliseconds"

_INT64_MAX: Final = np.iinfo(np.int64).max
_LF: Final = 0x0A
_CR: Final = 0x0D
_QUOTE: Final = 0x22


@dataclass(frozen=True, eq=False)
class CsvBars:
    """What one CSV import produced: bars per symbol, and every row it refused."""

    bars: list[Bars]
    """One `Bars` per symbol, in symbol order, each sorted by start time."""
    problems: list[RowProblem]
    """One per refused row (its first failing check), in line order."""
    rows_read: int
    """Data rows in the file (empty lines excluded), including those filtered out or refused."""


def read_csv_bars(
    source: bytes | Path,
    *,
    interval: Interval,
    column_mapping: Mapping[str, str] | None = None,
    default_symbol: str = "",
    symbols: Collection[str] = (),
    adjusted: bool = False,
) -> CsvBars:
    """Read OHLCV bars from CSV bytes or a file path.

    Args:
        source: The file's bytes, or its path.
        interval: Width of every bar in the file (a CSV does not say).
        column_mapping: File header → our column name, for headers that do not already
            spell one of ours.
        default_symbol: Symbol of every row when the file has no `symbol` column.
        symbols: Keep only these symbols (rows of others are skipped, not refused).
        adjusted: Whether the file's prices are split/dividend adjusted.

    Raises:
        InvalidInput: The header and arguments do not describe a readable file (a required
            column missing, a mapping to an unknown name, no symbol at all).
        SourceError: The bytes are not parsable CSV (e.g. not UTF-8, stray quotes).
    """
    data = source.read_bytes() if isinstance(source, Path) else bytes(source)
    header = _header(data)
    columns = _resolve_columns(header, column_mapping or {}, default_symbol)
    table, lines, rows_read, problems = _read_strings(data, header, columns)

    raw = {name: _trimmed(table, header) for name, header in columns.items()}
    if symbols:
        if "symbol" in raw:
            keep = pc.is_in(raw["symbol"], value_set=pa.array(sorted(set(symbols)), pa.string()))
            raw = {name: pc.filter(column, keep) for name, column in raw.items()}
            lines = lines[keep.to_numpy(zero_copy_only=False)]
        elif default_symbol not in symbols:
            raw = {name: column.slice(0, 0) for name, column in raw.items()}
            lines = lines[:0]

    checked = _check(raw, lines, default_symbol)
    problems.extend(checked.problems)
    problems.sort(key=lambda problem: problem.line)
    bars = _group(checked, interval, adjusted)
    return CsvBars(bars=bars, problems=problems, rows_read=rows_read)


# ---- header and columns -----------------------------------------------------------------


def _header(data: bytes) -> list[str]:
    first = data.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise SourceError(f"CSV header is not UTF-8: {error}") from error
    if not text.strip():
        raise SourceError("CSV has no header line (the first line must name the columns)")
    return next(csv.reader([text]))


def _resolve_columns(
    header: list[str], mapping: Mapping[str, str], default_symbol: str
) -> dict[str, str]:
    """Our column name → the file header it is read from."""
    violations: list[FieldViolation] = []
    resolved: dict[str, str] = {}
    for file_name, ours in mapping.items():
        if ours not in COLUMNS:
            violations.append(
                FieldViolation(
                    f"column_mapping[{file_name!r}]",
                    f"{ours!r} is not a bar column; use one of {', '.join(COLUMNS)}",
                )
            )
        elif file_name not in header:
            violations.append(
                FieldViolation(f"column_mapping[{file_name!r}]", "the file has no such column")
            )
        elif ours in resolved:
            violations.append(
                FieldViolation(
                    f"column_mapping[{file_name!r}]",
                    f"{ours!r} is already read from {resolved[ours]!r}",
                )
            )
        else:
            resolved[ours] = file_name
    implicit: dict[str, str] = {}
    for file_name in header:
        ours = file_name.strip().lower()
        if file_name in mapping or ours not in COLUMNS or ours in resolved:
            continue
        if ours in implicit:
            violations.append(
                FieldViolation(
                    "column_mapping",
                    f"columns {implicit[ours]!r} and {file_name!r} both read as {ours!r}; "
                    "map one of them explicitly",
                )
            )
        implicit[ours] = file_name
    resolved.update(implicit)
    used = list(resolved.values())
    for file_name in {name for name in used if header.count(name) > 1}:
        violations.append(
            FieldViolation("column_mapping", f"the header names {file_name!r} more than once")
        )
    missing = [name for name in REQUIRED_COLUMNS if name not in resolved]
    if missing:
        violations.append(
            FieldViolation(
                "column_mapping",
                f"no column for {', '.join(missing)} (header: {', '.join(header)})",
            )
        )
    if "symbol" not in resolved and not _SYMBOL.fullmatch(default_symbol):
        violations.append(
            FieldViolation(
                "default_symbol",
                f"the file has no symbol column, so default_symbol must match {SYMBOL_PATTERN}",
            )
        )
    if violations:
        raise InvalidInput("the CSV header does not describe bars", violations=violations)
    return resolved


# ---- parsing ------------------------------------------------------------------------------


def _read_strings(
    data: bytes, header: list[str], columns: Mapping[str, str]
) -> tuple[pa.Table, Int64s, int, list[RowProblem]]:
    """Every used column as strings, the file line of each row, rows read, malformed rows."""
    malformed: list[tuple[int, int, int]] = []

    def on_invalid(row: Any) -> str:
        # Called in file order because the read is single-threaded; `number` counts
        # non-empty records with the header as 1 (None would mean a threaded read).
        malformed.append((row.number or 0, row.expected_columns, row.actual_columns))
        return "skip"

    newlines_in_values = b'"' in data
    used = sorted(set(columns.values()), key=header.index)
    try:
        table = pcsv.read_csv(
            io.BytesIO(data),
            # Single-threaded: parallel blocks would leave malformed rows unnumbered. The
            # parse is still ~0.1 s per million rows, far below the checks that follow.
            read_options=pcsv.ReadOptions(use_threads=False, block_size=1 << 24),
            parse_options=pcsv.ParseOptions(
                newlines_in_values=newlines_in_values, invalid_row_handler=on_invalid
            ),
            convert_options=pcsv.ConvertOptions(
                include_columns=used,
                column_types=dict.fromkeys(used, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as error:
        raise SourceError(f"CSV is not parsable: {error}") from error

    records = _record_lines(data, quote_aware=newlines_in_values)
    rows_read = len(records) - 1
    data_lines = records[1:]
    problems: list[RowProblem] = []
    if malformed:
        bad = np.array([number - 2 for number, _, _ in malformed], dtype=np.int64)
        if bad.min() < 0 or bad.max() >= len(data_lines):
            raise SourceError("CSV rows could not be matched to file lines")
        for index, (_, expected, actual) in zip(bad, malformed, strict=True):
            problems.append(
                RowProblem(
                    int(data_lines[index]), "", f"expected {expected} fields, found {actual}"
                )
            )
        keep = np.ones(len(data_lines), dtype=np.bool_)
        keep[bad] = False
        data_lines = data_lines[keep]
    if len(data_lines) != table.num_rows:
        # Only a stray quote inside an unquoted value can get here: pyarrow and the RFC
        # 4180 parity rule then disagree on where records end.
        raise SourceError(
            f"CSV rows could not be matched to file lines ({table.num_rows} rows, "
            f"{len(data_lines)} lines); check for unbalanced quote characters"
        )
    return table, data_lines, rows_read, problems


def _record_lines(data: bytes, *, quote_aware: bool) -> Int64s:
    """The 1-based first line of each non-empty record, header included."""
    buf = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buf == _LF)
    separators = newlines
    if quote_aware:
        quotes = np.flatnonzero(buf == _QUOTE)
        # A newline ends a record only outside quotes, i.e. after an even number of quote
        # characters (an escaped "" inside a value adds two, so parity still holds).
        separators = newlines[np.searchsorted(quotes, newlines) % 2 == 0]
    starts = np.concatenate(([0], separators + 1))
    ends = np.concatenate((separators, [len(buf)]))
    lines = np.searchsorted(newlines, starts) + 1
    length = ends - starts
    first = buf[np.minimum(starts, len(buf) - 1)]
    empty = (length == 0) | ((length == 1) & (first == _CR))
    record_lines: Int64s = lines[~empty].astype(np.int64)
    return record_lines


def _trimmed(table: pa.Table, header: str) -> pa.Array:
    return pc.utf8_trim_whitespace(table.column(header).combine_chunks())


def _numbers(column: pa.Array) -> tuple[Float64s, Bools, Bools]:
    """Values (0 where unreadable), and the masks: empty, not a number."""
    try:
        # Fast path: a clean column casts in one go; the regex screen is only for dirty ones.
        values = _np_float(pc.cast(column, pa.float64()))
    except pa.ArrowInvalid:
        pass
    else:
        none = np.zeros(len(values), dtype=np.bool_)
        return values, none, none
    empty = pc.equal(column, "")
    parsable = pc.or_(
        pc.match_substring_regex(column, _NUMBER),
        pc.match_substring_regex(column, _NON_FINITE, ignore_case=True),
    )
    values = pc.cast(pc.if_else(parsable, column, "0"), pa.float64())
    return (
        _np_float(values),
        _np_bool(empty),
        _np_bool(pc.and_(pc.invert(parsable), pc.invert(empty))),
    )


def _ints(parts: pa.StructArray, name: str) -> Int64s:
    part = pc.fill_null(parts.field(name), "")
    digits = pc.if_else(pc.equal(part, ""), "0", part)
    return np.asarray(pc.cast(digits, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


def _fraction_ns(parts: pa.StructArray, name: str) -> Int64s:
    """Fraction digits as billionths ("5" → 500_000_000)."""
    part = pc.fill_null(parts.field(name), "")
    return _ints_of(pc.utf8_rpad(pc.if_else(pc.equal(part, ""), "0", part), 9, "0"))


def _ints_of(digits: pa.Array) -> Int64s:
    return np.asarray(pc.cast(digits, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


def _np_bool(values: pa.Array) -> Bools:
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.bool_)


def _np_float(values: pa.Array) -> Float64s:
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)


def _days_from_civil(year: Int64s, month: Int64s, day: Int64s) -> Int64s:
    """Days since 1970-01-01 of proleptic Gregorian dates (H. Hinnant's algorithm)."""
    y = year - (month <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    doy = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days: Int64s = era * 146_097 + doe - 719_468
    return days


_TIME_OK, _TIME_MISSING, _TIME_UNREADABLE, _TIME_NAIVE, _TIME_INVALID = range(5)


def _times(column: pa.Array) -> tuple[Int64s, npt.NDArray[np.int8]]:
    """UTC nanoseconds per value, and a status (`_TIME_*`) per value."""
    fast = _times_of_clean_column(column)
    if fast is not None:
        return fast, np.full(len(fast), _TIME_OK, dtype=np.int8)
    return _times_per_value(column)


def _times_of_clean_column(column: pa.Array) -> Int64s | None:
    """Arrow's own casts when every value has the first value's form, else None.

    Capturing every date part by regex costs ~0.5 s per million rows; a capture-free match
    plus Arrow's cast costs a tenth of that. The match keeps the accepted forms exactly
    those of `_times_per_value`, which handles any column this refuses.
    """
    if len(column) == 0:
        return np.zeros(0, dtype=np.int64)
    first = column[0].as_py()
    try:
        if re.fullmatch(_ZONED, first) and _all_match(column, _ZONED):
            stamps = pc.cast(column, pa.timestamp("ns", tz="UTC"))
            return _ints_of(stamps.cast(pa.int64()))
        if re.fullmatch(_DATE, first) and _all_match(column, _DATE):
            days = _ints_of(pc.cast(column, pa.date32()).cast(pa.int32()).cast(pa.int64()))
            return days * 86_400 * NANOS_PER_SECOND
        if re.fullmatch(_INTEGER, first) and _all_match(column, _INTEGER):
            whole = _ints_of(pc.cast(column, pa.int64()))
            per_unit = _epoch_unit(np.abs(whole))
            if (np.abs(whole) <= (_INT64_MAX - NANOS_PER_SECOND) // per_unit).all():
                return whole * per_unit
    except pa.ArrowInvalid:
        # E.g. 2024-02-30 matches the pattern but is no date: the slow path says which row.
        return None
    return None


def _all_match(column: pa.Array, pattern: str) -> bool:
    return bool(pc.all(pc.match_substring_regex(column, pattern)).as_py())


def _epoch_unit(magnitude: Int64s) -> Int64s:
    """Nanoseconds per unit of an epoch number, chosen by its magnitude (module docstring)."""
    return np.select(
        [magnitude < 10**11, magnitude < 10**14, magnitude < 10**17],
        [NANOS_PER_SECOND, 1_000_000, 1_000],
        default=1,
    ).astype(np.int64)


def _times_per_value(column: pa.Array) -> tuple[Int64s, npt.NDArray[np.int8]]:
    """`_times` for columns with mixed forms or bad values: every part captured by regex."""
    n = len(column)
    status = np.full(n, _TIME_UNREADABLE, dtype=np.int8)
    ns = np.zeros(n, dtype=np.int64)
    status[_np_bool(pc.equal(column, ""))] = _TIME_MISSING

    iso = pc.extract_regex(column, _ISO)
    is_iso = _np_bool(iso.is_valid())
    if is_iso.any():
        year, month, day = _ints(iso, "y"), _ints(iso, "mo"), _ints(iso, "d")
        hour, minute, second = _ints(iso, "h"), _ints(iso, "mi"), _ints(iso, "s")
        zone_hours, zone_minutes = _ints(iso, "zh"), _ints(iso, "zm")
        has_time = _np_bool(pc.not_equal(pc.fill_null(iso.field("h"), ""), ""))
        has_zone = _np_bool(pc.not_equal(pc.fill_null(iso.field("z"), ""), ""))
        west = _np_bool(pc.equal(pc.fill_null(iso.field("zs"), ""), "-"))
        leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
        month_days = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
        last_day = month_days[np.clip(month, 1, 12) - 1] + ((month == 2) & leap)
        valid = (
            (month >= 1)
            & (month <= 12)
            & (day >= 1)
            & (day <= last_day)
            & (hour <= 23)
            & (minute <= 59)
            & (second <= 59)
            & (zone_hours <= 23)
            & (zone_minutes <= 59)
        )
        offset = np.where(west, -1, 1) * (zone_hours * 3600 + zone_minutes * 60)
        seconds = (
            _days_from_civil(year, month, day) * 86_400
            + hour * 3600
            + minute * 60
            + second
            - offset
        )
        # datetime64[ns] spans 1677-09-21 .. 2262-04-11; beyond that int64 nanoseconds overflow.
        valid &= np.abs(seconds) < _INT64_MAX // NANOS_PER_SECOND - 1
        iso_ns = np.where(valid, seconds, 0) * NANOS_PER_SECOND + _fraction_ns(iso, "f")
        ok = is_iso & valid & (has_zone | ~has_time)
        ns[ok] = iso_ns[ok]
        status[ok] = _TIME_OK
        status[is_iso & valid & has_time & ~has_zone] = _TIME_NAIVE
        status[is_iso & ~valid] = _TIME_INVALID

    epoch = pc.extract_regex(column, _EPOCH)
    is_epoch = _np_bool(epoch.is_valid())
    if is_epoch.any():
        digits = pc.fill_null(epoch.field("i"), "")
        # Same-length digit strings compare like numbers; larger than int64 is out of range.
        too_big = pc.and_(pc.equal(pc.utf8_length(digits), 19), pc.greater(digits, str(_INT64_MAX)))
        whole = _ints_of(pc.if_else(pc.or_(too_big, pc.equal(digits, "")), "0", digits))
        is_big = _np_bool(too_big)
        per_unit = _epoch_unit(whole)
        valid = whole <= (_INT64_MAX - NANOS_PER_SECOND) // per_unit
        magnitude = (
            np.where(valid, whole, 0) * per_unit
            + _fraction_ns(epoch, "f") * per_unit // NANOS_PER_SECOND
        )
        sign = np.where(_np_bool(pc.equal(pc.fill_null(epoch.field("neg"), ""), "-")), -1, 1)
        valid &= ~is_big
        ok = is_epoch & valid
        ns[ok] = (sign * magnitude)[ok]
        status[ok] = _TIME_OK
        status[is_epoch & ~valid] = _TIME_INVALID
    return ns, status


# ---- checks -------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Checked:
    """Parsed columns of the rows that passed every check, with their symbol codes."""

    symbols: list[str]
    code: Int64s
    time_ns: Int64s
    values: dict[str, Float64s]
    trade_count: Int64s
    problems: list[RowProblem]


class _Verdicts:
    """The first failing check of each row; later checks never overwrite an earlier one."""

    def __init__(self, n: int) -> None:
        self.kind = np.full(n, -1, dtype=np.int32)
        self.kinds: list[tuple[str, str]] = []

    def flag(self, mask: Bools, field: str, reason: str) -> None:
        """Refuse the rows in `mask` (unless already refused); `reason` may name {field}s."""
        hit = mask & (self.kind < 0)
        if hit.any():
            self.kind[hit] = len(self.kinds)
            self.kinds.append((field, reason))

    @property
    def good(self) -> Bools:
        ok: Bools = self.kind < 0
        return ok


def _check(raw: Mapping[str, pa.Array], lines: Int64s, default_symbol: str) -> _Checked:
    n = len(lines)
    verdicts = _Verdicts(n)

    if "symbol" in raw:
        encoded = pc.dictionary_encode(raw["symbol"])
        names: list[str] = encoded.dictionary.to_pylist()
        code = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
        # The pattern is checked once per distinct symbol, not once per row.
        bad_name = np.array([not _SYMBOL.fullmatch(name) for name in names], dtype=np.bool_)
        verdicts.flag(_np_bool(pc.equal(raw["symbol"], "")), "symbol", "missing value")
        # The pattern's own braces ({0,19}) must survive the later str.format.
        pattern = SYMBOL_PATTERN.replace("{", "{{").replace("}", "}}")
        verdicts.flag(bad_name[code], "symbol", f"{{symbol!r}} does not match {pattern}")
    else:
        names = [default_symbol]
        code = np.zeros(n, dtype=np.int64)

    time_ns, time_status = _times(raw["time"])
    verdicts.flag(time_status == _TIME_MISSING, "time", "missing value")
    verdicts.flag(
        time_status == _TIME_UNREADABLE, "time", f"{{time!r}} is unreadable: {_TIME_HELP}"
    )
    verdicts.flag(
        time_status == _TIME_NAIVE, "time", "{time!r} has no UTC offset (add Z or ±HH:MM)"
    )
    verdicts.flag(time_status == _TIME_INVALID, "time", "{time!r} is not a valid date or time")

    values: dict[str, Float64s] = {}
    for name in ("open", "high", "low", "close", "volume", "vwap", "trade_count"):
        if name not in raw:
            values[name] = np.zeros(n, dtype=np.float64)
            continue
        number, empty, unreadable = _numbers(raw[name])
        if name in REQUIRED_COLUMNS:
            verdicts.flag(empty, name, "missing value")
        verdicts.flag(unreadable, name, f"{{{name}!r}} is not a number")
        verdicts.flag(~np.isfinite(number), name, f"{{{name}!r}} is not finite")
        values[name] = number

    high, low = values["high"], values["low"]
    verdicts.flag(values["volume"] < 0, "volume", "negative volume {volume}")
    verdicts.flag(values["vwap"] < 0, "vwap", "negative vwap {vwap}")
    count = values["trade_count"]
    verdicts.flag(
        (count < 0) | (count != np.floor(count)),
        "trade_count",
        "{trade_count!r} is not a non-negative whole number",
    )
    verdicts.flag(high < low, "high", "high {high} is below low {low}")
    for name in ("open", "close"):
        price = values[name]
        verdicts.flag(
            (price < low) | (price > high),
            name,
            f"{name} {{{name}}} is outside [{{low}}, {{high}}]",
        )

    # Duplicates among otherwise good rows: the first line of a (symbol, time) wins.
    good = verdicts.good
    candidates = np.flatnonzero(good)
    order = candidates[np.lexsort((lines[candidates], time_ns[candidates], code[candidates]))]
    same = (code[order][1:] == code[order][:-1]) & (time_ns[order][1:] == time_ns[order][:-1])
    duplicates = order[1:][same]
    first_of = np.zeros(n, dtype=np.int64)
    if len(duplicates):
        group_start = np.maximum.accumulate(np.where(np.r_[True, ~same], np.arange(len(order)), 0))
        first_of[order] = lines[order[group_start]]
        dup_mask = np.zeros(n, dtype=np.bool_)
        dup_mask[duplicates] = True
        verdicts.flag(dup_mask, "time", "duplicate (symbol, time) of line {first_line}")

    problems = _phrase(verdicts, raw, lines, time_ns, time_status, first_of)
    keep = verdicts.good
    return _Checked(
        symbols=names,
        code=code[keep],
        time_ns=time_ns[keep],
        values={name: column[keep] for name, column in values.items()},
        trade_count=values["trade_count"][keep].astype(np.int64),
        problems=problems,
    )


def _phrase(
    verdicts: _Verdicts,
    raw: Mapping[str, pa.Array],
    lines: Int64s,
    time_ns: Int64s,
    time_status: npt.NDArray[np.int8],
    first_of: Int64s,
) -> list[RowProblem]:
    """One `RowProblem` per refused row: the only per-row Python, and only for bad rows."""
    bad = np.flatnonzero(verdicts.kind >= 0)
    if not len(bad):
        return []
    taken = pa.array(bad)
    texts = {name: pc.take(column, taken).to_pylist() for name, column in raw.items()}
    problems = []
    for position, row in enumerate(bad.tolist()):
        field, template = verdicts.kinds[verdicts.kind[row]]
        context = {name: texts[name][position] for name in texts}
        context["first_line"] = int(first_of[row])
        problems.append(
            RowProblem(
                line=int(lines[row]),
                field=field,
                reason=template.format(**context),
                time_ns=int(time_ns[row]) if time_status[row] == _TIME_OK else None,
            )
        )
    return problems


def _group(checked: _Checked, interval: Interval, adjusted: bool) -> list[Bars]:
    order = np.lexsort((checked.time_ns, checked.code))
    code = checked.code[order]
    bounds = np.flatnonzero(np.diff(code)) + 1
    starts = np.r_[0, bounds] if len(code) else np.zeros(0, dtype=np.int64)
    ends = np.r_[bounds, len(code)] if len(code) else np.zeros(0, dtype=np.int64)
    bars = []
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        rows = order[start:end]
        bars.append(
            Bars(
                symbol=checked.symbols[int(code[start])],
                interval=interval,
                source=BarSource.CSV,
                start_time_ns=checked.time_ns[rows],
                open=checked.values["open"][rows],
                high=checked.values["high"][rows],
                low=checked.values["low"][rows],
                close=checked.values["close"][rows],
                volume=checked.values["volume"][rows],
                vwap=checked.values["vwap"][rows],
                trade_count=checked.trade_count[rows],
                adjusted=adjusted,
            )
        )
    bars.sort(key=lambda one: one.symbol)
    return bars
