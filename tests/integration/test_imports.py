"""ImportHistory end to end: a source's rows reach the bars (or ticks) topic, progress is
reported as it goes, refused rows come back with their line, and a failing source says why."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
import requests
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import SecretStr

from financelake.gen.common.v1 import bar_pb2, corporate_action_pb2, tick_pb2
from financelake.gen.ingestion.v1 import import_pb2
from financelake.gen.ingestion.v1 import ingestion_service_pb2 as pb
from financelake.gen.ingestion.v1 import ingestion_service_pb2_grpc as pb_grpc
from financelake.services.ingestion.convert import bar_messages
from financelake.services.ingestion.records import Interval
from financelake.services.ingestion.server import build_server
from financelake.services.ingestion.sources import yahoo
from financelake.services.ingestion.sources.synthetic import simulate_bars
from financelake.services.ingestion.sources.synthetic_model import SyntheticOptions
from financelake.services.ingestion.sources.yahoo import YahooClient
from financelake.services.settings import Settings
from tests.fixtures.alphavantage import KEY
from tests.fixtures.grpc import RunningServer, StartServer, stub_for
from tests.fixtures.ingestion import read_topic, wait_serving
from tests.fixtures.yahoo import RecordedYahoo, forget_yahoo_session

pytestmark = pytest.mark.integration

MONDAY = datetime(2025, 3, 3, tzinfo=UTC)
WEDNESDAY = datetime(2025, 3, 5, tzinfo=UTC)


def _timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


async def _run(
    running: RunningServer, request: pb.ImportHistoryRequest
) -> list[pb.ImportHistoryResponse]:
    stub = stub_for(pb_grpc.IngestionServiceStub, running.channel)
    return [update async for update in stub.ImportHistory(request, timeout=60)]


async def test_synthetic_bars_are_published_exactly_as_simulated(
    ingestion: RunningServer, kafka_bootstrap: str, bars_topic: str
) -> None:
    request = pb.ImportHistoryRequest(
        source=import_pb2.IMPORT_SOURCE_SYNTHETIC,
        symbols=["AAPL", "MSFT"],
        interval=bar_pb2.INTERVAL_5M,
        start_time=_timestamp(MONDAY),
        end_time=_timestamp(WEDNESDAY),
        synthetic=import_pb2.SyntheticOptions(seed=7),
    )
    updates = await _run(ingestion, request)

    assert updates[0].state == import_pb2.IMPORT_STATE_RUNNING
    assert updates[-1].state == import_pb2.IMPORT_STATE_DONE
    assert {u.current_symbol for u in updates[1:-1]} == {"AAPL", "MSFT"}
    expected = [
        bar.SerializeToString()
        for bars in simulate_bars(
            ["AAPL", "MSFT"],
            Interval.M5,
            int(MONDAY.timestamp() * 1e9),
            int(WEDNESDAY.timestamp() * 1e9),
            SyntheticOptions.with_defaults(seed=7),
        )
        for bar in bar_messages(bars)
    ]
    assert updates[-1].rows_published == updates[-1].rows_fetched == len(expected) == 2 * 2 * 78
    records = read_topic(kafka_bootstrap, bars_topic, expected=len(expected))
    assert sorted(value for *_, value in records) == sorted(expected)


async def test_synthetic_trades_go_to_the_ticks_topic(
    ingestion: RunningServer, kafka_bootstrap: str, ticks_topic: str
) -> None:
    request = pb.ImportHistoryRequest(
        source=import_pb2.IMPORT_SOURCE_SYNTHETIC,
        symbols=["BTC-USD"],
        start_time=_timestamp(MONDAY),
        end_time=_timestamp(datetime(2025, 3, 3, 2, tzinfo=UTC)),
        synthetic=import_pb2.SyntheticOptions(
            seed=1, output=import_pb2.SYNTHETIC_OUTPUT_TRADES, calendar="24x7"
        ),
    )
    updates = await _run(ingestion, request)

    done = updates[-1]
    assert done.state == import_pb2.IMPORT_STATE_DONE
    assert done.rows_published > 1_000  # two hours at ~60 trades a minute
    records = read_topic(kafka_bootstrap, ticks_topic, expected=1)
    batches = [tick_pb2.TickBatch.FromString(value) for *_, value in records]
    assert sum(len(batch.prices) for batch in batches) == done.rows_published
    assert {key for _, _, key, _ in records} == {b"BTC-USD"}


CSV = b"""symbol,time,open,high,low,close,volume
AAPL,2025-03-03T14:30:00Z,100,101,99.5,100.5,1000
AAPL,2025-03-03T14:31:00Z,100.5,100,99,99.5,10
AAPL,2025-03-03T14:32:00Z,99.5,100,99,99.8,500
MSFT,2025-03-03T14:30:00Z,400,401,399,400.5,nan-ish
"""


async def test_csv_bytes_publish_good_rows_and_report_bad_ones_by_line(
    ingestion: RunningServer, kafka_bootstrap: str, bars_topic: str
) -> None:
    request = pb.ImportHistoryRequest(
        source=import_pb2.IMPORT_SOURCE_CSV,
        interval=bar_pb2.INTERVAL_1M,
        csv=import_pb2.CsvOptions(data=CSV),
    )
    updates = await _run(ingestion, request)

    done = updates[-1]
    assert done.state == import_pb2.IMPORT_STATE_DONE
    assert (done.rows_fetched, done.rows_published) == (4, 2)
    refused = {(e.line, e.field) for u in updates for e in u.row_errors}
    assert refused == {(3, "open"), (5, "volume")}  # open above the high; not a number
    bars = [bar_pb2.Bar.FromString(v) for *_, v in read_topic(kafka_bootstrap, bars_topic, 2)]
    assert sorted(b.close for b in bars) == [99.8, 100.5]
    assert {b.source for b in bars} == {bar_pb2.BAR_SOURCE_CSV}


async def test_csv_paths_are_refused_unless_an_import_folder_is_configured(
    ingestion: RunningServer,
) -> None:
    request = pb.ImportHistoryRequest(
        source=import_pb2.IMPORT_SOURCE_CSV,
        interval=bar_pb2.INTERVAL_1D,
        csv=import_pb2.CsvOptions(path="/etc/passwd"),
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _run(ingestion, request)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "FINANCELAKE_INGESTION__CSV_IMPORT_DIR" in refused.value.details()


@pytest.fixture
async def alphavantage_ingestion(
    grpc_server: StartServer,
    ingestion_settings: Settings,
    alphavantage_server: tuple[str, list[dict[str, str]]],
) -> RunningServer:
    sources = ingestion_settings.sources.model_copy(
        update={
            "alphavantage_api_key": SecretStr(KEY),
            "alphavantage_base_url": alphavantage_server[0],
            "alphavantage_requests_per_minute": 1000.0,
        }
    )
    settings = ingestion_settings.model_copy(update={"sources": sources})
    running = await grpc_server(lambda _, health: build_server(settings, health))
    await wait_serving(running.channel)
    return running


async def test_alphavantage_daily_bars_are_imported(
    alphavantage_ingestion: RunningServer, kafka_bootstrap: str, bars_topic: str
) -> None:
    request = pb.ImportHistoryRequest(
        source=import_pb2.IMPORT_SOURCE_ALPHAVANTAGE,
        symbols=["IBM"],
        interval=bar_pb2.INTERVAL_1D,
        start_time=_timestamp(datetime(2000, 1, 1, tzinfo=UTC)),
    )
    updates = await _run(alphavantage_ingestion, request)

    done = updates[-1]
    assert done.state == import_pb2.IMPORT_STATE_DONE, done.message
    assert done.rows_published > 0
    records = read_topic(kafka_bootstrap, bars_topic, expected=done.rows_published)
    bars = [bar_pb2.Bar.FromString(value) for *_, value in records]
    assert len(bars) == done.rows_published
    assert {(b.symbol, b.source, b.interval) for b in bars} == {
        ("IBM", bar_pb2.BAR_SOURCE_ALPHAVANTAGE, bar_pb2.INTERVAL_1D)
    }


async def test_a_failing_source_ends_with_failed_and_its_reason(
    alphavantage_ingestion: RunningServer,
) -> None:
    request = pb.ImportHistoryRequest(
        source=import_pb2.IMPORT_SOURCE_ALPHAVANTAGE,
        symbols=["THROTTLED"],
        interval=bar_pb2.INTERVAL_1D,
        start_time=_timestamp(datetime(2024, 1, 1, tzinfo=UTC)),
    )
    updates = await _run(alphavantage_ingestion, request)

    assert updates[-1].state == import_pb2.IMPORT_STATE_FAILED
    assert "429" in updates[-1].message or "rate" in updates[-1].message.lower()
    assert updates[-1].rows_published == 0


@pytest.fixture
def recorded_yahoo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The server's Yahoo client talks to recorded Yahoo answers instead of the internet."""
    session = requests.Session()
    session.mount("https://", RecordedYahoo())
    forget_yahoo_session()

    def recorded_client(**options: object) -> YahooClient:
        return YahooClient(session=session, timeout_s=5, cache_dir=tmp_path / "yfinance")

    monkeypatch.setattr(yahoo, "YahooClient", recorded_client)


@pytest.mark.usefixtures("recorded_yahoo")
async def test_yahoo_daily_bars_and_their_dividend_are_imported(
    ingestion: RunningServer, kafka_bootstrap: str, bars_topic: str, actions_topic: str
) -> None:
    request = pb.ImportHistoryRequest(
        source=import_pb2.IMPORT_SOURCE_YAHOO,
        symbols=["AAPL"],
        interval=bar_pb2.INTERVAL_1D,
        start_time=_timestamp(datetime(2024, 2, 7, tzinfo=UTC)),
        end_time=_timestamp(datetime(2024, 2, 13, tzinfo=UTC)),
        adjusted=True,
    )
    updates = await _run(ingestion, request)

    done = updates[-1]
    assert done.state == import_pb2.IMPORT_STATE_DONE, done.message
    assert done.rows_published == 4
    assert done.actions_published == 1
    bars = [bar_pb2.Bar.FromString(v) for *_, v in read_topic(kafka_bootstrap, bars_topic, 4)]
    assert sorted(round(b.close, 2) for b in bars) == [187.15, 188.08, 188.85, 189.17]
    assert all(b.adjusted and b.source == bar_pb2.BAR_SOURCE_YAHOO for b in bars)
    (record,) = read_topic(kafka_bootstrap, actions_topic, 1)
    dividend = corporate_action_pb2.CorporateAction.FromString(record[3])
    assert (dividend.symbol, dividend.dividend, dividend.split_ratio) == ("AAPL", 0.24, 1.0)
    assert dividend.ex_date.ToDatetime(tzinfo=UTC) == datetime(2024, 2, 9, tzinfo=UTC)
    assert dividend.source == bar_pb2.BAR_SOURCE_YAHOO
