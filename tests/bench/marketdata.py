"""`make bench-marketdata`: how fast the market-data service reads the lake and the live topics.

One run starts a private Kafka (unless FINANCELAKE_KAFKA_BOOTSTRAP names one) and a private
home (FINANCELAKE_HOME in a temp folder) whose lake is the local SqlCatalog under `home/lake`
(`open_catalog` + `ensure_tables`). Before any timing it writes ONE YEAR of 1-minute bars of
`SYMBOLS` into `silver.bars` (XNYS-like: 390 bars per weekday session, `DAYS` weekdays,
source `trades`, revision 0) in a few large pyarrow appends (the table's spec partitions
them by interval, symbol bucket and day), creates the ticks and bars topics (the bars topic
stamped with the broker's LogAppendTime: one clock for delivery latencies) and publishes a few
TickBatches per symbol so that GetQuote answers from live trades. Then it starts the real
server (`python -m financelake.services.marketdata`, configured only through FINANCELAKE_*),
waits for its health SERVING and for GetQuote to stop answering UNAVAILABLE, and measures:

* `getbars_1m_year_p50_ms` / `_p99_ms`: GetBars of one symbol, INTERVAL_1M, the whole year,
  paged with page_size 40,000 (the maximum) until the last page, in BARS_FORMAT_ARROW (the
  columnar format for analytics clients); the whole paged fetch, including the client's
  decoding of every page into a pyarrow table, per repetition, symbols rotating;
* `getbars_1m_year_messages_p50_ms` / `_p99_ms`: the same as Bar messages (the default
  format, what grpc-web and REST clients get; pages of 10,000, their maximum), decoded by the
  client;
* `getbars_1d_year_p50_ms`: INTERVAL_1D as messages (resampled by the server from 1m);
* `raw_scan_p50_ms`, the limit: a bare pyiceberg scan in the bench process of the same rows
  (symbol == X, interval == '1m', the same year; the served columns; `to_arrow()`), on a
  table loaded once, over the same repetitions; `getbars_vs_raw` = getbars p50 / raw p50;
* `getquote_req_per_s`: the most 50 concurrent closed-loop callers of unary GetQuote get,
  symbols rotating, for `--quote-duration` seconds after a warm-up; measured twice, with the
  50 callers as asyncio tasks over a few channels in one client process, then split across
  `--quote-procs` client processes. Client and server CPU use is recorded for both, which
  tells whether one client process was the bottleneck; the headline is the better mode.
  Saturated, their latency is 50 / throughput by Little's law (`getquote_saturated_p99_ms`);
* `getquote_p99_ms`: the target's "p99 at >= 1,500 req/s": the same 50 callers paced (open
  loop) at `--quote-rate` calls/s in all (default 2,000), latency from each call's
  scheduled time, so a stall counts in full;
* `watchbars_p99_ms`: 100 concurrent WatchBars(symbols=[one symbol], INTERVAL_1M) watchers
  (10 per symbol); then rounds of one closed Bar per symbol are produced to the bars topic
  and, per delivered closed bar, the client's receive time (wall clock) minus the record's
  LogAppendTime (the broker's wall clock; same machine, same clock).

`--profile DIR` samples the server with py-spy during each phase (collapsed stacks in
DIR/server-<phase>.txt) and prints the top frames of each to stderr.

It prints a table, then as its last line one JSON object, also written to
`tests/bench/results/marketdata.json`. Client and server share the machine's two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pyarrow as pa
from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pyiceberg.expressions import And, EqualTo, GreaterThanOrEqual, LessThan, Reference
from pyiceberg.expressions.literals import literal
from pyiceberg.table import Table

from financelake.gen.common.v1 import bar_pb2, tick_pb2
from financelake.gen.marketdata.v1 import marketdata_service_pb2 as pb
from financelake.gen.marketdata.v1 import marketdata_service_pb2_grpc as pb_grpc
from financelake.services.marketdata.bar_store import SERVED_COLUMNS
from financelake.services.marketdata.servicer import SERVICE_NAME
from financelake.services.settings import Settings
from financelake.stream.lake.catalog import open_catalog
from financelake.stream.lake.tables import BARS, ensure_tables
from financelake.stream.topics import ensure_topics
from tests.bench.ingest import TRACED, OtlpSink, free_port, kafka
from tests.bench.report import Row, publish

REPO = Path(__file__).resolve().parents[2]
SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "JPM", "SPY", "QQQ")
FIRST_DAY = date(2025, 1, 6)  # a Monday
DAYS = 252  # weekdays: a trading year
SESSION_BARS = 390  # 09:30-16:00 New York
SESSION_OPEN_UTC = timedelta(hours=14, minutes=30)
PAGE_SIZES = {pb.BARS_FORMAT_MESSAGES: 10_000, pb.BARS_FORMAT_ARROW: 40_000}  # GetBars' maxima
PARTITIONS = 6
APPENDS = 4  # the year in four appends (quarters), every symbol in each
MINUTE_NS = 60_000_000_000
_US = 1_000
_SERVER_START_S = 120.0
_MESSAGE_BYTES = 64 * 1024 * 1024
_METHOD = f"/{SERVICE_NAME}/"


@dataclass
class Options:
    """The knobs, reported with the results."""

    reps: int
    quote_clients: int
    quote_channels: int
    quote_procs: int
    quote_duration_s: float
    quote_warmup_s: float
    quote_rate: float
    watchers: int
    watch_rounds: int
    watch_gap_s: float
    profile: Path | None = None
    kafka: str = ""


# ---- the year of bars --------------------------------------------------------------------


def trading_days() -> list[date]:
    """`DAYS` weekdays from `FIRST_DAY` (no holiday calendar: XNYS-like)."""
    days: list[date] = []
    day = FIRST_DAY
    while len(days) < DAYS:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def day_micros(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1_000_000


def year_range_ns(days: list[date]) -> tuple[int, int]:
    """[midnight UTC of the first day, midnight UTC after the last day)."""
    return day_micros(days[0]) * _US, (day_micros(days[-1]) + 86_400_000_000) * _US


def symbol_bars(symbol: str, days: list[date], seed: int) -> pa.Table:
    """One symbol's 1m bars over `days`: a random walk, silver.bars' schema."""
    rng = np.random.default_rng(seed)
    opens_us = np.array(
        [day_micros(d) + int(SESSION_OPEN_UTC.total_seconds()) * 1_000_000 for d in days],
        dtype=np.int64,
    )
    starts = (opens_us[:, None] + np.arange(SESSION_BARS, dtype=np.int64) * 60_000_000).ravel()
    count = len(starts)
    close = (50.0 + 400.0 * rng.random()) * np.exp(np.cumsum(rng.normal(0.0, 8e-4, count)))
    open_ = np.concatenate(([close[0]], close[:-1]))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0.0, 3e-4, count)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0.0, 3e-4, count)))
    volume = rng.integers(100, 50_000, count).astype(np.float64)
    arrays = {
        "symbol": pa.array([symbol] * count, pa.string()),
        "interval": pa.array(["1m"] * count, pa.string()),
        "start_time": pa.array(starts, pa.timestamp("us", tz="UTC")),
        "open": pa.array(np.round(open_, 4)),
        "high": pa.array(np.round(high, 4)),
        "low": pa.array(np.round(low, 4)),
        "close": pa.array(np.round(close, 4)),
        "volume": pa.array(volume),
        "vwap": pa.array(np.round((high + low + close) / 3, 4)),
        "trade_count": pa.array(rng.integers(1, 500, count), pa.int64()),
        "source": pa.array(["trades"] * count, pa.string()),
        "adjusted": pa.array(np.zeros(count, dtype=bool)),
        "revision": pa.array(np.zeros(count, dtype=np.int32)),
    }
    schema = BARS.schema.as_arrow()
    return pa.Table.from_arrays([arrays[f.name] for f in schema], schema=schema)


def write_year(settings: Settings, days: list[date]) -> tuple[int, float, int]:
    """Append the year of every symbol in `APPENDS` appends; (rows, seconds, data files)."""
    catalog = open_catalog(settings)
    ensure_tables(catalog)
    table = catalog.load_table(BARS.identifier)
    per_symbol = [symbol_bars(s, days, seed=i) for i, s in enumerate(SYMBOLS)]
    rows = 0
    started = time.perf_counter()
    per_append = -(-len(days) // APPENDS) * SESSION_BARS
    for first in range(0, per_symbol[0].num_rows, per_append):
        chunk = pa.concat_tables([bars.slice(first, per_append) for bars in per_symbol])
        table.append(chunk)
        rows += chunk.num_rows
    seconds = time.perf_counter() - started
    table = catalog.load_table(BARS.identifier)
    snapshot = table.current_snapshot()
    assert snapshot is not None
    assert snapshot.summary is not None
    assert int(snapshot.summary["total-records"] or 0) == rows, snapshot.summary
    files = int(snapshot.summary["total-data-files"] or 0)
    return rows, seconds, files


# ---- topics ------------------------------------------------------------------------------


def create_topics(settings: Settings) -> Settings:
    """Settings naming fresh ticks/bars topics: the bars topic created here with
    LogAppendTime (ensure_topics has no per-topic config), the others by ensure_topics."""
    tag = uuid.uuid4().hex[:8]
    topics = settings.topics.model_copy(
        update={
            "ticks": f"bench-md-ticks-{tag}",
            "bars": f"bench-md-bars-{tag}",
            "alerts": f"bench-md-alerts-{tag}",
            "actions": f"bench-md-actions-{tag}",
            "partitions": PARTITIONS,
        }
    )
    settings = settings.model_copy(update={"topics": topics})
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers, "log_level": 3})
    config = {"message.timestamp.type": "LogAppendTime"}
    (future,) = admin.create_topics([NewTopic(topics.bars, PARTITIONS, 1, config=config)]).values()
    future.result(timeout=30)
    states = ensure_topics(settings)
    assert [s.name for s in states if s.created] == [topics.ticks, topics.alerts, topics.actions]
    return settings


def producer(settings: Settings) -> Producer:
    return Producer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "acks": "all",
            "linger.ms": 0,
            "log_level": 3,
        }
    )


def publish_ticks(settings: Settings) -> None:
    """A few 100-trade TickBatches per symbol, a minute ago: GetQuote answers from them."""
    out = producer(settings)
    now = time.time_ns() - MINUTE_NS
    for round_ in range(3):
        for index, symbol in enumerate(SYMBOLS):
            first = now + round_ * 1_000_000_000
            batch = tick_pb2.TickBatch(
                symbol=symbol,
                event_time_unix_nanos=[first + i * 1_000_000 for i in range(100)],
                prices=[100.0 + index + 0.01 * i for i in range(100)],
                sizes=[100.0] * 100,
                exchanges=["XNYS"] * 100,
                trade_ids=[f"{symbol}-{round_}-{i}" for i in range(100)],
            )
            out.produce(settings.topics.ticks, batch.SerializeToString(), symbol.encode())
    assert out.flush(30) == 0


def closed_bar(symbol: str, start_ns: int, close: float) -> bytes:
    bar = bar_pb2.Bar(
        symbol=symbol,
        interval=bar_pb2.INTERVAL_1M,
        open=close,
        high=close + 0.5,
        low=close - 0.5,
        close=close,
        volume=1_000.0,
        vwap=close,
        trade_count=10,
        source=bar_pb2.BAR_SOURCE_TRADES,
    )
    bar.start_time.FromNanoseconds(start_ns)
    return bar.SerializeToString()


def publish_bar_rounds(
    settings: Settings, rounds: list[int], gap_s: float, appended: dict[tuple[str, int], int]
) -> None:
    """Per round start time, one closed bar per symbol, `gap_s` apart; records each bar's
    LogAppendTime (ms) in `appended` by (symbol, start ns). Runs in a thread."""
    out = producer(settings)

    def delivered(error: Any, message: Any) -> None:
        assert error is None, error
        kind, stamp = message.timestamp()
        assert kind == TIMESTAMP_LOG_APPEND_TIME, "the bars topic is not LogAppendTime"
        bar = bar_pb2.Bar.FromString(message.value())
        appended[(bar.symbol, bar.start_time.ToNanoseconds())] = stamp

    for start in rounds:
        for index, symbol in enumerate(SYMBOLS):
            value = closed_bar(symbol, start, 100.0 + index)
            out.produce(settings.topics.bars, value, symbol.encode(), on_delivery=delivered)
        out.poll(0)
        time.sleep(gap_s)
        out.poll(0)
    assert out.flush(30) == 0


# ---- the server process ------------------------------------------------------------------


@contextlib.contextmanager
def service_process(
    module: str, env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m <module>` with `env` added to this process's environment, its output in
    `log`; SIGTERM (the graceful path) on exit, SIGKILL after 60 s."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", module],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def server_process(
    settings: Settings, log: Path, extra: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """`python -m financelake.services.marketdata` on a free port, FINANCELAKE_* only
    (`extra`: more of them, e.g. tracing)."""
    port = free_port("127.0.0.1")
    env = {
        **(extra or {}),
        "FINANCELAKE_KAFKA_BOOTSTRAP": settings.bootstrap_servers,
        "FINANCELAKE_HOME": str(settings.home),
        "FINANCELAKE_TOPICS__TICKS": settings.topics.ticks,
        "FINANCELAKE_TOPICS__BARS": settings.topics.bars,
        "FINANCELAKE_SERVERS__HOST": "127.0.0.1",
        "FINANCELAKE_SERVERS__MARKETDATA_PORT": str(port),
    }
    with service_process("financelake.services.marketdata", env, log) as process:
        yield process, port


def channel(port: int) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(
        f"127.0.0.1:{port}",
        options=[
            ("grpc.max_receive_message_length", _MESSAGE_BYTES),
            ("grpc.max_send_message_length", _MESSAGE_BYTES),
        ],
    )


async def wait_ready(process: subprocess.Popen[bytes], port: int, log: Path) -> float:
    """Until health says SERVING and GetQuote stops answering UNAVAILABLE; seconds taken."""
    started = time.monotonic()
    deadline = started + _SERVER_START_S
    async with channel(port) as chan:
        health = health_pb2_grpc.HealthStub(chan)
        stub = market_stub(chan)
        serving = False
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"marketdata server exited:\n{tail(log)}")
            with contextlib.suppress(grpc.aio.AioRpcError):
                if not serving:
                    answer = await health.Check(
                        health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=1
                    )
                    serving = answer.status == health_pb2.HealthCheckResponse.SERVING
                if serving:
                    quote = await stub.GetQuote(pb.GetQuoteRequest(symbol=SYMBOLS[0]), timeout=2)
                    assert quote.quote.last_price > 0, quote
                    return time.monotonic() - started
            await asyncio.sleep(0.1)
    raise RuntimeError(f"marketdata server not ready in {_SERVER_START_S}s; see {log}")


def tail(log: Path) -> str:
    """The end of the server's log, for failures."""
    return log.read_text(errors="replace")[-3000:]


def market_stub(chan: grpc.aio.Channel) -> pb_grpc.MarketDataServiceStub:
    """The generated stub, typed (the `_pb2_grpc` modules carry no annotations)."""
    return pb_grpc.MarketDataServiceStub(chan)  # type: ignore[no-untyped-call]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def sampled(pid: int, profile_dir: Path | None, phase: str) -> Iterator[None]:
    """py-spy (the venv's, or on PATH) records the server during the block, if asked."""
    if profile_dir is None:
        yield
        return
    profile_dir.mkdir(parents=True, exist_ok=True)
    output = profile_dir / f"server-{phase}.txt"
    spy = Path(sys.executable).with_name("py-spy")
    sampler = subprocess.Popen(
        [
            *(str(spy) if spy.exists() else "py-spy", "record", "--pid", str(pid)),
            *("--rate", "200", "--format", "raw", "--output", str(output), "--nonblocking"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        sampler.send_signal(signal.SIGINT)  # py-spy writes what it sampled and exits
        sampler.wait(60)
        print(top_frames(output, phase), file=sys.stderr)


_PLUMBING = (
    "(threading.py)",
    "(concurrent/futures/thread.py)",
    "(<frozen runpy>)",
    "(asyncio/runners.py)",
    "(asyncio/base_events.py)",
    "(asyncio/events.py)",
    "(services/marketdata/__main__.py)",
    "(services/prediction/__main__.py)",
    "(services/server/lifecycle.py)",
)


def top_frames(path: Path, phase: str, count: int = 12) -> str:
    """The most sampled frames of a collapsed-stack file: self and inclusive."""
    if not path.exists():
        return f"[{phase}] no profile written"
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack or not samples.isdigit():
            continue
        n = int(samples)
        # One entry per function: line numbers dropped, process/thread prefixes skipped.
        frames = [
            re.sub(r":\d+\)$", ")", frame)
            for frame in stack.split(";")
            if not frame.startswith(("process ", "thread "))
        ]
        total += n
        if frames:
            own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    lines = [f"[{phase}] {total} samples; self:"]
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in own.most_common(count)]
    lines.append(f"[{phase}] inclusive, without the event loop's and threads' own frames:")
    shown = [(f, n) for f, n in inclusive.most_common() if not f.endswith(_PLUMBING)]
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in shown[:count]]
    return "\n".join(lines)


# ---- GetBars and the raw scan ------------------------------------------------------------


def stamp(ns: int) -> Timestamp:
    out = Timestamp()
    out.FromNanoseconds(ns)
    return out


async def fetch_year(
    stub: pb_grpc.MarketDataServiceStub,
    symbol: str,
    interval: bar_pb2.Interval,
    start_ns: int,
    end_ns: int,
    bars_format: pb.BarsFormat = pb.BARS_FORMAT_MESSAGES,
) -> tuple[float, int, int]:
    """(ms, pages, bars) of one paged GetBars of [start_ns, end_ns); Arrow pages are read
    into pyarrow tables, as an analytics client would."""
    token = ""
    pages = bars = 0
    started = time.perf_counter()
    while True:
        response = await stub.GetBars(
            pb.GetBarsRequest(
                symbol=symbol,
                interval=interval,
                start_time=stamp(start_ns),
                end_time=stamp(end_ns),
                page_size=PAGE_SIZES[bars_format],
                page_token=token,
                format=bars_format,
            ),
            timeout=300,
        )
        pages += 1
        if bars_format == pb.BARS_FORMAT_ARROW:
            bars += pa.ipc.open_stream(response.arrow_stream).read_all().num_rows
        else:
            bars += len(response.bars)
        token = response.next_page_token
        if not token:
            break
    return (time.perf_counter() - started) * 1000, pages, bars


def raw_scan(table: Table, symbol: str, start_ns: int, end_ns: int) -> tuple[float, int]:
    """(ms, rows) of a bare pyiceberg scan of one symbol-year of 1m bars."""
    started = time.perf_counter()
    rows = table.scan(
        row_filter=And(
            EqualTo(term=Reference("symbol"), value=literal(symbol)),
            EqualTo(term=Reference("interval"), value=literal("1m")),
            GreaterThanOrEqual(term=Reference("start_time"), value=literal(start_ns // _US)),
            LessThan(term=Reference("start_time"), value=literal(end_ns // _US)),
        ),
        selected_fields=SERVED_COLUMNS,
    ).to_arrow()
    return (time.perf_counter() - started) * 1000, rows.num_rows


@dataclass
class BarsResult:
    m1_ms: list[float] = field(default_factory=list)
    m1_messages_ms: list[float] = field(default_factory=list)
    d1_ms: list[float] = field(default_factory=list)
    raw_ms: list[float] = field(default_factory=list)
    m1_pages: int = 0
    m1_bars: int = 0
    d1_pages: int = 0
    d1_bars: int = 0
    raw_rows: int = 0


async def measure_bars(
    port: int, table: Table, reps: int, start_ns: int, end_ns: int, expect_1m: int
) -> BarsResult:
    """After a warm round per symbol that is not timed, four phases of `reps` each, symbols
    rotating: GetBars 1m as Arrow, GetBars 1m as messages, the raw scan, GetBars 1d. Each kind
    runs in its own phase: interleaved, each call pays for the memory and caches the previous
    heavy one left behind (an Arrow year measured 13 ms alone, 18 ms right after a raw scan)."""
    out = BarsResult()
    async with channel(port) as chan:
        stub = market_stub(chan)
        for symbol in SYMBOLS:  # warm-up: imports, caches, the server's table object
            await fetch_year(stub, symbol, bar_pb2.INTERVAL_1M, start_ns, end_ns)
            raw_scan(table, symbol, start_ns, end_ns)
            await fetch_year(stub, symbol, bar_pb2.INTERVAL_1D, start_ns, end_ns)
        symbols = [SYMBOLS[rep % len(SYMBOLS)] for rep in range(reps)]
        for symbol in symbols:
            ms, out.m1_pages, out.m1_bars = await fetch_year(
                stub, symbol, bar_pb2.INTERVAL_1M, start_ns, end_ns, pb.BARS_FORMAT_ARROW
            )
            assert out.m1_bars == expect_1m, (symbol, out.m1_bars, expect_1m)
            out.m1_ms.append(ms)
        for symbol in symbols:
            ms, _, count = await fetch_year(stub, symbol, bar_pb2.INTERVAL_1M, start_ns, end_ns)
            assert count == expect_1m, (symbol, count, expect_1m)
            out.m1_messages_ms.append(ms)
        for symbol in symbols:
            ms, out.raw_rows = raw_scan(table, symbol, start_ns, end_ns)
            assert out.raw_rows == expect_1m, (symbol, out.raw_rows)
            out.raw_ms.append(ms)
        for symbol in symbols:
            ms, out.d1_pages, out.d1_bars = await fetch_year(
                stub, symbol, bar_pb2.INTERVAL_1D, start_ns, end_ns
            )
            assert out.d1_bars == DAYS, (symbol, out.d1_bars)
            out.d1_ms.append(ms)
    return out


# ---- GetQuote load -----------------------------------------------------------------------


@dataclass
class QuoteLoad:
    """One client process's share of the GetQuote load."""

    calls: int
    seconds: float
    latencies_ms: list[float]
    client_cpu_s: float


async def quote_load(
    port: int, clients: int, channels: int, warmup_s: float, duration_s: float
) -> QuoteLoad:
    """`clients` concurrent unary GetQuote loops over `channels` channels: a warm-up, then
    `duration_s` timed. Requests are pre-serialised; responses stay bytes (checked once)."""
    requests = [pb.GetQuoteRequest(symbol=s).SerializeToString() for s in SYMBOLS]

    def check(response: bytes) -> None:
        answer = pb.GetQuoteResponse.FromString(response)
        assert answer.quote.symbol == SYMBOLS[0], answer

    return await closed_loop(
        port, _METHOD + "GetQuote", requests, clients, channels, warmup_s, duration_s, check
    )


async def closed_loop(
    port: int,
    method: str,
    requests: list[bytes],
    clients: int,
    channels: int,
    warmup_s: float,
    duration_s: float,
    check: Callable[[bytes], None],
) -> QuoteLoad:
    """`clients` concurrent closed-loop callers of the unary `method` over `channels`
    channels, each sending `requests` in turn (pre-serialised; responses stay bytes, the
    first one given to `check`): a warm-up, then `duration_s` timed."""
    chans = [channel(port) for _ in range(channels)]
    loop = asyncio.get_running_loop()
    try:
        calls = [c.unary_unary(method) for c in chans]
        check(await calls[0](requests[0], timeout=5))

        async def caller(index: int, until: float, latencies: list[float] | None) -> int:
            call = calls[index % channels]
            done = 0
            while loop.time() < until:
                started = time.perf_counter()
                await call(requests[(index + done) % len(requests)], timeout=10)
                if latencies is not None:
                    latencies.append((time.perf_counter() - started) * 1000)
                done += 1
            return done

        warm_until = loop.time() + warmup_s
        await asyncio.gather(*(caller(i, warm_until, None) for i in range(clients)))
        latencies: list[float] = []
        cpu = time.process_time()
        started = loop.time()
        counts = await asyncio.gather(
            *(caller(i, started + duration_s, latencies) for i in range(clients))
        )
        seconds = loop.time() - started
        return QuoteLoad(sum(counts), seconds, latencies, time.process_time() - cpu)
    finally:
        for c in chans:
            await c.close()


async def quote_paced(
    port: int, clients: int, channels: int, rate: float, duration_s: float
) -> list[float]:
    """Open loop: `clients` callers sending GetQuote at `rate` calls/s in all, evenly
    spaced; latencies (ms) from each call's scheduled time, so a stall counts in full."""
    requests = [pb.GetQuoteRequest(symbol=s).SerializeToString() for s in SYMBOLS]
    chans = [channel(port) for _ in range(channels)]
    loop = asyncio.get_running_loop()
    period = clients / rate
    try:
        calls = [c.unary_unary(_METHOD + "GetQuote") for c in chans]
        await calls[0](requests[0], timeout=5)
        latencies: list[float] = []
        began = loop.time() + 0.5

        async def caller(index: int) -> None:
            call = calls[index % channels]
            k = 0
            while (due := began + index * period / clients + k * period) < began + duration_s:
                await asyncio.sleep(max(0.0, due - loop.time()))
                await call(requests[(index + k) % len(requests)], timeout=10)
                latencies.append((loop.time() - due) * 1000)
                k += 1

        await asyncio.gather(*(caller(i) for i in range(clients)))
        return latencies
    finally:
        for c in chans:
            await c.close()


def quote_worker(argv: list[str]) -> None:
    """`--quote-worker PORT CLIENTS CHANNELS WARMUP DURATION AT`: one client process of the
    multi-process mode; starts at wall time AT, prints its QuoteLoad as JSON."""
    port, clients, chans = (int(a) for a in argv[:3])
    warmup, duration, at = (float(a) for a in argv[3:6])
    time.sleep(max(0.0, at - time.time()))
    load = asyncio.run(quote_load(port, clients, chans, warmup, duration))
    print(json.dumps(load.__dict__))


@dataclass
class QuoteRun:
    mode: str
    req_per_s: float
    p50_ms: float
    p99_ms: float
    calls: int
    client_cpu: float
    """Client CPU seconds per wall second, all client processes."""
    server_cpu: float
    """Server CPU seconds per wall second."""


def quote_run(mode: str, loads: list[QuoteLoad], server_cpu_s: float) -> QuoteRun:
    seconds = max(load.seconds for load in loads)
    latencies = [ms for load in loads for ms in load.latencies_ms]
    calls = sum(load.calls for load in loads)
    return QuoteRun(
        mode=mode,
        req_per_s=calls / seconds,
        p50_ms=percentile(latencies, 0.50),
        p99_ms=percentile(latencies, 0.99),
        calls=calls,
        client_cpu=sum(load.client_cpu_s for load in loads) / seconds,
        server_cpu=server_cpu_s / seconds,
    )


async def quotes_in_process(pid: int, port: int, options: Options) -> QuoteRun:
    before = cpu_seconds(pid)
    load = await quote_load(
        port,
        options.quote_clients,
        options.quote_channels,
        options.quote_warmup_s,
        options.quote_duration_s,
    )
    # The server's CPU over warm-up and timed phase, scaled to the timed phase.
    server = (cpu_seconds(pid) - before) * options.quote_duration_s
    server /= options.quote_warmup_s + options.quote_duration_s
    return quote_run("1 client process, asyncio tasks", [load], server)


def quotes_in_processes(pid: int, port: int, options: Options) -> QuoteRun:
    procs = options.quote_procs
    share = [
        options.quote_clients // procs + (i < options.quote_clients % procs) for i in range(procs)
    ]
    at = time.time() + 4.0  # every worker imported and connected before it starts
    workers = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "tests.bench.marketdata", "--quote-worker"),
                *(str(port), str(n), str(max(1, options.quote_channels // procs))),
                *(str(options.quote_warmup_s), str(options.quote_duration_s), str(at)),
            ],
            stdout=subprocess.PIPE,
            cwd=REPO,
        )
        for n in share
    ]
    time.sleep(max(0.0, at - time.time()))
    before = cpu_seconds(pid)
    outputs = [w.communicate(timeout=120)[0] for w in workers]
    server = (cpu_seconds(pid) - before) * options.quote_duration_s
    server /= options.quote_warmup_s + options.quote_duration_s
    loads = [QuoteLoad(**json.loads(out.decode().strip().splitlines()[-1])) for out in outputs]
    return quote_run(f"{procs} client processes", loads, server)


# ---- WatchBars ---------------------------------------------------------------------------


@dataclass
class WatchResult:
    latencies_ms: list[float]
    worst_per_bar_ms: list[float]
    expected: int
    delivered: int
    dropped_flags: int


async def measure_watch(settings: Settings, port: int, options: Options) -> WatchResult:
    """`watchers` WatchBars streams; a priming bar per symbol until every watcher has one,
    then `watch_rounds` rounds of closed bars; delivery latency per (watcher, bar)."""
    base = (time.time_ns() // MINUTE_NS - 120) * MINUTE_NS
    received: list[tuple[str, int, float, bool]] = []
    primed: set[int] = set()
    everyone = asyncio.Event()
    complete = asyncio.Event()
    expected = options.watchers * options.watch_rounds
    chans = [channel(port) for _ in range(4)]
    stubs = [market_stub(c) for c in chans]
    calls: list[Any] = []

    async def watch(index: int) -> None:
        symbol = SYMBOLS[index % len(SYMBOLS)]
        call = stubs[index % len(stubs)].WatchBars(
            pb.WatchBarsRequest(symbols=[symbol], interval=bar_pb2.INTERVAL_1M)
        )
        calls.append(call)
        with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
            async for response in call:
                now_ms = time.time() * 1000
                update = response.update
                if not update.closed:
                    continue
                start = update.bar.start_time.ToNanoseconds()
                if start == base:
                    primed.add(index)
                    if len(primed) == options.watchers:
                        everyone.set()
                    continue
                received.append((update.bar.symbol, start, now_ms, update.dropped_updates))
                if len(received) >= expected:
                    complete.set()

    tasks = [asyncio.create_task(watch(i)) for i in range(options.watchers)]
    try:
        await asyncio.sleep(1.0)
        priming: dict[tuple[str, int], int] = {}
        await asyncio.to_thread(publish_bar_rounds, settings, [base], 0.0, priming)
        async with asyncio.timeout(60):
            await everyone.wait()
        rounds = [base + (r + 1) * MINUTE_NS for r in range(options.watch_rounds)]
        appended: dict[tuple[str, int], int] = {}
        await asyncio.to_thread(publish_bar_rounds, settings, rounds, options.watch_gap_s, appended)
        assert len(appended) == len(rounds) * len(SYMBOLS), len(appended)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(30):
                await complete.wait()
    finally:
        for call in calls:
            call.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for c in chans:
            await c.close()
    latencies: list[float] = []
    worst: dict[tuple[str, int], float] = {}
    for symbol, start, now_ms, _ in received:
        ms = now_ms - appended[(symbol, start)]
        latencies.append(ms)
        worst[(symbol, start)] = max(worst.get((symbol, start), ms), ms)
    return WatchResult(
        latencies_ms=latencies,
        worst_per_bar_ms=list(worst.values()),
        expected=expected,
        delivered=len(received),
        dropped_flags=sum(dropped for *_, dropped in received),
    )


# ---- the run -----------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    return float(np.percentile(np.asarray(values), fraction * 100))


async def measure(settings: Settings, options: Options) -> dict[str, Any]:
    days = trading_days()
    start_ns, end_ns = year_range_ns(days)
    settings = create_topics(settings)
    rows, append_s, files = write_year(settings, days)
    print(f"lake: {rows:,} bars in {append_s:.1f} s, {files} data files", file=sys.stderr)
    publish_ticks(settings)
    table = open_catalog(settings).load_table(BARS.identifier)
    log = settings.home / "marketdata.log"
    with server_process(settings, log) as (process, port):
        ready_s = await wait_ready(process, port, log)
        print(f"server ready in {ready_s:.1f} s (pid {process.pid})", file=sys.stderr)

        with sampled(process.pid, options.profile, "getbars"):
            bars = await measure_bars(
                port, table, options.reps, start_ns, end_ns, len(days) * SESSION_BARS
            )
        print(
            f"getbars 1m p50 {percentile(bars.m1_ms, 0.5):.1f} ms (arrow), "
            f"{percentile(bars.m1_messages_ms, 0.5):.1f} ms (messages), raw p50 "
            f"{percentile(bars.raw_ms, 0.5):.1f} ms, 1d p50 {percentile(bars.d1_ms, 0.5):.1f} ms",
            file=sys.stderr,
        )

        with sampled(process.pid, options.profile, "getquote"):
            single = await quotes_in_process(process.pid, port, options)
        print(f"getquote {single.mode}: {single.req_per_s:,.0f}/s", file=sys.stderr)
        multi = None
        if options.quote_procs > 1:
            multi = await asyncio.to_thread(quotes_in_processes, process.pid, port, options)
            print(f"getquote {multi.mode}: {multi.req_per_s:,.0f}/s", file=sys.stderr)
        best = single if multi is None or single.req_per_s >= multi.req_per_s else multi
        paced = await quote_paced(
            port,
            options.quote_clients,
            options.quote_channels,
            options.quote_rate,
            options.quote_duration_s,
        )
        print(
            f"getquote paced {options.quote_rate:,.0f}/s: p99 {percentile(paced, 0.99):.2f} ms",
            file=sys.stderr,
        )

        with sampled(process.pid, options.profile, "watchbars"):
            watch = await measure_watch(settings, port, options)
        assert process.poll() is None, tail(log)

    # GetQuote again, with the server tracing every call (OTLP to a receiver process).
    traced: dict[str, QuoteRun] = {}
    for label, ratio in TRACED:
        async with OtlpSink() as sink:
            tracing = {
                "FINANCELAKE_TRACING__ENABLED": "true",
                "FINANCELAKE_TRACING__OTLP_ENDPOINT": sink.endpoint,
                "FINANCELAKE_TRACING__SAMPLE_RATIO": str(ratio),
            }
            traced_log = settings.home / f"marketdata-traced-{label}.log"
            with server_process(settings, traced_log, tracing) as (traced_process, traced_port):
                await wait_ready(traced_process, traced_port, traced_log)
                traced[label] = await quotes_in_process(traced_process.pid, traced_port, options)
        print(
            f"getquote traced {ratio}: {traced[label].req_per_s:,.0f}/s, {sink.spans:,} spans",
            file=sys.stderr,
        )

    m1_p50 = percentile(bars.m1_ms, 0.5)
    raw_p50 = percentile(bars.raw_ms, 0.5)
    quote_modes = [single] + ([multi] if multi is not None else [])
    return {
        "getbars_1m_year_p50_ms": round(m1_p50, 1),
        "getbars_1m_year_p99_ms": round(percentile(bars.m1_ms, 0.99), 1),
        "getbars_1m_year_messages_p50_ms": round(percentile(bars.m1_messages_ms, 0.5), 1),
        "getbars_1m_year_messages_p99_ms": round(percentile(bars.m1_messages_ms, 0.99), 1),
        "getbars_1d_year_p50_ms": round(percentile(bars.d1_ms, 0.5), 1),
        "raw_scan_p50_ms": round(raw_p50, 1),
        "getbars_vs_raw": round(m1_p50 / raw_p50, 2),
        "getquote_req_per_s": round(best.req_per_s),
        "getquote_p99_ms": round(percentile(paced, 0.99), 2),
        "getquote_p50_ms": round(percentile(paced, 0.5), 2),
        "getquote_saturated_p99_ms": round(best.p99_ms, 2),
        "getquote_client": best.mode,
        **{f"getquote_traced_{label}_req_per_s": round(r.req_per_s) for label, r in traced.items()},
        # Against the same closed loop (one client process) untraced.
        **{
            f"tracing_ratio_{label}": round(r.req_per_s / single.req_per_s, 3)
            for label, r in traced.items()
        },
        "watchbars_p50_ms": round(percentile(watch.latencies_ms, 0.5), 1),
        "watchbars_p99_ms": round(percentile(watch.latencies_ms, 0.99), 1),
        "watchbars_worst_watcher_p99_ms": round(percentile(watch.worst_per_bar_ms, 0.99), 1),
        "getquote_modes": [
            {
                "mode": q.mode,
                "req_per_s": round(q.req_per_s),
                "p50_ms": round(q.p50_ms, 2),
                "p99_ms": round(q.p99_ms, 2),
                "client_cpu_per_s": round(q.client_cpu, 2),
                "server_cpu_per_s": round(q.server_cpu, 2),
            }
            for q in quote_modes
        ],
        "samples": {
            "getbars_reps": options.reps,
            "getbars_1m_pages": bars.m1_pages,
            "getbars_1m_bars": bars.m1_bars,
            "getbars_1d_pages": bars.d1_pages,
            "getbars_1d_bars": bars.d1_bars,
            "raw_scan_rows": bars.raw_rows,
            "getquote_calls": best.calls,
            "getquote_paced_calls": len(paced),
            "watchbars_bars_published": watch.expected * len(SYMBOLS) // options.watchers,
            "watchbars_deliveries_expected": watch.expected,
            "watchbars_deliveries": watch.delivered,
            "watchbars_dropped_flags": watch.dropped_flags,
        },
        "config": {
            "symbols": list(SYMBOLS),
            "days": DAYS,
            "bars_per_session": SESSION_BARS,
            "lake_rows": rows,
            "lake_data_files": files,
            "lake_appends": APPENDS,
            "lake_append_s": round(append_s, 1),
            "page_size": PAGE_SIZES[pb.BARS_FORMAT_MESSAGES],
            "arrow_page_size": PAGE_SIZES[pb.BARS_FORMAT_ARROW],
            "quote_clients": options.quote_clients,
            "quote_channels": options.quote_channels,
            "quote_procs": options.quote_procs,
            "quote_paced_rate": options.quote_rate,
            "quote_duration_s": options.quote_duration_s,
            "quote_warmup_s": options.quote_warmup_s,
            "watchers": options.watchers,
            "watch_rounds": options.watch_rounds,
            "watch_gap_s": options.watch_gap_s,
            "server_ready_s": round(ready_s, 1),
            "kafka": options.kafka,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
    }


def table(result: dict[str, Any]) -> list[Row]:
    """The human-readable part: (key, value, note) rows."""
    s = result["samples"]
    rows = [
        (
            "getbars_1m_year_p50_ms",
            f"{result['getbars_1m_year_p50_ms']:.1f}",
            f"Arrow pages: {s['getbars_1m_bars']:,} bars in {s['getbars_1m_pages']} pages; "
            "target <= 30",
        ),
        ("getbars_1m_year_p99_ms", f"{result['getbars_1m_year_p99_ms']:.1f}", ""),
        (
            "getbars_1m_year_messages_p50_ms",
            f"{result['getbars_1m_year_messages_p50_ms']:.1f}",
            f"Bar messages, p99 {result['getbars_1m_year_messages_p99_ms']:.1f}",
        ),
        (
            "getbars_1d_year_p50_ms",
            f"{result['getbars_1d_year_p50_ms']:.1f}",
            f"{s['getbars_1d_bars']} bars, resampled from 1m",
        ),
        ("raw_scan_p50_ms", f"{result['raw_scan_p50_ms']:.1f}", "bare pyiceberg scan, the limit"),
        ("getbars_vs_raw", f"{result['getbars_vs_raw']:.2f}", "target <= 2"),
        (
            "getquote_req_per_s",
            f"{result['getquote_req_per_s']:,}",
            f"{result['getquote_client']}, closed loop; target >= 1,500",
        ),
        (
            "getquote_p99_ms",
            f"{result['getquote_p99_ms']:.2f}",
            f"open loop, 50 clients, {result['config']['quote_paced_rate']:,.0f} calls/s; "
            "target <= 5",
        ),
        (
            "getquote_saturated_p99_ms",
            f"{result['getquote_saturated_p99_ms']:.2f}",
            "closed loop at the throughput above (Little's law: 50 / rate)",
        ),
    ]
    rows += [
        (
            "  " + q["mode"],
            f"{q['req_per_s']:,}",
            f"p99 {q['p99_ms']:.2f} ms; cpu/s client {q['client_cpu_per_s']:.2f} "
            f"server {q['server_cpu_per_s']:.2f}",
        )
        for q in result["getquote_modes"]
    ]
    for label, ratio in TRACED:
        rows.append(
            (
                f"getquote_traced_{label}_req_per_s",
                f"{result[f'getquote_traced_{label}_req_per_s']:,}",
                f"the same closed loop (one client process), tracing on, sampling {ratio}",
            )
        )
        target = "target >= 0.9" if ratio < 1 else ""
        rows.append((f"tracing_ratio_{label}", f"{result[f'tracing_ratio_{label}']:.3f}", target))
    rows += [
        ("watchbars_p50_ms", f"{result['watchbars_p50_ms']:.1f}", "LogAppendTime -> watcher"),
        (
            "watchbars_p99_ms",
            f"{result['watchbars_p99_ms']:.1f}",
            f"{s['watchbars_deliveries']:,}/{s['watchbars_deliveries_expected']:,} "
            "deliveries; target <= 100",
        ),
    ]
    return rows


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--quote-worker":
        quote_worker(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--reps", type=int, default=20, help="timed GetBars/raw repetitions")
    parser.add_argument("--quote-clients", type=int, default=50)
    parser.add_argument("--quote-channels", type=int, default=5)
    parser.add_argument(
        "--quote-procs", type=int, default=2, help="client processes of the second mode"
    )
    parser.add_argument("--quote-duration", type=float, default=10.0)
    parser.add_argument("--quote-warmup", type=float, default=2.0)
    parser.add_argument(
        "--quote-rate", type=float, default=2000.0, help="calls/s of the paced GetQuote run"
    )
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--watch-rounds", type=int, default=40, help="a bar per symbol each")
    parser.add_argument("--watch-gap", type=float, default=0.05, help="seconds between rounds")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="sample the server with py-spy into this folder, phase by phase",
    )
    args = parser.parse_args()
    options = Options(
        reps=args.reps,
        quote_clients=args.quote_clients,
        quote_channels=args.quote_channels,
        quote_procs=args.quote_procs,
        quote_duration_s=args.quote_duration,
        quote_warmup_s=args.quote_warmup,
        quote_rate=args.quote_rate,
        watchers=args.watchers,
        watch_rounds=args.watch_rounds,
        watch_gap_s=args.watch_gap,
        profile=args.profile,
    )
    with tempfile.TemporaryDirectory(prefix="financelake-bench-") as tmp:
        home = Path(tmp)
        with kafka(home) as (settings, kind):
            options.kafka = kind
            private = settings.model_copy(update={"home": home / "marketdata-home"})
            private.home.mkdir()
            result = asyncio.run(measure(private, options))
    publish("marketdata", result, table(result))


if __name__ == "__main__":
    main()
