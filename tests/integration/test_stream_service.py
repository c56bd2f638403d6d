"""StreamService as a client sees it: ListTables describes the lake's Iceberg tables,
ListAlerts reads gold.alerts, GetPipelineStatus reports Kafka offsets and lake commits,
WatchAlerts streams new alerts to many watchers (on the session broker)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pyarrow as pa
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from google.protobuf.timestamp_pb2 import Timestamp
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table

from financelake.gen.common.v1 import alert_pb2, bar_pb2
from financelake.gen.stream.v1 import stream_service_pb2 as pb
from financelake.gen.stream.v1 import stream_service_pb2_grpc as pb_grpc
from financelake.services.feed import TopicFeed
from financelake.services.settings import Settings
from financelake.services.stream.server import build_server
from financelake.stream.lake import ALERTS, TABLES, TICKS, LakeWriter
from financelake.stream.lake.catalog import open_catalog
from tests.fixtures.grpc import RunningServer, StartServer, error_info, field_violations, stub_for
from tests.fixtures.ingestion import PARTITIONS, create_topic

pytestmark = pytest.mark.integration

# Sorted by identifier, as ListTables returns them.
ALL_TABLES = [
    "bronze.ticks",
    "gold.alerts",
    "gold.features",
    "gold.predictions",
    "silver.bars",
]


@pytest.fixture
async def stream(grpc_server: StartServer, grpc_settings: Settings) -> RunningServer:
    return await grpc_server(build_server)


def _stub(running: RunningServer) -> pb_grpc.StreamServiceStub:
    return stub_for(pb_grpc.StreamServiceStub, running.channel)


async def test_lists_the_lake_tables_with_schema_and_partitioning(stream: RunningServer) -> None:
    response = await _stub(stream).ListTables(pb.ListTablesRequest(), timeout=10)

    assert [t.table for t in response.tables] == ALL_TABLES
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
    assert seen == ALL_TABLES


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


# ---- GetPipelineStatus and WatchAlerts: a real broker, fresh topics, a fresh consumer group --


@pytest.fixture
def live_settings(grpc_settings: Settings, kafka_bootstrap: str) -> Settings:
    """`grpc_settings` on the session broker, with fresh topics and a fresh stream app id."""
    topics = grpc_settings.topics.model_copy(
        update={
            kind: create_topic(kafka_bootstrap, f"test-{kind}")
            for kind in ("ticks", "bars", "alerts", "actions")
        }
    )
    stream = grpc_settings.stream.model_copy(
        update={"app_id": f"test-stream-{uuid.uuid4().hex[:8]}"}
    )
    return grpc_settings.model_copy(
        update={"kafka_bootstrap": kafka_bootstrap, "topics": topics, "stream": stream}
    )


@pytest.fixture
def alert_feed(live_settings: Settings) -> TopicFeed[alert_pb2.Alert]:
    # A buffer a test can overflow: larger than what a reading watcher gets from one
    # burst (records reach the buffers a fetch at a time), smaller than all of it.
    return TopicFeed(
        live_settings.bootstrap_servers,
        live_settings.topics.alerts,
        alert_pb2.Alert.FromString,
        kafka=live_settings.kafka,
        buffer_size=24,
    )


@pytest.fixture
async def live_stream(
    grpc_server: StartServer, live_settings: Settings, alert_feed: TopicFeed[alert_pb2.Alert]
) -> RunningServer:
    return await grpc_server(
        lambda _, health: build_server(live_settings, health, alerts=alert_feed)
    )


def _produce(
    bootstrap: str, topic: str, records: Sequence[tuple[int | None, bytes, bytes]]
) -> None:
    """Write (partition or None for by-key, key, value) records and wait for the acks."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for partition, key, value in records:
        if partition is None:
            producer.produce(topic, value=value, key=key)
        else:
            producer.produce(topic, value=value, key=key, partition=partition)
    assert producer.flush(10) == 0


def _commit(bootstrap: str, group: str, offsets: dict[tuple[str, int], int]) -> None:
    """Commit `offsets` (next offset to read) for `group`, as the Faust worker would."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    try:
        consumer.commit(
            offsets=[TopicPartition(t, p, offset) for (t, p), offset in offsets.items()],
            asynchronous=False,
        )
    finally:
        consumer.close()


async def test_pipeline_status_reports_end_and_committed_offsets_and_lag(
    live_stream: RunningServer, live_settings: Settings, kafka_bootstrap: str
) -> None:
    ticks = live_settings.topics.ticks
    group = live_settings.stream.app_id
    _produce(
        kafka_bootstrap,
        ticks,
        [(0, b"AAPL", b"x")] * 5 + [(1, b"MSFT", b"y")] * 2 + [(2, b"NVDA", b"z")] * 4,
    )
    _commit(kafka_bootstrap, group, {(ticks, 0): 3, (ticks, 1): 2})

    response = await _stub(live_stream).GetPipelineStatus(pb.GetPipelineStatusRequest(), timeout=15)

    rows = [
        (p.topic, p.partition, p.consumer_group, p.end_offset, p.committed_offset, p.lag)
        for p in response.partitions
    ]
    assert rows[:PARTITIONS] == [
        (ticks, 0, group, 5, 3, 2),
        (ticks, 1, group, 2, 2, 0),
        (ticks, 2, group, 4, -1, 4),  # the group never committed here: all is waiting
    ]
    # Then the bars topic, the group's other input; the topics it only writes are not listed.
    bars = live_settings.topics.bars
    assert rows[PARTITIONS:] == [
        (bars, partition, group, 0, -1, 0) for partition in range(PARTITIONS)
    ]


def _tick_rows(table: Table, offsets: range) -> pa.Table:
    """One trade per Kafka offset of partition 0."""
    return pa.Table.from_pylist(
        [
            {
                "symbol": "AAPL",
                "event_time": 1_700_000_000_000_000 + offset,
                "price": 190.5,
                "size": 100.0,
                "exchange": "XNAS",
                "trade_id": f"t{offset}",
                "ingest_time": 1_700_000_000_100_000,
                "kafka_partition": 0,
                "kafka_offset": offset,
            }
            for offset in offsets
        ],
        schema=table.schema().as_arrow(),
    )


async def test_pipeline_status_reports_table_commits_and_agent_throughput(
    live_stream: RunningServer, live_settings: Settings
) -> None:
    app_id = live_settings.stream.app_id
    catalog = open_catalog(live_settings)
    ticks = catalog.load_table(TICKS.identifier)
    writer = LakeWriter()
    writer.append(ticks, _tick_rows(ticks, range(0, 3)), {("ticks", 0): 3}, f"{app_id}.bronze")
    writer.append(ticks, _tick_rows(ticks, range(3, 5)), {("ticks", 0): 5}, f"{app_id}.bronze")
    alerts = catalog.load_table(ALERTS.identifier)
    rows = pa.Table.from_pylist(_alerts([("a1", "AAPL", 0)]), schema=alerts.schema().as_arrow())
    # Another app's commit: it is the table's last commit, but no agent of this app made it.
    writer.append(alerts, rows, {("alerts", 0): 1}, "another-app.alerts")
    last_tick_commit = ticks.refresh().current_snapshot()
    last_alert_commit = alerts.refresh().current_snapshot()
    assert last_tick_commit is not None
    assert last_alert_commit is not None

    before_ms = time.time_ns() // 1_000_000
    response = await _stub(live_stream).GetPipelineStatus(pb.GetPipelineStatusRequest(), timeout=15)
    after_ms = time.time_ns() // 1_000_000

    tables = {t.table: t for t in response.tables}
    assert list(tables) == [definition.identifier for definition in TABLES]
    bronze = tables[TICKS.identifier]
    assert (bronze.snapshot_id, bronze.commit_time.ToMilliseconds(), bronze.added_rows) == (
        last_tick_commit.snapshot_id,
        last_tick_commit.timestamp_ms,
        2,
    )
    freshness_ms = bronze.freshness.ToMilliseconds()
    assert before_ms - last_tick_commit.timestamp_ms <= freshness_ms
    assert freshness_ms <= after_ms - last_tick_commit.timestamp_ms
    gold = tables[ALERTS.identifier]
    assert (gold.snapshot_id, gold.added_rows) == (last_alert_commit.snapshot_id, 1)
    untouched = [
        t for name, t in tables.items() if name not in {TICKS.identifier, ALERTS.identifier}
    ]
    for table in untouched:
        assert table.snapshot_id == 0, table.table
        assert not table.HasField("commit_time")
        assert not table.HasField("freshness")

    agents = {a.agent: (a.records_total, a.records_per_second) for a in response.agents}
    assert agents == {
        "bronze": (5, pytest.approx(5 / 60)),
        "bars": (0, 0.0),
        "imports": (0, 0.0),
        "features": (0, 0.0),
        "alerts": (0, 0.0),
    }


def _alert(
    alert_id: str, symbol: str, kind: alert_pb2.AlertKind = alert_pb2.ALERT_KIND_PRICE_MOVE
) -> bytes:
    return alert_pb2.Alert(alert_id=alert_id, symbol=symbol, kind=kind).SerializeToString()


async def _read_until(call: Any, last_id: str) -> list[str]:
    """Alert ids a WatchAlerts call delivers, up to and including `last_id`."""
    seen: list[str] = []
    while not seen or seen[-1] != last_id:
        response = await asyncio.wait_for(call.read(), timeout=5)
        assert response is not grpc.aio.EOF, f"stream ended after {seen}"
        seen.append(response.alert.alert_id)
    return seen


async def test_watchers_get_the_new_alerts_they_filter_for_in_order(
    live_stream: RunningServer,
    live_settings: Settings,
    alert_feed: TopicFeed[alert_pb2.Alert],
    kafka_bootstrap: str,
) -> None:
    topic = live_settings.topics.alerts
    spike = alert_pb2.ALERT_KIND_VOLUME_SPIKE
    _produce(kafka_bootstrap, topic, [(None, b"AAPL", _alert("before", "AAPL"))])
    stub = _stub(live_stream)
    aapl = stub.WatchAlerts(pb.WatchAlertsRequest(symbols=["AAPL"]), timeout=30)
    msft_spikes = stub.WatchAlerts(
        pb.WatchAlertsRequest(symbols=["MSFT"], kinds=[spike]), timeout=30
    )
    never_reads = stub.WatchAlerts(pb.WatchAlertsRequest(kinds=[spike]), timeout=30)
    for call in (aapl, msft_spikes, never_reads):
        await call.initial_metadata()  # sent once the server-side subscription is live
    async with alert_feed.subscribe():  # a subscriber stuck for good, inside the server
        assert alert_feed.subscribers == 4

        records: list[tuple[int | None, bytes, bytes]] = [
            (None, b"AAPL", _alert(f"aapl-{i}", "AAPL")) for i in range(20)
        ]
        records += [(None, b"MSFT", _alert(f"msft-{i}", "MSFT", spike)) for i in range(3)]
        records += [(None, b"MSFT", _alert("msft-move", "MSFT"))]
        records += [(None, b"NVDA", _alert("nvda-0", "NVDA", spike))]
        records += [(None, b"AAPL", _alert("aapl-end", "AAPL"))]
        records += [(None, b"MSFT", _alert("msft-end", "MSFT", spike))]
        _produce(kafka_bootstrap, topic, records)

        assert await _read_until(aapl, "aapl-end") == [f"aapl-{i}" for i in range(20)] + [
            "aapl-end"
        ]
        assert await _read_until(msft_spikes, "msft-end") == [
            "msft-0",
            "msft-1",
            "msft-2",
            "msft-end",
        ]
        # The stuck subscriber's buffer overflowed (27 alerts, room for 24); nobody waited.
        assert alert_feed.dropped == 27 - 24

    for call in (aapl, msft_spikes, never_reads):
        call.cancel()
    deadline = time.monotonic() + 5
    while alert_feed.subscribers:
        assert time.monotonic() < deadline, f"{alert_feed.subscribers} watchers left"
        await asyncio.sleep(0.05)


async def test_kafka_unreachable_is_unavailable_not_a_hang(stream: RunningServer) -> None:
    # `stream` runs with Kafka at 127.0.0.1:1, where nothing listens.
    stub = _stub(stream)
    started = time.monotonic()

    with pytest.raises(grpc.aio.AioRpcError) as status:
        await stub.GetPipelineStatus(pb.GetPipelineStatusRequest(), timeout=30)
    with pytest.raises(grpc.aio.AioRpcError) as watch:
        async for _ in stub.WatchAlerts(pb.WatchAlertsRequest(), timeout=30):
            pass

    assert status.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_info(status.value).reason == "UNAVAILABLE"
    assert watch.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_info(watch.value).reason == "UNAVAILABLE"
    assert time.monotonic() - started < 20
