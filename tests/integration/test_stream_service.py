"""StreamService.ListTables describes the lake's Iceberg tables as a client sees them."""

from __future__ import annotations

import grpc
import pyarrow as pa
import pytest
from pyiceberg.catalog import Catalog

from financelake.gen.stream.v1 import stream_service_pb2 as pb
from financelake.gen.stream.v1 import stream_service_pb2_grpc as pb_grpc
from financelake.services.settings import Settings
from financelake.services.stream.server import build_server
from financelake.stream.lake import TICKS, LakeWriter
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
