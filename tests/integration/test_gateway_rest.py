"""Every REST route of the OpenAPI document, curl-like through a real Envoy, against the four
real servers in process; grpc-web for one call of each service; a bad POST is a 400.

One Envoy (module-scoped) fronts: MarketDataService and StreamService over a lake holding a
few 1m bars and alerts, reading fresh topics of the session broker; IngestionService writing
to those same topics; PredictionService over the module's trained models (its own home).
The REST checks are keyed by the document's operationId, so a route added to the protos
without a check here fails `test_every_rest_operation_answers_200`.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from financelake.gen.common.v1 import alert_pb2, bar_pb2
from financelake.gen.ingestion.v1 import import_pb2
from financelake.gen.ingestion.v1 import ingestion_service_pb2 as ingestion_pb
from financelake.gen.marketdata.v1 import marketdata_service_pb2 as marketdata_pb
from financelake.gen.prediction.v1 import prediction_service_pb2 as prediction_pb
from financelake.gen.stream.v1 import stream_service_pb2 as stream_pb
from financelake.services.ingestion.server import build_server as build_ingestion
from financelake.services.marketdata.server import build_server as build_marketdata
from financelake.services.prediction.server import build_server as build_prediction
from financelake.services.settings import ServerSettings, Settings
from financelake.services.stream.server import build_server as build_stream
from financelake.stream.lake import ALERTS, BARS, LakeWriter, ensure_tables
from financelake.stream.lake.catalog import open_catalog
from tests.fixtures.gateway import (
    GRPC_WEB_HEADERS,
    OPENAPI,
    Gateway,
    Reply,
    acall,
    gateway_settings,
    grpc_web_frame,
    grpc_web_frames,
    read_lines,
    running_envoy,
)
from tests.fixtures.grpc import running_server
from tests.fixtures.ingestion import closed_bar, create_topic, produce, wait_serving
from tests.fixtures.prediction import SYMBOLS as TRAINED_SYMBOLS
from tests.fixtures.prediction import prediction_settings

pytestmark = pytest.mark.integration

SYMBOLS = ("AAPL", "MSFT")
START = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
MINUTES = 30
MINUTE_NS = 60 * 10**9
NOW_NS = time.time_ns() // MINUTE_NS * MINUTE_NS
JSON = {"content-type": "application/json"}
TRAINED = TRAINED_SYMBOLS[0]
LIVE = "TSLA"  # the symbol every publish here writes, so the lake's quotes stay the lake's


@dataclass(frozen=True)
class Stack:
    """Envoy in front of the four servers, and what the checks need to know about them."""

    gateway: Gateway
    settings: Settings  # of marketdata, stream and ingestion

    @property
    def url(self) -> str:
        return self.gateway.url


def _write_lake(settings: Settings) -> None:
    tables = ensure_tables(open_catalog(settings))
    bars = tables[BARS.identifier]
    rows = [
        {
            "symbol": symbol,
            "interval": "1m",
            "start_time": START + timedelta(minutes=minute),
            "open": 100.0 + minute,
            "high": 101.0 + minute,
            "low": 99.0 + minute,
            "close": 100.5 + minute,
            "volume": 1000.0,
            "vwap": 100.2 + minute,
            "trade_count": 10,
            "source": "trades",
            "adjusted": False,
            "revision": 0,
        }
        for symbol in SYMBOLS
        for minute in range(MINUTES)
    ]
    bars.append(pa.Table.from_pylist(rows, schema=bars.schema().as_arrow()))
    alerts = tables[ALERTS.identifier]
    alert_rows = [
        {
            "alert_id": f"lake-{symbol}",
            "symbol": symbol,
            "interval": "1m",
            "kind": "price_move",
            "severity": "warning",
            "event_time": START,
            "detected_time": START + timedelta(minutes=1),
            "value": 0.031,
            "score": 5.1,
            "threshold": 4.0,
            "message": f"{symbol} moved",
        }
        for symbol in SYMBOLS
    ]
    arrow = pa.Table.from_pylist(alert_rows, schema=alerts.schema().as_arrow())
    LakeWriter().append(alerts, arrow, {("financelake.alerts.v1", 0): 2}, "alerts")


def _alert(alert_id: str, symbol: str) -> tuple[bytes, bytes]:
    alert = alert_pb2.Alert(alert_id=alert_id, symbol=symbol, kind=alert_pb2.ALERT_KIND_PRICE_MOVE)
    return symbol.encode(), alert.SerializeToString()


@pytest.fixture(scope="module")
async def stack(
    tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str, trained_home: Path
) -> AsyncIterator[Stack]:
    workdir = tmp_path_factory.mktemp("gateway-rest")
    topic_names = await asyncio.gather(
        *(
            asyncio.to_thread(create_topic, kafka_bootstrap, f"gw-{kind}")
            for kind in ("ticks", "bars", "alerts", "actions")
        )
    )
    base = Settings(
        home=workdir / "home",
        kafka_bootstrap=kafka_bootstrap,
        servers=ServerSettings(
            ingestion_port=0, marketdata_port=0, stream_port=0, prediction_port=0
        ),
    )
    settings = base.model_copy(
        update={
            "topics": base.topics.model_copy(
                update=dict(zip(("ticks", "bars", "alerts", "actions"), topic_names, strict=True))
            ),
            "stream": base.stream.model_copy(update={"app_id": f"gw-{uuid.uuid4().hex[:8]}"}),
        }
    )
    await asyncio.to_thread(_write_lake, settings)
    # WatchBars starts with the last closed bar the live feed read from the bars topic.
    await asyncio.to_thread(
        produce, kafka_bootstrap, settings.topics.bars, [closed_bar("AAPL", NOW_NS, 189.0)]
    )
    async with AsyncExitStack() as stack:
        marketdata = await stack.enter_async_context(running_server(build_marketdata, settings))
        stream = await stack.enter_async_context(running_server(build_stream, settings))
        ingestion = await stack.enter_async_context(running_server(build_ingestion, settings))
        prediction = await stack.enter_async_context(
            running_server(build_prediction, prediction_settings(trained_home))
        )
        await wait_serving(ingestion.channel)
        front = gateway_settings(
            workdir / "gateway-home",
            ingestion_port=ingestion.port,
            marketdata_port=marketdata.port,
            stream_port=stream.port,
            prediction_port=prediction.port,
        )
        gateway = await stack.enter_async_context(running_envoy(front, workdir))
        yield Stack(gateway, settings)


async def _until_available(get: Callable[[], Awaitable[Reply]]) -> Reply:
    """`get()` again while it answers 503 (a server still connecting to Kafka or reading
    its features)."""
    async with asyncio.timeout(20):
        while True:
            reply = await get()
            if reply.status != 503:
                return reply
            await asyncio.sleep(0.2)


def _ok(reply: Reply) -> Any:
    assert reply.status == 200, (reply.status, reply.body[:2000])
    assert reply.headers["content-type"].startswith("application/json"), reply.headers
    return reply.json()


async def _get(stack: Stack, path: str) -> Any:
    return _ok(await _until_available(lambda: acall(f"{stack.url}{path}")))


async def _post(stack: Stack, path: str, body: Any) -> Any:
    data = json.dumps(body).encode()
    return _ok(
        await _until_available(
            lambda: acall(f"{stack.url}{path}", method="POST", body=data, headers=JSON)
        )
    )


async def _stream(stack: Stack, path: str, count: int = 1) -> list[Any]:
    """The first `count` lines of a streamed answer, again while it answers 503."""
    async with asyncio.timeout(20):
        while True:
            status, lines = await asyncio.to_thread(read_lines, f"{stack.url}{path}", count)
            if status != 503:
                break
            await asyncio.sleep(0.2)
    assert status == 200, lines
    assert len(lines) == count, lines
    return lines


RANGE = "start_time=2026-03-02T14:00:00Z&end_time=2026-03-02T16:00:00Z"


def _tick_batch(symbol: str, price: float, tag: str) -> dict[str, Any]:
    """A TickBatch as JSON (int64 as strings, as protobuf's JSON mapping writes them)."""
    return {
        "symbol": symbol,
        "event_time_unix_nanos": [str(NOW_NS + 1), str(NOW_NS + 2)],
        "prices": [price, price + 0.5],
        "sizes": [10.0, 20.0],
        "trade_ids": [f"{tag}-1", f"{tag}-2"],
    }


# ---- one check per operationId ---------------------------------------------------------


async def _list_symbols(stack: Stack) -> None:
    body = await _get(stack, "/v1/symbols")
    assert [s["symbol"] for s in body["symbols"]] == list(SYMBOLS)
    assert body["next_page_token"] == ""


async def _get_bars(stack: Stack) -> None:
    body = await _get(stack, f"/v1/symbols/AAPL/bars?interval=INTERVAL_1M&{RANGE}")
    assert len(body["bars"]) == MINUTES
    first = body["bars"][0]
    assert first["start_time"] == "2026-03-02T14:30:00Z"
    assert (first["interval"], first["close"]) == ("INTERVAL_1M", 100.5)


async def _get_quote(stack: Stack) -> None:
    body = await _get(stack, "/v1/symbols/MSFT/quote")
    assert body["quote"]["symbol"] == "MSFT"
    assert body["quote"]["last_price"] == 100.5 + MINUTES - 1  # the lake's last close


async def _get_indicators(stack: Stack) -> None:
    body = await _get(
        stack, f"/v1/symbols/AAPL/indicators?interval=INTERVAL_1M&{RANGE}&indicators=sma(20)"
    )
    assert len(body["times"]) == MINUTES
    (series,) = body["series"]
    assert series["indicator"] == "sma(20)"
    assert series["lines"]


async def _watch_bars(stack: Stack) -> None:
    (first,) = await _stream(stack, "/v1/bars:watch?symbols=AAPL&interval=INTERVAL_1M")
    assert first["update"]["bar"]["symbol"] == "AAPL"
    assert "closed" in first["update"]


async def _publish_ticks(stack: Stack) -> None:
    body = await _post(stack, "/v1/ticks:publish", {"batches": [_tick_batch(LIVE, 190.0, "p")]})
    assert (body["accepted_trades"], body["accepted_batches"]) == ("2", "1")  # int64: strings
    assert body["offsets"][0]["topic"] == stack.settings.topics.ticks


async def _import_history(stack: Stack) -> None:
    request = {
        "source": "IMPORT_SOURCE_SYNTHETIC",
        "symbols": ["IBM"],
        "interval": "INTERVAL_1D",
        "start_time": "2025-03-03T00:00:00Z",
        "end_time": "2025-03-10T00:00:00Z",
        "synthetic": {"seed": "7"},
    }
    status, updates = await asyncio.to_thread(
        read_lines,
        f"{stack.url}/v1/imports",
        1000,
        method="POST",
        body=json.dumps(request).encode(),
        headers=JSON,
        timeout=30,
    )
    assert status == 200, updates
    assert updates[0]["state"] == "IMPORT_STATE_RUNNING"
    assert updates[-1]["state"] == "IMPORT_STATE_DONE", updates[-1]
    assert int(updates[-1]["rows_published"]) == 5  # the week's trading days


async def _ingest_ticks(stack: Stack) -> None:
    # Client streaming over REST: see _ingest_ticks_check for what Envoy does.
    await _ingest_ticks_check(stack)


async def _get_pipeline_status(stack: Stack) -> None:
    body = await _get(stack, "/v1/pipeline")
    assert {"partitions", "agents", "tables"} <= body.keys()


async def _list_tables(stack: Stack) -> None:
    body = await _get(stack, "/v1/tables?namespace=silver")
    assert [t["table"] for t in body["tables"]] == ["silver.bars"]
    assert int(body["tables"][0]["total_rows"]) == len(SYMBOLS) * MINUTES


async def _list_alerts(stack: Stack) -> None:
    body = await _get(stack, "/v1/alerts?symbols=MSFT")
    assert [a["alert_id"] for a in body["alerts"]] == ["lake-MSFT"]
    assert body["alerts"][0]["kind"] == "ALERT_KIND_PRICE_MOVE"


async def _watch_alerts(stack: Stack) -> None:
    """The watch only sees alerts published after it subscribed: keep publishing until one
    line arrives (or the read times out)."""
    reading = asyncio.create_task(_stream(stack, "/v1/alerts:watch?symbols=NVDA"))
    for n in range(60):
        done, _ = await asyncio.wait({reading}, timeout=0.25)
        if done:
            break
        await asyncio.to_thread(
            produce,
            stack.settings.bootstrap_servers,
            stack.settings.topics.alerts,
            [_alert(f"live-{n}", "NVDA")],
        )
    (first,) = await reading
    assert first["alert"]["symbol"] == "NVDA"
    assert first["alert"]["alert_id"].startswith("live-")


async def _predict(stack: Stack) -> None:
    body = await _post(stack, f"/v1/symbols/{TRAINED}:predict", {})
    prediction = body["prediction"]
    assert prediction["symbol"] == TRAINED
    assert 0.0 <= prediction["probability_up"] <= 1.0
    assert prediction["model_version"]


async def _predict_batch(stack: Stack) -> None:
    symbols = list(TRAINED_SYMBOLS[:2])
    body = await _post(stack, "/v1/predictions:batch", {"symbols": symbols})
    assert [p["symbol"] for p in body["predictions"]] == symbols


async def _list_models(stack: Stack) -> None:
    body = await _get(stack, "/v1/models")
    assert "return-ridge" in {m["name"] for m in body["models"]}


async def _get_model(stack: Stack) -> None:
    body = await _get(stack, "/v1/models/return-ridge")
    info = body["model_info"]
    assert (info["name"], info["version"], info["latest"]) == ("return-ridge", "1", True)
    assert info["metrics"]


CHECKS: dict[str, Callable[[Stack], Awaitable[None]]] = {
    "MarketDataService_ListSymbols": _list_symbols,
    "MarketDataService_GetBars": _get_bars,
    "MarketDataService_GetQuote": _get_quote,
    "MarketDataService_GetIndicators": _get_indicators,
    "MarketDataService_WatchBars": _watch_bars,
    "IngestionService_PublishTicks": _publish_ticks,
    "IngestionService_ImportHistory": _import_history,
    "IngestionService_IngestTicks": _ingest_ticks,
    "StreamService_GetPipelineStatus": _get_pipeline_status,
    "StreamService_ListTables": _list_tables,
    "StreamService_ListAlerts": _list_alerts,
    "StreamService_WatchAlerts": _watch_alerts,
    "PredictionService_Predict": _predict,
    "PredictionService_PredictBatch": _predict_batch,
    "PredictionService_ListModels": _list_models,
    "PredictionService_GetModel": _get_model,
}


def _operations() -> list[str]:
    document = json.loads(OPENAPI.read_text())
    return sorted(
        operation["operationId"]
        for methods in document["paths"].values()
        for operation in methods.values()
    )


@pytest.mark.parametrize("operation_id", _operations())
async def test_every_rest_operation_answers_200(stack: Stack, operation_id: str) -> None:
    check = CHECKS.get(operation_id)
    assert check is not None, f"no REST check for {operation_id}: add one to CHECKS"
    await check(stack)


def test_the_openapi_document_has_the_sixteen_operations() -> None:
    assert len(_operations()) == 16
    assert set(_operations()) == set(CHECKS)


# ---- IngestTicks: a client stream over REST ----------------------------------------------


async def _ingest_ticks_check(stack: Stack) -> None:
    """Envoy's transcoder maps a client stream to a JSON ARRAY body: each element is one
    IngestTicksRequest of the stream, the stream is closed at the array's end, and the one
    answer comes back as JSON. Anything else is refused by Envoy itself, before any
    upstream call, with a 400 whose body is plain text from its JSON parser (not a
    google.rpc.Status): one object gives "Expected an array instead of an object",
    newline-delimited objects "Parsing terminated before end of input.\n..."."""
    one = {"batches": [_tick_batch(LIVE, 250.0, "i1")]}
    two = {"batches": [_tick_batch(LIVE, 251.0, "i2")]}

    body = await _post(stack, "/v1/ticks:ingest", [one, two])
    assert (body["accepted_trades"], body["accepted_batches"]) == ("4", "2")
    assert (body["rejected_trades"], body["rejected_batches"]) == ("0", "0")
    assert {o["topic"] for o in body["offsets"]} == {stack.settings.topics.ticks}

    for data, refusal in (
        (json.dumps(one), b"Expected an array instead of an object"),
        (json.dumps(one) + "\n" + json.dumps(two), b"Parsing terminated before end of input."),
    ):
        reply = await acall(
            f"{stack.url}/v1/ticks:ingest", method="POST", body=data.encode(), headers=JSON
        )
        assert reply.status == 400, reply.body
        assert reply.headers["content-type"] == "text/plain"
        assert reply.body.startswith(refusal), reply.body


# ---- errors -------------------------------------------------------------------------------


async def test_a_negative_price_on_publish_is_400_with_the_field_violation(stack: Stack) -> None:
    batch = _tick_batch("AAPL", 190.0, "bad")
    batch["prices"][1] = -1.0
    data = json.dumps({"batches": [batch]}).encode()

    reply = await _until_available(
        lambda: acall(f"{stack.url}/v1/ticks:publish", method="POST", body=data, headers=JSON)
    )

    assert reply.status == 400, reply.body
    body = reply.json()
    assert body["code"] == 3  # INVALID_ARGUMENT
    (bad_request,) = [d for d in body["details"] if d["@type"].endswith("google.rpc.BadRequest")]
    fields = [v["field"] for v in bad_request["field_violations"]]
    assert fields == ["batches[0].prices[1]"], bad_request


# ---- grpc-web: one call of each service, and a server stream --------------------------------


async def _grpc_web(stack: Stack, method: str, request: Any) -> tuple[list[bytes], dict[str, str]]:
    reply = await _until_available(
        lambda: acall(
            f"{stack.url}/{method}",
            method="POST",
            body=grpc_web_frame(request.SerializeToString()),
            headers=GRPC_WEB_HEADERS,
        )
    )
    assert reply.status == 200, reply.body
    assert reply.headers["content-type"].startswith("application/grpc-web")
    return grpc_web_frames(reply.body)


async def test_grpc_web_reaches_each_of_the_four_services(stack: Stack) -> None:
    messages, trailers = await _grpc_web(
        stack,
        "financelake.marketdata.v1.MarketDataService/GetQuote",
        marketdata_pb.GetQuoteRequest(symbol="AAPL"),
    )
    assert trailers["grpc-status"] == "0", trailers
    assert marketdata_pb.GetQuoteResponse.FromString(messages[0]).quote.symbol == "AAPL"

    messages, trailers = await _grpc_web(
        stack, "financelake.stream.v1.StreamService/ListTables", stream_pb.ListTablesRequest()
    )
    assert trailers["grpc-status"] == "0", trailers
    assert stream_pb.ListTablesResponse.FromString(messages[0]).tables

    messages, trailers = await _grpc_web(
        stack,
        "financelake.prediction.v1.PredictionService/GetModel",
        prediction_pb.GetModelRequest(model="return-ridge"),
    )
    assert trailers["grpc-status"] == "0", trailers
    model = prediction_pb.GetModelResponse.FromString(messages[0]).model_info
    assert model.name == "return-ridge"

    batch = _tick_batch(LIVE, 400.0, "web")
    request = ingestion_pb.PublishTicksRequest()
    request.batches.add(
        symbol=LIVE,
        event_time_unix_nanos=[int(t) for t in batch["event_time_unix_nanos"]],
        prices=batch["prices"],
        sizes=batch["sizes"],
        trade_ids=batch["trade_ids"],
    )
    messages, trailers = await _grpc_web(
        stack, "financelake.ingestion.v1.IngestionService/PublishTicks", request
    )
    assert trailers["grpc-status"] == "0", trailers
    assert ingestion_pb.PublishTicksResponse.FromString(messages[0]).accepted_trades == 2


async def test_grpc_web_server_stream_of_an_import(stack: Stack) -> None:
    request = ingestion_pb.ImportHistoryRequest(
        source=import_pb2.IMPORT_SOURCE_SYNTHETIC,
        symbols=["IBM"],
        interval=bar_pb2.INTERVAL_1D,
        synthetic=import_pb2.SyntheticOptions(seed=3),
    )
    request.start_time.FromDatetime(datetime(2025, 3, 3, tzinfo=UTC))
    request.end_time.FromDatetime(datetime(2025, 3, 10, tzinfo=UTC))

    messages, trailers = await _grpc_web(
        stack, "financelake.ingestion.v1.IngestionService/ImportHistory", request
    )

    assert trailers["grpc-status"] == "0", trailers
    updates = [ingestion_pb.ImportHistoryResponse.FromString(m) for m in messages]
    assert len(updates) >= 2
    assert updates[-1].state == import_pb2.IMPORT_STATE_DONE
