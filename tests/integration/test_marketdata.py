"""MarketDataService as a client sees it: GetBars and ListSymbols over `silver.bars` on a real
SqlCatalog (the settings' home in tmp_path), through a real server on port 0.

The lake holds known 1m bars of two symbols over three days (one amended by a revision 1,
one minute also imported from another source), imported 1d bars of one of them, and single
bars of a few more symbols for the search. Coarser bars are checked against an independent
pandas resample of the same 1m bars.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pandas as pd
import pyarrow as pa
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from financelake.gen.common.v1 import bar_pb2
from financelake.gen.marketdata.v1 import marketdata_service_pb2 as pb
from financelake.gen.marketdata.v1 import marketdata_service_pb2_grpc as pb_grpc
from financelake.services.ingestion.records import Interval
from financelake.services.marketdata.bar_store import SERVED_COLUMNS, BarStore, UnknownSymbol
from financelake.services.marketdata.server import build_server
from financelake.services.marketdata.windows import window_end, window_start
from financelake.services.settings import Settings
from financelake.stream.lake import BARS, ensure_tables
from financelake.stream.lake.catalog import open_catalog
from tests.fixtures.grpc import RunningServer, StartServer, error_info, field_violations, stub_for

pytestmark = pytest.mark.integration

DAY0 = datetime(2026, 2, 28, tzinfo=UTC)  # a Saturday: the three days span two weeks
DAYS = 3
SESSION_START = timedelta(hours=14, minutes=30)
MINUTES = 90
AMENDED = DAY0 + timedelta(days=1, hours=15)  # AAPL's bar amended by revision 1
DOUBLE = DAY0 + timedelta(days=2) + SESSION_START  # AAPL's minute also imported from yahoo
SEARCH_SYMBOLS = ("BA", "BABA", "ABAT")
RANGE = (DAY0 - timedelta(days=7), DAY0 + timedelta(days=7))
INTERVALS = {
    bar_pb2.INTERVAL_1M: "1min",
    bar_pb2.INTERVAL_5M: "5min",
    bar_pb2.INTERVAL_15M: "15min",
    bar_pb2.INTERVAL_30M: "30min",
    bar_pb2.INTERVAL_1H: "1h",
    bar_pb2.INTERVAL_1D: "1D",
    bar_pb2.INTERVAL_1WK: "W-MON",
}


def _bar(
    symbol: str,
    interval: str,
    start: datetime,
    close: float,
    volume: float,
    *,
    source: str = "trades",
    revision: int = 0,
    adjusted: bool = False,
) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "interval": interval,
        "start_time": start,
        "open": close - 0.25,
        "high": close + 0.5,
        "low": close - 0.75,
        "close": close,
        "volume": volume,
        "vwap": close - 0.1,
        "trade_count": int(volume // 10),
        "source": source,
        "adjusted": adjusted,
        "revision": revision,
    }


def _minute_bars(symbol: str, base: float) -> list[dict[str, Any]]:
    rows = []
    for day in range(DAYS):
        for minute in range(MINUTES):
            start = DAY0 + timedelta(days=day) + SESSION_START + timedelta(minutes=minute)
            close = base + day * 2 + (minute % 17) * 0.1 - (minute % 5) * 0.03
            rows.append(_bar(symbol, "1m", start, round(close, 4), 100.0 + minute * 3 + day))
    return rows


def _written() -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """Every row written, and per symbol the 1m bars the service must serve."""
    aapl, msft = _minute_bars("AAPL", 190.0), _minute_bars("MSFT", 410.0)
    amended = _bar("AAPL", "1m", AMENDED, 199.99, 5_000.0, revision=1)
    served_aapl = [amended if row["start_time"] == AMENDED else row for row in aapl]
    extra = [
        amended,
        _bar("AAPL", "1m", DOUBLE, 1.0, 1.0, source="yahoo", revision=3),
        *(
            _bar(
                "MSFT",
                "1d",
                DAY0 + timedelta(days=d),
                400.0 + d,
                1e6,
                source="synthetic",
                adjusted=True,
            )
            for d in range(-2, DAYS)
        ),
        *(_bar(s, "1m", DAY0 + SESSION_START, 50.0, 10.0) for s in SEARCH_SYMBOLS),
    ]
    return aapl + msft + extra, {"AAPL": served_aapl, "MSFT": msft}


ROWS, SERVED = _written()


def _write(settings: Settings, rows: list[dict[str, Any]]) -> None:
    table = ensure_tables(open_catalog(settings))[BARS.identifier]
    half = len(rows) // 2  # two commits: the reader merges snapshots' files
    for part in (rows[:half], rows[half:]):
        table.append(pa.Table.from_pylist(part, schema=table.schema().as_arrow()))


@pytest.fixture
async def lake(grpc_server: StartServer, grpc_settings: Settings) -> RunningServer:
    """The server over a lake holding `ROWS`."""
    await asyncio.to_thread(_write, grpc_settings, ROWS)
    return await grpc_server(build_server)


@pytest.fixture
async def empty_lake(grpc_server: StartServer) -> RunningServer:
    return await grpc_server(build_server)


def _stub(running: RunningServer) -> pb_grpc.MarketDataServiceStub:
    return stub_for(pb_grpc.MarketDataServiceStub, running.channel)


def _ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _request(
    symbol: str,
    interval: bar_pb2.Interval,
    start: datetime = RANGE[0],
    end: datetime = RANGE[1],
    **fields: Any,
) -> pb.GetBarsRequest:
    return pb.GetBarsRequest(
        symbol=symbol, interval=interval, start_time=_ts(start), end_time=_ts(end), **fields
    )


def _row(bar: bar_pb2.Bar) -> dict[str, Any]:
    return {
        "start_time": bar.start_time.ToDatetime(tzinfo=UTC),
        "open": bar.open,
        "high": bar.high,
        "low": bar.low,
        "close": bar.close,
        "volume": bar.volume,
        "vwap": bar.vwap,
        "trade_count": bar.trade_count,
    }


def _resampled(rows: list[dict[str, Any]], rule: str) -> list[dict[str, Any]]:
    """The independent reference: pandas resampling of the 1m rows to UTC windows."""
    frame = pd.DataFrame(rows).set_index("start_time").sort_index()
    frame["notional"] = frame["vwap"] * frame["volume"]
    # Intraday windows are epoch aligned; days are UTC days, W-MON weeks start on Monday.
    intraday = rule.endswith(("min", "h"))
    grouped = frame.resample(
        rule, closed="left", label="left", **({"origin": "epoch"} if intraday else {})
    )
    out = grouped.agg(
        {
            "open": "first",
            "high": "max",
            "low": "min",
            "close": "last",
            "volume": "sum",
            "notional": "sum",
            "trade_count": "sum",
            "symbol": "count",
        }
    )
    out = out[out["symbol"] > 0]
    out["vwap"] = out["notional"] / out["volume"]
    records = []
    for start, row in out.iterrows():
        moment = pd.Timestamp(start).to_pydatetime()
        records.append(
            {
                "start_time": moment.astimezone(UTC),
                **{k: row[k] for k in ("open", "high", "low", "close", "volume", "vwap")},
                "trade_count": int(row["trade_count"]),
            }
        )
    return records


def _assert_rows(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    """Same times and trade counts; prices and volumes equal up to float rounding."""
    exact = ("start_time", "trade_count")
    assert [[r[k] for k in exact] for r in got] == [[r[k] for k in exact] for r in expected]
    for row, want in zip(got, expected, strict=True):
        numbers = {k: v for k, v in want.items() if k not in exact}
        assert {k: row[k] for k in numbers} == pytest.approx(numbers, rel=1e-12), row


async def _all_pages(
    stub: pb_grpc.MarketDataServiceStub, request: pb.GetBarsRequest
) -> list[bar_pb2.Bar]:
    bars: list[bar_pb2.Bar] = []
    while True:
        page = await stub.GetBars(request, timeout=30)
        bars.extend(page.bars)
        if not page.next_page_token:
            return bars
        request.page_token = page.next_page_token


async def test_1m_bars_are_the_written_ones_latest_revision_trades_first(
    lake: RunningServer,
) -> None:
    response = await _stub(lake).GetBars(_request("AAPL", bar_pb2.INTERVAL_1M), timeout=30)

    assert [_row(bar) for bar in response.bars] == [
        {k: v for k, v in row.items() if k in _row(bar_pb2.Bar())} for row in SERVED["AAPL"]
    ]
    assert response.next_page_token == ""
    amended = next(b for b in response.bars if b.start_time == _ts(AMENDED))
    assert (amended.revision, amended.close, amended.volume) == (1, 199.99, 5_000.0)
    double = next(b for b in response.bars if b.start_time == _ts(DOUBLE))
    assert (double.source, double.revision) == (bar_pb2.BAR_SOURCE_TRADES, 0)
    assert {(b.symbol, b.interval, b.adjusted) for b in response.bars} == {
        ("AAPL", bar_pb2.INTERVAL_1M, False)
    }


@pytest.mark.parametrize(
    "interval",
    [
        bar_pb2.INTERVAL_5M,
        bar_pb2.INTERVAL_15M,
        bar_pb2.INTERVAL_30M,
        bar_pb2.INTERVAL_1H,
        bar_pb2.INTERVAL_1D,
        bar_pb2.INTERVAL_1WK,
    ],
)
async def test_coarser_bars_equal_a_pandas_resample_of_the_1m_bars(
    lake: RunningServer, interval: bar_pb2.Interval
) -> None:
    response = await _stub(lake).GetBars(_request("AAPL", interval), timeout=30)

    _assert_rows(
        [_row(bar) for bar in response.bars], _resampled(SERVED["AAPL"], INTERVALS[interval])
    )
    assert {(b.source, b.interval) for b in response.bars} == {
        (bar_pb2.BAR_SOURCE_TRADES, interval)
    }
    # The window holding the amended minute carries its revision.
    revised = window_start(int(AMENDED.timestamp()) * 10**9, _domain(interval))
    assert {b.start_time.ToNanoseconds(): b.revision for b in response.bars}[revised] == 1


def _domain(interval: bar_pb2.Interval) -> Interval:
    return {
        bar_pb2.INTERVAL_5M: Interval.M5,
        bar_pb2.INTERVAL_15M: Interval.M15,
        bar_pb2.INTERVAL_30M: Interval.M30,
        bar_pb2.INTERVAL_1H: Interval.H1,
        bar_pb2.INTERVAL_1D: Interval.D1,
        bar_pb2.INTERVAL_1WK: Interval.WK1,
    }[interval]


async def test_a_range_cutting_windows_keeps_the_edge_windows_whole(lake: RunningServer) -> None:
    # From mid-window to mid-window: the bars starting inside are complete windows.
    start = DAY0 + SESSION_START + timedelta(minutes=7)
    end = DAY0 + SESSION_START + timedelta(minutes=52)
    response = await _stub(lake).GetBars(
        _request("AAPL", bar_pb2.INTERVAL_15M, start, end), timeout=30
    )

    expected = [r for r in _resampled(SERVED["AAPL"], "15min") if start <= r["start_time"] < end]
    _assert_rows([_row(b) for b in response.bars], expected)
    assert len(response.bars) == 3  # 14:45, 15:00, 15:15; the 15:15 window ends after `end`


async def test_imported_daily_bars_are_served_as_imported(lake: RunningServer) -> None:
    response = await _stub(lake).GetBars(_request("MSFT", bar_pb2.INTERVAL_1D), timeout=30)

    imported = [r for r in ROWS if r["symbol"] == "MSFT" and r["interval"] == "1d"]
    assert [(_row(b)["start_time"], b.close) for b in response.bars] == [
        (r["start_time"], r["close"]) for r in imported
    ]
    assert {(b.source, b.adjusted) for b in response.bars} == {(bar_pb2.BAR_SOURCE_SYNTHETIC, True)}


async def test_pages_of_seven_return_every_bar_once_in_order(lake: RunningServer) -> None:
    stub = _stub(lake)
    whole = await stub.GetBars(_request("MSFT", bar_pb2.INTERVAL_1M), timeout=30)

    paged = await _all_pages(stub, _request("MSFT", bar_pb2.INTERVAL_1M, page_size=7))

    assert len(whole.bars) == DAYS * MINUTES
    assert [b.start_time.ToNanoseconds() for b in paged] == [
        b.start_time.ToNanoseconds() for b in whole.bars
    ]
    assert list(paged) == list(whole.bars)


async def test_resampled_pages_match_the_whole_range(lake: RunningServer) -> None:
    stub = _stub(lake)
    whole = await stub.GetBars(_request("AAPL", bar_pb2.INTERVAL_5M), timeout=30)

    paged = await _all_pages(stub, _request("AAPL", bar_pb2.INTERVAL_5M, page_size=7))

    assert list(paged) == list(whole.bars)


@pytest.mark.parametrize(
    ("interval", "page_size"), [(bar_pb2.INTERVAL_1M, 200), (bar_pb2.INTERVAL_15M, 7)]
)
async def test_arrow_pages_hold_the_same_bars_as_the_messages(
    lake: RunningServer, interval: bar_pb2.Interval, page_size: int
) -> None:
    stub = _stub(lake)
    messages = await _all_pages(stub, _request("AAPL", interval, page_size=page_size))
    request = _request("AAPL", interval, page_size=page_size, format=pb.BARS_FORMAT_ARROW)
    pages: list[pa.Table] = []
    while True:
        page = await stub.GetBars(request, timeout=30)
        assert not page.bars
        pages.append(pa.ipc.open_stream(page.arrow_stream).read_all())
        if not page.next_page_token:
            break
        request.page_token = page.next_page_token

    table = pa.concat_tables(pages)
    assert len(pages) > 1
    name = _domain(interval).value.encode() if interval != bar_pb2.INTERVAL_1M else b"1m"
    assert table.schema.metadata == {b"symbol": b"AAPL", b"interval": name}
    assert table.schema.field("start_time").type == pa.timestamp("us", tz="UTC")
    sources = {"trades": bar_pb2.BAR_SOURCE_TRADES}
    assert [{**row, "source": sources[row["source"]]} for row in table.to_pylist()] == [
        {
            **_row(bar),
            "source": bar.source,
            "adjusted": bar.adjusted,
            "revision": bar.revision,
        }
        for bar in messages
    ]


async def test_a_page_token_of_another_request_is_invalid_argument(lake: RunningServer) -> None:
    stub = _stub(lake)
    first = await stub.GetBars(_request("MSFT", bar_pb2.INTERVAL_1M, page_size=7), timeout=30)
    assert first.next_page_token

    for other in (
        _request("AAPL", bar_pb2.INTERVAL_1M, page_size=7),
        _request("MSFT", bar_pb2.INTERVAL_5M, page_size=7),
        _request("MSFT", bar_pb2.INTERVAL_1M, RANGE[0], RANGE[1] + timedelta(days=1)),
    ):
        other.page_token = first.next_page_token
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.GetBars(other, timeout=30)
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert [field for field, _ in field_violations(refused.value)] == ["page_token"]
        assert error_info(refused.value).reason == "INVALID_PAGE_TOKEN"

    garbage = _request("MSFT", bar_pb2.INTERVAL_1M, page_token="%%%")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.GetBars(garbage, timeout=30)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_an_unknown_symbol_is_not_found(lake: RunningServer) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _stub(lake).GetBars(_request("NOPE", bar_pb2.INTERVAL_1M), timeout=30)

    assert refused.value.code() is grpc.StatusCode.NOT_FOUND
    info = error_info(refused.value)
    assert (info.reason, info.metadata["symbol"]) == ("SYMBOL_NOT_FOUND", "NOPE")


async def test_a_known_symbol_with_no_bars_in_the_range_is_an_empty_page(
    lake: RunningServer,
) -> None:
    later = DAY0 + timedelta(days=30)
    response = await _stub(lake).GetBars(
        _request("AAPL", bar_pb2.INTERVAL_1H, later, later + timedelta(days=1)), timeout=30
    )
    assert (list(response.bars), response.next_page_token) == ([], "")


async def test_an_inverted_range_is_invalid_argument(lake: RunningServer) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _stub(lake).GetBars(
            _request("AAPL", bar_pb2.INTERVAL_1M, RANGE[1], RANGE[0]), timeout=30
        )

    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    # A message-level protovalidate rule has no field path: its message names the fields.
    assert field_violations(refused.value) == [("end_time", "end_time must be after start_time")]
    assert "end_time must be after start_time" in (refused.value.details() or "")


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"page_size": 10_001}, "page_size"),
        ({"page_size": 40_001, "format": pb.BARS_FORMAT_ARROW}, "page_size"),
        ({"interval": bar_pb2.INTERVAL_UNSPECIFIED}, "interval"),
    ],
    ids=["messages-page-size", "arrow-page-size", "interval"],
)
async def test_out_of_contract_fields_are_invalid_argument(
    lake: RunningServer, request_fields: dict[str, Any], field: str
) -> None:
    request = _request("AAPL", bar_pb2.INTERVAL_1M)
    for name, value in request_fields.items():
        setattr(request, name, value)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _stub(lake).GetBars(request, timeout=30)

    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [name for name, _ in field_violations(refused.value)] == [field]


def _summary_of(symbol: str) -> dict[str, Any]:
    """What ListSymbols must say of a symbol with 1m bars in SERVED."""
    rows = SERVED[symbol]
    last = rows[-1]
    today = last["start_time"].date()
    previous = [r for r in rows if r["start_time"].date() < today][-1]["close"]
    everything = [r["start_time"] for r in ROWS if r["symbol"] == symbol]
    return {
        "symbol": symbol,
        "last_price": last["close"],
        "previous_close": previous,
        "change": last["close"] - previous,
        "change_percent": (last["close"] - previous) / previous * 100,
        "volume_today": sum(r["volume"] for r in rows if r["start_time"].date() == today),
        "first": min(everything),
        "last": max(everything),
    }


def _summary(message: Any) -> dict[str, Any]:
    return {
        "symbol": message.symbol,
        "last_price": message.last_price,
        "previous_close": message.previous_close,
        "change": message.change,
        "change_percent": message.change_percent,
        "volume_today": message.volume_today,
        "first": message.first_data_time.ToDatetime(tzinfo=UTC),
        "last": message.last_data_time.ToDatetime(tzinfo=UTC),
    }


async def test_symbols_carry_last_price_day_change_and_data_times(lake: RunningServer) -> None:
    response = await _stub(lake).ListSymbols(pb.ListSymbolsRequest(), timeout=30)

    assert [s.symbol for s in response.symbols] == ["AAPL", "ABAT", "BA", "BABA", "MSFT"]
    by_name = {s.symbol: _summary(s) for s in response.symbols}
    for symbol in ("AAPL", "MSFT"):
        want = _summary_of(symbol)
        got = by_name[symbol]
        exact = ("symbol", "first", "last")
        assert [got.pop(k) for k in exact] == [want.pop(k) for k in exact]
        assert got == pytest.approx(want, rel=1e-12)
    # MSFT's first data is its imported daily bars; its prices come from its 1m bars.
    assert _summary(response.symbols[-1])["first"] == DAY0 - timedelta(days=2)
    # One day of data: no previous close, so no change.
    assert by_name["BA"] | {"first": None, "last": None} == {
        "symbol": "BA",
        "last_price": 50.0,
        "previous_close": 0.0,
        "change": 0.0,
        "change_percent": 0.0,
        "volume_today": 10.0,
        "first": None,
        "last": None,
    }
    assert response.next_page_token == ""


async def test_symbol_search_ranks_prefix_matches_first(lake: RunningServer) -> None:
    stub = _stub(lake)
    found = await stub.ListSymbols(pb.ListSymbolsRequest(query="ba"), timeout=30)
    assert [s.symbol for s in found.symbols] == ["BA", "BABA", "ABAT"]

    found = await stub.ListSymbols(pb.ListSymbolsRequest(query="sf"), timeout=30)
    assert [s.symbol for s in found.symbols] == ["MSFT"]

    found = await stub.ListSymbols(pb.ListSymbolsRequest(query="ZZZ"), timeout=30)
    assert list(found.symbols) == []


async def test_symbol_pages_follow_each_other(lake: RunningServer) -> None:
    stub = _stub(lake)
    seen: list[str] = []
    request = pb.ListSymbolsRequest(page_size=1, query="a")
    while True:
        page = await stub.ListSymbols(request, timeout=30)
        seen += [s.symbol for s in page.symbols]
        if not page.next_page_token:
            break
        request.page_token = page.next_page_token
    assert seen == ["AAPL", "ABAT", "BA", "BABA"]

    first = await stub.ListSymbols(pb.ListSymbolsRequest(page_size=1, query="a"), timeout=30)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.ListSymbols(
            pb.ListSymbolsRequest(page_size=1, query="b", page_token=first.next_page_token),
            timeout=30,
        )
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in field_violations(refused.value)] == ["page_token"]


async def test_an_empty_lake_lists_no_symbols_then_sees_new_bars(
    empty_lake: RunningServer, grpc_settings: Settings
) -> None:
    stub = _stub(empty_lake)
    response = await stub.ListSymbols(pb.ListSymbolsRequest(), timeout=30)
    assert (list(response.symbols), response.next_page_token) == ([], "")

    await asyncio.to_thread(_write, grpc_settings, [r for r in ROWS if r["symbol"] == "BA"])
    await asyncio.sleep(0.6)  # past the store's metadata refresh interval

    response = await stub.ListSymbols(pb.ListSymbolsRequest(), timeout=30)
    assert [s.symbol for s in response.symbols] == ["BA"]


def test_window_alignment_is_utc_epoch_days_and_monday_weeks() -> None:
    moment = int(datetime(2026, 3, 4, 13, 7, tzinfo=UTC).timestamp()) * 10**9
    monday = int(datetime(2026, 3, 2, tzinfo=UTC).timestamp()) * 10**9
    assert window_start(moment, Interval.WK1) == monday
    assert window_end(moment, Interval.WK1) == monday + 7 * 86_400 * 10**9
    assert window_start(moment, Interval.H1) == moment - 7 * 60 * 10**9
    assert window_end(monday, Interval.D1) == monday


async def test_the_store_reads_a_whole_range_as_the_rpc_pages_it(
    lake: RunningServer, grpc_settings: Settings
) -> None:
    store = BarStore(open_catalog(grpc_settings))
    start, end = (int(moment.timestamp()) * 10**9 for moment in RANGE)

    bars = await asyncio.to_thread(store.bars, "AAPL", Interval.H1, start, end)

    response = await _stub(lake).GetBars(_request("AAPL", bar_pb2.INTERVAL_1H), timeout=30)
    assert bars.column_names == list(SERVED_COLUMNS)
    assert bars["close"].to_pylist() == [b.close for b in response.bars]
    with pytest.raises(UnknownSymbol):
        await asyncio.to_thread(store.bars, "NOPE", Interval.H1, start, end)
