"""StreamService as a client sees it: ListTables describes the lake's Iceberg tables,
ListAlerts reads gold.alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pyarrow as pa
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from pyiceberg.catalog import Catalog

from financelake.gen.common.v1 import alert_pb2, bar_pb2
from financelake.gen.stream.v1 import stream_service_pb2 as pb
from financelake.gen.stream.v1 import stream_service_pb2_grpc as pb_grpc
from financelake.services.settings import Settings
from financelake.services.stream.server import build_server
from financelake.stream.lake import ALERTS, TICKS, LakeWriter
from financelake.stream.lake.catalog import open_catalog
from tests.fixtures.grpc import RunningServer, StartServer, field_violations, stub_for

pytestmark = pytest.mark.integration


@pytest.fixture
async def stream(grpc_server: StartServer, grpc_settings: Settings) -> RunningServer:
    return await grpc_server(build_server)


def _stub(running: RunningServer) -> pb_grpc.StreamServiceStub:
    return stub_for(pb_grpc.StreamServiceStub, running.channel)


async def test_lists_the_lake_tables_with_schema_and_partitioning(stream: RunningServer) -> None:
    response = await _stub(stream).ListTables(pb.ListTablesRequest(), timeout=10)

    assert [t.table for t in response.tables] == ["bronze.ticks", "gold.alerts", "silver.bars"]
    ticks = response.tables[0]
    assert list(ticks.partition_fields) == ["day(event_time)", "bucket[16](symbol)"]
    assert {f.name for f in ticks.fields} >= {"symbol", "event_time", "price", "kafka_offset"}
    assert all(f.doc for f in ticks.fields)
    assert (ticks.total_rows, len(ticks.snapshots)) == (0, 0)
    assert response.next_page_token == ""


async def test_rows_and_snapshots_show_after_a_commit(
    stream: RunningServer, grpc_settings: Settings
) -> None:
    catalog: Catalog = open_catalog(grpc_settings)
    table = catalog.load_table(TICKS.identifier)
    rows = pa.Table.from_pylist(
        [
            {
                "symbol": "AAPL",
                "event_time": 1_700_000_000_000_000,
                "price": 190.5,
                "size": 100.0,
                "exchange": "XNAS",
                "trade_id": "t1",
                "ingest_time": 1_700_000_000_100_000,
                "kafka_partition": 0,
                "kafka_offset": 41,
            }
        ],
        schema=table.schema().as_arrow(),
    )
    LakeWriter().append(table, rows, {("financelake.ticks.v1", 0): 42}, "bronze")

    response = await _stub(stream).ListTables(pb.ListTablesRequest(namespace="bronze"), timeout=10)

    (ticks,) = response.tables
    assert ticks.total_rows == 1
    assert ticks.total_files == 1
    (snapshot,) = ticks.snapshots
    assert snapshot.operation == "append"
    assert "financelake.offsets.bronze" in snapshot.summary


async def test_pages_follow_each_other(stream: RunningServer) -> None:
    stub = _stub(stream)
    seen: list[str] = []
    token = ""
    while True:
        page = await stub.ListTables(pb.ListTablesRequest(page_size=1, page_token=token))
        seen += [t.table for t in page.tables]
        token = page.next_page_token
        if not token:
            break
    assert seen == ["bronze.ticks", "gold.alerts", "silver.bars"]


async def test_a_forged_page_token_is_invalid_argument(stream: RunningServer) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _stub(stream).ListTables(pb.ListTablesRequest(page_token="%%%"), timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in field_violations(refused.value)] == ["page_token"]


def _alerts(rows: list[tuple[str, str, int]]) -> list[dict[str, object]]:
    """gold.alerts rows from (alert id, symbol, event minute)."""
    base = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
    return [
        {
            "alert_id": alert_id,
            "symbol": symbol,
            "interval": "1m",
            "kind": "volume_spike" if symbol == "MSFT" else "price_move",
            "severity": "warning",
            "event_time": base + timedelta(minutes=minute),
            "detected_time": base + timedelta(minutes=minute + 1),
            "value": 0.031,
            "score": 5.1,
            "threshold": 4.0,
            "message": f"{symbol} moved",
        }
        for alert_id, symbol, minute in rows
    ]


@pytest.fixture
def alerts_in_the_lake(stream: RunningServer, grpc_settings: Settings) -> None:
    table = open_catalog(grpc_settings).load_table(ALERTS.identifier)
    rows = _alerts([("a1", "AAPL", 0), ("a2", "MSFT", 1), ("a3", "AAPL", 2), ("a4", "AAPL", 3)])
    arrow = pa.Table.from_pylist(rows, schema=table.schema().as_arrow())
    LakeWriter().append(table, arrow, {("financelake.alerts.v1", 0): 4}, "alerts")


@pytest.mark.usefixtures("alerts_in_the_lake")
async def test_alerts_come_back_newest_first_with_their_fields(stream: RunningServer) -> None:
    response = await _stub(stream).ListAlerts(pb.ListAlertsRequest(), timeout=10)

    assert [a.alert_id for a in response.alerts] == ["a4", "a3", "a2", "a1"]
    msft = response.alerts[2]
    assert (msft.symbol, msft.kind, msft.severity, msft.interval) == (
        "MSFT",
        alert_pb2.ALERT_KIND_VOLUME_SPIKE,
        alert_pb2.ALERT_SEVERITY_WARNING,
        bar_pb2.INTERVAL_1M,
    )
    assert msft.event_time.ToDatetime(tzinfo=UTC) == datetime(2026, 3, 2, 14, 31, tzinfo=UTC)


@pytest.mark.usefixtures("alerts_in_the_lake")
async def test_alerts_filter_by_symbol_kind_and_time(stream: RunningServer) -> None:
    stub = _stub(stream)
    by_symbol = await stub.ListAlerts(pb.ListAlertsRequest(symbols=["MSFT"]))
    assert [a.alert_id for a in by_symbol.alerts] == ["a2"]
    by_kind = await stub.ListAlerts(pb.ListAlertsRequest(kinds=[alert_pb2.ALERT_KIND_PRICE_MOVE]))
    assert [a.alert_id for a in by_kind.alerts] == ["a4", "a3", "a1"]
    start, end = Timestamp(), Timestamp()
    start.FromDatetime(datetime(2026, 3, 2, 14, 31, tzinfo=UTC))
    end.FromDatetime(datetime(2026, 3, 2, 14, 33, tzinfo=UTC))
    window = await stub.ListAlerts(pb.ListAlertsRequest(start_time=start, end_time=end))
    assert [a.alert_id for a in window.alerts] == ["a3", "a2"]


@pytest.mark.usefixtures("alerts_in_the_lake")
async def test_alert_pages_cover_every_alert_once(stream: RunningServer) -> None:
    stub = _stub(stream)
    seen: list[str] = []
    token = ""
    while True:
        page = await stub.ListAlerts(pb.ListAlertsRequest(page_size=3, page_token=token))
        seen += [a.alert_id for a in page.alerts]
        token = page.next_page_token
        if not token:
            break
    assert seen == ["a4", "a3", "a2", "a1"]
