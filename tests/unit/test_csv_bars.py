"""CSV bars: column mapping, every time form, every refusal with its editor line number."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from financelake.services.errors import InvalidInput
from financelake.services.ingestion.records import BarSource, Interval
from financelake.services.ingestion.sources import SourceError, csv_bars
from financelake.services.ingestion.sources.csv_bars import read_csv_bars

pytestmark = pytest.mark.unit

S = 1_000_000_000
HEADER = "symbol,time,open,high,low,close,volume,vwap,trade_count\n"


def _ns(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC).timestamp()) * S


def _read(text: str, **kwargs: object) -> csv_bars.CsvBars:
    options: dict[str, object] = {"interval": Interval.M1, **kwargs}
    return read_csv_bars(text.encode(), **options)  # type: ignore[arg-type]


def test_good_rows_grouped_per_symbol_and_sorted_by_time() -> None:
    result = _read(
        HEADER
        + "MSFT,2024-01-02T14:31:00Z,10,11,9,10.5,100,10.2,7\n"
        + "AAPL,2024-01-02T14:32:00Z,20,21,19,20.5,200,,\n"
        + "AAPL,2024-01-02T14:30:00Z,30,31,29,30.5,300,30.1,3\n"
    )
    assert result.rows_read == 3
    assert result.problems == []
    assert [b.symbol for b in result.bars] == ["AAPL", "MSFT"]
    aapl = result.bars[0]
    assert aapl.start_time_ns.tolist() == [_ns(2024, 1, 2, 14, 30), _ns(2024, 1, 2, 14, 32)]
    assert aapl.open.tolist() == [30.0, 20.0]
    assert aapl.volume.tolist() == [300.0, 200.0]
    assert aapl.vwap.tolist() == [30.1, 0.0]  # empty optional → 0
    assert aapl.trade_count.tolist() == [3, 0]
    assert aapl.trade_count.dtype == np.int64
    assert aapl.source is BarSource.CSV
    assert aapl.interval is Interval.M1
    assert not aapl.adjusted


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-02T14:30:00Z", _ns(2024, 1, 2, 14, 30)),
        ("2024-01-02 14:30Z", _ns(2024, 1, 2, 14, 30)),
        ("2024-01-02T09:30:00-05:00", _ns(2024, 1, 2, 14, 30)),
        ("2024-01-02T20:00:00+0530", _ns(2024, 1, 2, 14, 30)),
        ("2024-01-02T15:30:00+01", _ns(2024, 1, 2, 14, 30)),
        ("2024-01-02T14:30:00.25Z", _ns(2024, 1, 2, 14, 30) + 250_000_000),
        ("2024-01-02T14:30:00.123456789Z", _ns(2024, 1, 2, 14, 30) + 123_456_789),
        ("2024-01-02", _ns(2024, 1, 2)),
        ("2024-02-29", _ns(2024, 2, 29)),
        ("1704205800", _ns(2024, 1, 2, 14, 30)),
        ("1704205800.5", _ns(2024, 1, 2, 14, 30) + 500_000_000),
        ("1704205800000", _ns(2024, 1, 2, 14, 30)),
        ("1704205800000000", _ns(2024, 1, 2, 14, 30)),
        ("1704205800000000000", _ns(2024, 1, 2, 14, 30)),  # nanoseconds
        ("9223372036854775808", None),  # past int64
        ("99999999999", None),  # seconds past the year 2262: out of range
        ("100000000000", 100_000_000_000 * 1_000_000),  # 1e11 and up: milliseconds
        ("-86400", -86_400 * S),
    ],
)
def test_time_forms(text: str, expected: int | None) -> None:
    result = _read(HEADER + f"AAPL,{text},1,1,1,1,1,,\n")
    if expected is None:
        assert result.problems[0].field == "time"
        return
    assert result.problems == []
    assert result.bars[0].start_time_ns.tolist() == [expected]


def test_clean_and_mixed_columns_parse_alike() -> None:
    """The whole-column fast path and the per-value path agree on every accepted form."""
    forms = [
        "2024-01-02T14:30:00Z",
        "2024-01-02t14:30:00z",
        "2024-01-02 14:30:00,5+05",
        "2024-01-02T14:30:00.123456789+0530",
        "2024-01-02T09:30-05:00",
        "2024-01-02",
        "1704205800",
        "1704205800123",
        "-1",
    ]
    for form in forms:
        column = pa.array([form, form])
        fast = csv_bars._times_of_clean_column(column)
        slow, status = csv_bars._times_per_value(column)
        assert status.tolist() == [0, 0], form
        if fast is not None:
            assert fast.tolist() == slow.tolist(), form
    mixed = pa.array(forms)
    assert csv_bars._times_of_clean_column(mixed) is None
    slow, status = csv_bars._times_per_value(mixed)
    assert status.tolist() == [0] * len(forms)


def test_every_refusal_with_its_line_field_and_time() -> None:
    text = (
        HEADER  # line 1
        + "AAPL,2024-01-02,10,11,9,10.5,100,,\n"  # 2 good
        + "\n"  # 3 empty, skipped but counted
        + "aapl,2024-01-03,10,11,9,10.5,100,,\n"  # 4 symbol pattern
        + ",2024-01-03,10,11,9,10.5,100,,\n"  # 5 symbol missing
        + "AAPL,2024-01-03 10:00:00,10,11,9,10.5,100,,\n"  # 6 no offset
        + "AAPL,2024-02-30,10,11,9,10.5,100,,\n"  # 7 no such date
        + "AAPL,yesterday,10,11,9,10.5,100,,\n"  # 8 unreadable time
        + "AAPL,,10,11,9,10.5,100,,\n"  # 9 time missing
        + "AAPL,2024-01-04,x,11,9,10.5,100,,\n"  # 10 bad number
        + "AAPL,2024-01-05,10,11,9,,100,,\n"  # 11 close missing
        + "AAPL,2024-01-06,10,inf,9,10.5,100,,\n"  # 12 non-finite
        + "AAPL,2024-01-07,10,8,9,8.5,100,,\n"  # 13 high < low
        + "AAPL,2024-01-08,12,11,9,10.5,100,,\n"  # 14 open above high
        + "AAPL,2024-01-09,10,11,9,8,100,,\n"  # 15 close below low
        + "AAPL,2024-01-10,10,11,9,10.5,-1,,\n"  # 16 negative volume
        + "AAPL,2024-01-11,10,11,9,10.5,1,,2.5\n"  # 17 fractional trade count
        + "AAPL,2024-01-12,10,11,9,10.5,1,-3,\n"  # 18 negative vwap
        + "AAPL,2024-01-02,10,11,9,10.5,100,,\n"  # 19 duplicate of line 2
        + "AAPL,2024-01-13,10,11\n"  # 20 too few fields
        + "AAPL,2024-01-14,10,11,9,10.5,1,,,extra\n"  # 21 too many fields
        + '"AAPL","2024-01-15","10","11","9","10.5","1","",""\n'  # 22 good, quoted
    )
    result = _read(text, interval=Interval.D1)
    got = [(p.line, p.field) for p in result.problems]
    assert got == [
        (4, "symbol"),
        (5, "symbol"),
        (6, "time"),
        (7, "time"),
        (8, "time"),
        (9, "time"),
        (10, "open"),
        (11, "close"),
        (12, "high"),
        (13, "high"),
        (14, "open"),
        (15, "close"),
        (16, "volume"),
        (17, "trade_count"),
        (18, "vwap"),
        (19, "time"),
        (20, ""),
        (21, ""),
    ]
    reasons = {p.line: p.reason for p in result.problems}
    assert "does not match" in reasons[4]
    assert reasons[5] == "missing value"
    assert "no UTC offset" in reasons[6]
    assert "not a valid date" in reasons[7]
    assert "unreadable" in reasons[8]
    assert reasons[10] == "'x' is not a number"
    assert reasons[11] == "missing value"
    assert "not finite" in reasons[12]
    assert reasons[13] == "high 8 is below low 9"
    assert reasons[14] == "open 12 is outside [9, 11]"
    assert "negative volume" in reasons[16]
    assert reasons[19] == "duplicate (symbol, time) of line 2"
    assert reasons[20] == "expected 9 fields, found 4"
    times = {p.line: p.time_ns for p in result.problems}
    assert times[10] == _ns(2024, 1, 4)
    assert times[6] is None
    assert times[20] is None
    assert result.rows_read == 20  # line 3 is empty
    assert len(result.bars) == 1
    assert result.bars[0].start_time_ns.tolist() == [_ns(2024, 1, 2), _ns(2024, 1, 15)]


def test_line_numbers_survive_crlf_and_quoted_newlines() -> None:
    text = (
        "symbol,time,open,high,low,close,volume,note\r\n"  # 1
        + 'AAPL,2024-01-02,10,11,9,10.5,1,"two\r\nlines"\r\n'  # 2-3
        + "\r\n"  # 4
        + 'AAPL,2024-01-03,10,11,9,x,1,"say ""hi"""\r\n'  # 5
    )
    result = _read(text, interval=Interval.D1)
    assert [(p.line, p.field) for p in result.problems] == [(5, "close")]
    assert result.bars[0].start_time_ns.tolist() == [_ns(2024, 1, 2)]


def test_column_mapping_default_symbol_and_yahoo_export(tmp_path: Path) -> None:
    path = tmp_path / "spy.csv"
    path.write_text(
        "\ufeffDate,Open,High,Low,Close,Adj Close,Volume\n"
        "2024-01-02,472.16,473.67,470.49,472.65,471.00,123623700\n"
        "2024-01-03,470.43,471.19,468.17,468.79,462.93,103585900\n"
    )
    result = read_csv_bars(
        path,
        interval=Interval.D1,
        column_mapping={"Date": "time", "Adj Close": "close"},
        default_symbol="SPY",
    )
    (bars,) = result.bars
    assert bars.symbol == "SPY"
    # The explicit mapping wins: close comes from "Adj Close", not "Close" ...
    assert bars.close.tolist() == [471.00]
    assert bars.start_time_ns.tolist() == [_ns(2024, 1, 2)]
    # ... and an adjusted close beside raw open/high/low can fall outside them: refused.
    assert [(p.line, p.field) for p in result.problems] == [(3, "close")]


def test_unmapped_headers_match_case_insensitively() -> None:
    result = _read(
        "Time,OPEN,High,Low,Close,Volume,Ignored\n2024-01-02,1,2,0.5,1.5,10,x\n",
        default_symbol="SPY",
        adjusted=True,
    )
    assert result.problems == []
    assert result.bars[0].close.tolist() == [1.5]
    assert result.bars[0].adjusted


def test_symbol_filter_skips_other_symbols_silently() -> None:
    result = _read(
        HEADER
        + "AAPL,2024-01-02T14:30:00Z,1,1,1,1,1,,\n"
        + "MSFT,garbage,1,1,1,1,1,,\n"
        + "AAPL,2024-01-02T14:31:00Z,1,1,1,1,1,,\n",
        symbols=("AAPL",),
    )
    assert result.problems == []
    assert [b.symbol for b in result.bars] == ["AAPL"]
    assert len(result.bars[0]) == 2
    assert result.rows_read == 3
    assert (
        _read(
            "time,open,high,low,close,volume\n2024-01-02,1,1,1,1,1\n",
            default_symbol="SPY",
            symbols=("QQQ",),
        ).bars
        == []
    )


@pytest.mark.parametrize(
    ("header", "kwargs", "field"),
    [
        ("symbol,time,open,high,low,close\n", {}, "column_mapping"),  # no volume
        ("time,open,high,low,close,volume\n", {}, "default_symbol"),
        ("time,open,high,low,close,volume\n", {"default_symbol": "bad sym"}, "default_symbol"),
        (HEADER, {"column_mapping": {"open": "opening"}}, "column_mapping['open']"),
        (HEADER, {"column_mapping": {"Nope": "open"}}, "column_mapping['Nope']"),
        ("symbol,time,Open,open,high,low,close,volume\n", {}, "column_mapping"),
    ],
)
def test_header_problems_are_invalid_input(
    header: str, kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        _read(header, **kwargs)
    assert field in [v.field for v in caught.value.violations]


def test_unparsable_bytes_are_a_source_error() -> None:
    with pytest.raises(SourceError):
        read_csv_bars(b"", interval=Interval.D1)
    with pytest.raises(SourceError):
        read_csv_bars(HEADER.encode() + b"AAPL,\xff\xfe,1,1,1,1,1,,\n", interval=Interval.D1)


def test_million_rows_fast_and_exact() -> None:
    n = 200_000
    rng = np.random.default_rng(7)
    open_ = np.round(rng.uniform(10, 20, n), 4)
    seconds = 1_700_000_040 + (np.arange(n) // 4) * 60
    symbols = np.array(["AAPL", "MSFT", "NVDA", "SPY"])[np.arange(n) % 4]
    lines = [
        f"{s},{t},{o},{o + 1},{o - 1},{o},{i}\n"
        for i, (s, t, o) in enumerate(zip(symbols, seconds, open_, strict=True))
    ]
    lines[1000] = "AAPL,1700000040,1,1,1,1,1\n"  # duplicate of the first AAPL row (line 2)
    data = ("symbol,time,open,high,low,close,volume\n" + "".join(lines)).encode()
    began = time.perf_counter()
    result = read_csv_bars(data, interval=Interval.M1)
    elapsed = time.perf_counter() - began
    assert result.rows_read == n
    assert [(p.line, p.field) for p in result.problems] == [(1002, "time")]
    assert sum(len(b) for b in result.bars) == n - 1
    msft = result.bars[1]
    assert msft.symbol == "MSFT"
    assert np.all(np.diff(msft.start_time_ns) > 0)
    assert msft.open[0] == open_[1]
    # ~0.1 s here; a generous bound so a loaded CI machine does not flake.
    assert elapsed < 5.0
