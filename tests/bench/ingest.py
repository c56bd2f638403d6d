"""`make bench-ingest`: how many trades per second the ingestion service gets into Kafka.

One run starts a private Kafka (unless FINANCELAKE_KAFKA_BOOTSTRAP names one), then measures,
each on a fresh 6-partition topic, with 1,000-trade TickBatches built before any timing:

* `ingest_ticks_per_s`: `IngestTicks` client streams into the real server process
  (`python -m financelake.services.ingestion`, configured only through FINANCELAKE_*);
* `publish_ticks_per_s`: the same through concurrent unary `PublishTicks` callers;
* `raw_ticks_per_s`: the same batch bytes produced straight to Kafka by aiokafka with the
  service's own producer settings (`publisher.producer_config`): the limit, no gRPC;
* `naive_ticks_per_s`: one JSON record per trade through a default aiokafka producer
  (acks=all), the design the columnar batches replace;
* `batch_p50_ms` / `batch_p99_ms`: one caller, sequential single-batch `PublishTicks`;
* `publish_traced_*_ticks_per_s`: `PublishTicks` again with tracing on in the server (every
  call a trace sampled at 1.0 or 0.01, its Kafka records carrying it), exporting over OTLP
  to a receiver process (`tests.bench.otlp_sink`); `tracing_ratio_*` against tracing off.

Every measurement ends with a cheap correctness check: what the server says it accepted equals
what was sent, and the topic's end offsets add up to the records sent (warm-up included).
It prints a table, then as its last line one JSON object, also written to
`tests/bench/results/ingest.json`. Client and server share the machine's cores, so the client
sends pre-serialised request bytes (no per-call protobuf work on the client side).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from aiokafka import AIOKafkaProducer
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from grpc_health.v1 import health_pb2, health_pb2_grpc

from financelake.gen.common.v1 import tick_pb2
from financelake.gen.ingestion.v1 import ingestion_service_pb2 as pb
from financelake.services.ingestion.publisher import producer_config
from financelake.services.ingestion.servicer import SERVICE_NAME
from financelake.services.server.lifecycle import run_event_loop
from financelake.services.settings import Settings
from financelake.stream.broker import LocalBroker
from financelake.stream.kafka_dist import provision
from tests.bench.report import Row, publish

REPO = Path(__file__).resolve().parents[2]
PARTITIONS = 6
ROWS = 1_000
SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "BRK.B", "BTC-USD", "EURUSD=X", "^GSPC")
EXCHANGES = ("XNAS", "XNYS", "ARCX", "BATS", "EDGX", "IEXG")
_METHOD = f"/{SERVICE_NAME}/"
_SERVER_START_S = 60.0
# Tracing runs: (result label, sample ratio).
TRACED = (("1", 1.0), ("001", 0.01))


# ---- the data, built once before any timing ----------------------------------------------


def build_batches(count: int, seed: int = 7) -> list[tick_pb2.TickBatch]:
    """`count` valid 1,000-trade batches, symbols round-robin, each symbol's trade ids unique
    across the whole pool and its times increasing, all a little in the past."""
    rng = np.random.default_rng(seed)
    start_ns = time.time_ns() - 3_600 * 1_000_000_000
    price = {symbol: 50.0 + 400.0 * rng.random() for symbol in SYMBOLS}
    clock = dict.fromkeys(SYMBOLS, start_ns)
    sequence = dict.fromkeys(SYMBOLS, 0)
    batches = []
    for index in range(count):
        symbol = SYMBOLS[index % len(SYMBOLS)]
        # A random walk of prices, round lots mostly, a few microseconds between trades.
        walk = price[symbol] * np.exp(np.cumsum(rng.normal(0.0, 2e-4, ROWS)))
        price[symbol] = float(walk[-1])
        gaps = rng.integers(1_000, 2_000_000, ROWS)
        times = clock[symbol] + np.cumsum(gaps)
        clock[symbol] = int(times[-1])
        sizes = np.where(rng.random(ROWS) < 0.8, 100.0 * rng.integers(1, 10, ROWS), 1.0)
        first = sequence[symbol]
        sequence[symbol] += ROWS
        batches.append(
            tick_pb2.TickBatch(
                symbol=symbol,
                event_time_unix_nanos=times.tolist(),
                prices=np.round(walk, 4).tolist(),
                sizes=sizes.tolist(),
                exchanges=[EXCHANGES[i] for i in rng.integers(0, len(EXCHANGES), ROWS)],
                trade_ids=[f"{symbol}-{first + i:012d}" for i in range(ROWS)],
            )
        )
    return batches


def request_bytes(batches: list[tick_pb2.TickBatch], per_request: int) -> list[bytes]:
    """Serialised requests of `per_request` batches each (the same bytes are a valid
    IngestTicksRequest and PublishTicksRequest: both hold the batches in field 1)."""
    one = [pb.IngestTicksRequest(batches=[batch]).SerializeToString() for batch in batches]
    # Concatenated encodings of a repeated field are the encoding of the concatenation.
    return [
        b"".join(one[i : i + per_request])
        for i in range(0, len(one) - per_request + 1, per_request)
    ]


# ---- Kafka -------------------------------------------------------------------------------


def free_port(host: str) -> int:
    """A port free right now on `host`."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def kafka(home: Path) -> Iterator[tuple[Settings, str]]:
    """Settings naming the broker to use: FINANCELAKE_KAFKA_BOOTSTRAP's, or a private one
    (temp home, free ports; as tests/fixtures/kafka.py's local_broker_settings)."""
    base = Settings()
    if base.uses_external_kafka:
        yield base, "external (FINANCELAKE_KAFKA_BOOTSTRAP)"
        return
    broker = base.broker.model_copy(
        update={"port": free_port(base.broker.host), "controller_port": free_port("127.0.0.1")}
    )
    settings = base.model_copy(update={"home": home, "kafka_bootstrap": None, "broker": broker})
    provision(settings)
    local = LocalBroker(settings)
    local.start()
    try:
        yield (
            settings.model_copy(update={"kafka_bootstrap": settings.bootstrap_servers}),
            "private local broker",
        )
    finally:
        local.stop()


def create_topic(bootstrap: str, name: str) -> str:
    """A fresh `PARTITIONS`-partition topic for one measurement."""
    topic = f"bench-{name}-{uuid.uuid4().hex[:8]}"
    # log_level 3: no librdkafka notices on the bench's output.
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    (future,) = admin.create_topics([NewTopic(topic, PARTITIONS, 1)]).values()
    future.result(timeout=30)
    # Wait for every partition's leader, so that producers do not start with retries.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        partitions = admin.list_topics(topic, timeout=10).topics[topic].partitions
        if len(partitions) == PARTITIONS and all(p.leader >= 0 for p in partitions.values()):
            break
        time.sleep(0.1)
    return topic


def records_in(bootstrap: str, topic: str) -> int:
    """The sum of the topic's end offsets: every record ever written to it."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4()}", "log_level": 3}
    )
    try:
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(PARTITIONS)
        )
    finally:
        consumer.close()


# ---- the server process ------------------------------------------------------------------


@dataclass
class ServerProcess:
    """`python -m financelake.services.ingestion`, configured through FINANCELAKE_* only."""

    bootstrap: str
    topic: str
    home: Path
    profile: Path | None = None
    """Where py-spy writes the server's sampled stacks (collapsed), or None."""
    env: dict[str, str] = field(default_factory=dict)
    """FINANCELAKE_* beyond the broker, topic, port and home (tracing)."""
    port: int = 0
    process: asyncio.subprocess.Process | None = None
    sampler: asyncio.subprocess.Process | None = None

    @property
    def log(self) -> Path:
        return self.home / f"ingestion-{self.topic}.log"

    async def __aenter__(self) -> ServerProcess:
        self.port = free_port("127.0.0.1")
        env = {
            **os.environ,
            "FINANCELAKE_KAFKA_BOOTSTRAP": self.bootstrap,
            "FINANCELAKE_TOPICS__TICKS": self.topic,
            "FINANCELAKE_SERVERS__HOST": "127.0.0.1",
            "FINANCELAKE_SERVERS__INGESTION_PORT": str(self.port),
            "FINANCELAKE_HOME": str(self.home),
            **self.env,
        }
        argv = [sys.executable, "-m", "financelake.services.ingestion"]
        with self.log.open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                *argv, env=env, stdout=log, stderr=asyncio.subprocess.STDOUT, cwd=REPO
            )
        try:  # a server that started must not outlive a failed start (no __aexit__ then)
            await self._wait_serving()
            if self.profile is not None:
                assert self.process is not None
                self.sampler = await asyncio.create_subprocess_exec(
                    *("py-spy", "record", "--pid", str(self.process.pid), "--rate", "200"),
                    *("--format", "raw", "--output", str(self.profile), "--nonblocking"),
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def _wait_serving(self) -> None:
        deadline = time.monotonic() + _SERVER_START_S
        async with grpc.aio.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.returncode is not None:
                    raise RuntimeError(f"ingestion server exited:\n{self.log.read_text()[-3000:]}")
                with contextlib.suppress(grpc.aio.AioRpcError):
                    answer = await health.Check(
                        health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=1
                    )
                    if answer.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"ingestion server not SERVING in {_SERVER_START_S}s; see {self.log}")

    async def __aexit__(self, *_: object) -> None:
        if self.sampler is not None:
            # SIGINT: py-spy writes what it sampled and exits.
            self.sampler.send_signal(signal.SIGINT)
            await self.sampler.wait()
        # SIGTERM: the graceful path (drain, flush the producer), as in a deployment.
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 60)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


@dataclass
class OtlpSink:
    """`python -m tests.bench.otlp_sink` on a free port: where traced servers export."""

    port: int = 0
    spans: int = 0
    process: asyncio.subprocess.Process | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> OtlpSink:
        self.port = free_port("127.0.0.1")
        self.process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "tests.bench.otlp_sink", str(self.port)),
            stdout=asyncio.subprocess.PIPE,
            cwd=REPO,
        )
        assert self.process.stdout is not None
        ready = await asyncio.wait_for(self.process.stdout.readline(), _SERVER_START_S)
        assert ready.strip() == b"ready", ready
        return self

    async def __aexit__(self, *_: object) -> None:
        # After the server's exit (SIGTERM), which flushed its last spans here.
        assert self.process is not None
        assert self.process.stdout is not None
        self.process.terminate()
        self.spans = int((await self.process.stdout.read()).strip() or 0)
        await self.process.wait()


def channel_to(server: ServerProcess) -> grpc.aio.Channel:
    # Requests go as bytes (no request serialiser): serialised before timing.
    return grpc.aio.insecure_channel(
        f"127.0.0.1:{server.port}",
        options=[
            ("grpc.max_send_message_length", 16 * 1024 * 1024),
            ("grpc.max_receive_message_length", 16 * 1024 * 1024),
        ],
    )


# ---- measurements ------------------------------------------------------------------------


@dataclass
class Run:
    """What one timed phase sent and how long it took (until every acknowledgement)."""

    trades: int = 0
    records: int = 0
    seconds: float = 0.0
    written: int = 0
    """Records the topic should hold: warm-up and timed phase."""

    @property
    def per_s(self) -> float:
        return self.trades / self.seconds


async def timed(work: Callable[[float], Awaitable[Run]], warmup_s: float, duration_s: float) -> Run:
    """Run `work(until)` for a warm-up, then for `duration_s`; the second run is the result."""
    loop = asyncio.get_running_loop()
    warm = await work(loop.time() + warmup_s)
    started = loop.time()
    run = await work(started + duration_s)
    run.seconds = loop.time() - started
    # The topic holds both phases; the check compares against both.
    run.written = warm.records + run.records
    return run


async def ingest_streams(
    server: ServerProcess, requests: list[bytes], streams: int, per_request: int, until: float
) -> Run:
    """`streams` concurrent IngestTicks streams, each writing requests until `until`."""
    loop = asyncio.get_running_loop()
    async with channel_to(server) as channel:
        ingest = channel.stream_unary(
            _METHOD + "IngestTicks", response_deserializer=pb.IngestTicksResponse.FromString
        )

        async def stream(first: int) -> tuple[int, int]:
            call = ingest(timeout=120)
            sent = 0
            index = first
            while loop.time() < until:
                await call.write(requests[index % len(requests)])
                index += streams
                sent += 1
            await call.done_writing()
            response: pb.IngestTicksResponse = await call
            assert response.accepted_batches == sent * per_request, (response, sent)
            assert response.accepted_trades == sent * per_request * ROWS, (response, sent)
            return response.accepted_trades, response.accepted_batches

        results = await asyncio.gather(*(stream(i) for i in range(streams)))
    return Run(trades=sum(t for t, _ in results), records=sum(b for _, b in results))


async def publish_callers(
    server: ServerProcess, requests: list[bytes], callers: int, per_request: int, until: float
) -> Run:
    """`callers` concurrent loops of unary PublishTicks until `until`."""
    loop = asyncio.get_running_loop()
    async with channel_to(server) as channel:
        publish = channel.unary_unary(
            _METHOD + "PublishTicks", response_deserializer=pb.PublishTicksResponse.FromString
        )

        async def caller(first: int) -> tuple[int, int]:
            trades = batches = 0
            index = first
            while loop.time() < until:
                response: pb.PublishTicksResponse = await publish(
                    requests[index % len(requests)], timeout=30
                )
                index += callers
                assert response.accepted_batches == per_request, response
                trades += response.accepted_trades
                batches += response.accepted_batches
            return trades, batches

        results = await asyncio.gather(*(caller(i) for i in range(callers)))
    return Run(trades=sum(t for t, _ in results), records=sum(b for _, b in results))


async def publish_latency(server: ServerProcess, requests: list[bytes], count: int) -> list[float]:
    """Milliseconds of `count` sequential single-batch PublishTicks calls (after 50 warm)."""
    async with channel_to(server) as channel:
        publish = channel.unary_unary(
            _METHOD + "PublishTicks", response_deserializer=pb.PublishTicksResponse.FromString
        )
        latencies = []
        for index in range(count + 50):
            started = time.perf_counter()
            response = await publish(requests[index % len(requests)], timeout=30)
            elapsed = time.perf_counter() - started
            assert response.accepted_trades == ROWS, response
            if index >= 50:
                latencies.append(elapsed * 1000)
    return latencies


async def produce(
    producer: AIOKafkaProducer,
    topic: str,
    records: list[tuple[bytes, bytes]],
    trades_per_record: int,
    until: float,
) -> Run:
    """Produce `records` round and round until `until`, then wait for every acknowledgement.

    A bounded window of unacknowledged records, as the server's stream window bounds it;
    `send` itself waits when a partition's batch is full.
    """
    loop = asyncio.get_running_loop()
    pending: deque[asyncio.Future[Any]] = deque()
    sent = 0
    while loop.time() < until:
        for key, value in records[sent % len(records) : sent % len(records) + 100]:
            pending.append(await producer.send(topic, value=value, key=key))
            sent += 1
        while len(pending) > 2_000:
            await pending.popleft()
    await asyncio.gather(*pending)
    return Run(records=sent, trades=sent * trades_per_record)


# ---- the run -----------------------------------------------------------------------------


@dataclass
class Options:
    """The knobs, reported with the results."""

    duration_s: float
    warmup_s: float
    pool_batches: int
    streams: int
    callers: int
    batches_per_request: int
    latency_calls: int
    profile_dir: Path | None
    kafka: str = ""
    """Which broker: private or external."""


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def measure(settings: Settings, home: Path, options: Options) -> dict[str, Any]:
    bootstrap = settings.bootstrap_servers
    batches = build_batches(options.pool_batches)
    per = options.batches_per_request
    requests = request_bytes(batches, per)
    singles = request_bytes(batches, 1)
    records = [(batch.symbol.encode(), batch.SerializeToString()) for batch in batches]
    batch_bytes = statistics.mean(len(value) for _, value in records)
    # The naive design: one JSON object per trade (pre-encoded, the kinder choice for it).
    naive = [
        (
            batch.symbol.encode(),
            json.dumps(
                {
                    "symbol": batch.symbol,
                    "event_time_unix_nanos": batch.event_time_unix_nanos[row],
                    "price": batch.prices[row],
                    "size": batch.sizes[row],
                    "exchange": batch.exchanges[row],
                    "trade_id": batch.trade_ids[row],
                }
            ).encode(),
        )
        for batch in batches[:40]
        for row in range(ROWS)
    ]

    def profile_of(name: str) -> Path | None:
        if options.profile_dir is None:
            return None
        options.profile_dir.mkdir(parents=True, exist_ok=True)
        return options.profile_dir / f"server-{name}.txt"

    def check(name: str, topic: str, run: Run) -> None:
        written = records_in(bootstrap, topic)
        assert written == run.written, f"{name}: {written} records in {topic}, sent {run.written}"

    # Raw: the service's producer settings, no gRPC.
    topic = create_topic(bootstrap, "raw")
    producer = AIOKafkaProducer(**producer_config(settings))
    await producer.start()
    try:
        raw = await timed(
            lambda until: produce(producer, topic, records, ROWS, until),
            options.warmup_s,
            options.duration_s,
        )
    finally:
        await producer.stop()
    check("raw", topic, raw)
    print(f"raw      {raw.per_s:>12,.0f} trades/s", file=sys.stderr)

    # Naive: a record per trade, default producer but acks=all.
    topic = create_topic(bootstrap, "naive")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        slow = await timed(
            lambda until: produce(producer, topic, naive, 1, until),
            options.warmup_s,
            options.duration_s,
        )
    finally:
        await producer.stop()
    check("naive", topic, slow)
    print(f"naive    {slow.per_s:>12,.0f} trades/s", file=sys.stderr)

    # IngestTicks through the real server process.
    topic = create_topic(bootstrap, "ingest")
    async with ServerProcess(bootstrap, topic, home, profile_of("ingest")) as server:
        ingest = await timed(
            lambda until: ingest_streams(server, requests, options.streams, per, until),
            options.warmup_s,
            options.duration_s,
        )
    check("ingest", topic, ingest)
    print(f"ingest   {ingest.per_s:>12,.0f} trades/s", file=sys.stderr)

    topic = create_topic(bootstrap, "publish")
    async with ServerProcess(bootstrap, topic, home, profile_of("publish")) as server:
        publish = await timed(
            lambda until: publish_callers(server, requests, options.callers, per, until),
            options.warmup_s,
            options.duration_s,
        )
    check("publish", topic, publish)
    print(f"publish  {publish.per_s:>12,.0f} trades/s", file=sys.stderr)

    traced: dict[str, Run] = {}
    spans: dict[str, int] = {}
    for label, ratio in TRACED:
        topic = create_topic(bootstrap, f"traced-{label}")
        async with OtlpSink() as sink:
            tracing = {
                "FINANCELAKE_TRACING__ENABLED": "true",
                "FINANCELAKE_TRACING__OTLP_ENDPOINT": sink.endpoint,
                "FINANCELAKE_TRACING__SAMPLE_RATIO": str(ratio),
            }
            async with ServerProcess(bootstrap, topic, home, env=tracing) as server:
                traced[label] = await timed(
                    lambda until: publish_callers(server, requests, options.callers, per, until),
                    options.warmup_s,
                    options.duration_s,
                )
        spans[label] = sink.spans
        check(f"traced {label}", topic, traced[label])
        print(
            f"traced {ratio:<4} {traced[label].per_s:>10,.0f} trades/s, {sink.spans:,} spans",
            file=sys.stderr,
        )

    topic = create_topic(bootstrap, "latency")
    async with ServerProcess(bootstrap, topic, home, profile_of("latency")) as server:
        latencies = await publish_latency(server, singles, options.latency_calls)
    check("latency", topic, Run(written=options.latency_calls + 50))

    return {
        "ingest_ticks_per_s": round(ingest.per_s),
        "publish_ticks_per_s": round(publish.per_s),
        "raw_ticks_per_s": round(raw.per_s),
        "naive_ticks_per_s": round(slow.per_s),
        "batch_p50_ms": round(percentile(latencies, 0.50), 3),
        "batch_p99_ms": round(percentile(latencies, 0.99), 3),
        "ratio_vs_raw": round(ingest.per_s / raw.per_s, 3),
        "ratio_vs_naive": round(ingest.per_s / slow.per_s, 2),
        **{
            f"publish_traced_{label}_ticks_per_s": round(run.per_s) for label, run in traced.items()
        },
        **{
            f"tracing_ratio_{label}": round(run.per_s / publish.per_s, 3)
            for label, run in traced.items()
        },
        "traced_spans_exported": spans,
        "config": {
            "trades_per_batch": ROWS,
            "symbols": list(SYMBOLS),
            "partitions": PARTITIONS,
            "batch_bytes_mean": round(batch_bytes),
            "pool_batches": options.pool_batches,
            "duration_s": options.duration_s,
            "warmup_s": options.warmup_s,
            "ingest_streams": options.streams,
            "publish_callers": options.callers,
            "batches_per_request": per,
            "latency_calls": options.latency_calls,
            "latency_batches_per_request": 1,
            "naive_record_bytes_mean": round(statistics.mean(len(v) for _, v in naive)),
            "producer": {
                k: v for k, v in producer_config(settings).items() if k != "bootstrap_servers"
            },
            "kafka": options.kafka,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "sent": {
            "ingest_trades": ingest.trades,
            "publish_trades": publish.trades,
            "raw_trades": raw.trades,
            "naive_trades": slow.trades,
            "seconds": {
                "ingest": round(ingest.seconds, 3),
                "publish": round(publish.seconds, 3),
                "raw": round(raw.seconds, 3),
                "naive": round(slow.seconds, 3),
            },
        },
    }


def table(result: dict[str, Any]) -> list[Row]:
    """The human-readable part: (key, value, note) rows."""
    config = result["config"]
    rows = [
        (
            "ingest_ticks_per_s",
            f"{result['ingest_ticks_per_s']:,}",
            f"IngestTicks, {config['ingest_streams']} streams x {config['batches_per_request']} "
            "batches/msg",
        ),
        (
            "publish_ticks_per_s",
            f"{result['publish_ticks_per_s']:,}",
            f"PublishTicks, {config['publish_callers']} callers x "
            f"{config['batches_per_request']} batches/call",
        ),
        ("raw_ticks_per_s", f"{result['raw_ticks_per_s']:,}", "aiokafka, service settings"),
        ("naive_ticks_per_s", f"{result['naive_ticks_per_s']:,}", "a JSON record per trade"),
        ("batch_p50_ms", f"{result['batch_p50_ms']:.2f}", "1 caller, 1 batch/call"),
        ("batch_p99_ms", f"{result['batch_p99_ms']:.2f}", ""),
        ("ratio_vs_raw", f"{result['ratio_vs_raw']:.3f}", "target >= 0.5"),
        ("ratio_vs_naive", f"{result['ratio_vs_naive']:.1f}", ""),
    ]
    for label, ratio in TRACED:
        rows.append(
            (
                f"publish_traced_{label}_ticks_per_s",
                f"{result[f'publish_traced_{label}_ticks_per_s']:,}",
                f"PublishTicks, tracing on, sampling {ratio}; "
                f"{result['traced_spans_exported'][label]:,} spans exported",
            )
        )
        target = "target >= 0.9" if ratio < 1 else ""
        rows.append((f"tracing_ratio_{label}", f"{result[f'tracing_ratio_{label}']:.3f}", target))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="timed seconds per rate")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per rate")
    parser.add_argument("--pool", type=int, default=400, help="distinct batches pre-built")
    parser.add_argument("--streams", type=int, default=1, help="concurrent IngestTicks streams")
    parser.add_argument("--callers", type=int, default=4, help="concurrent PublishTicks callers")
    parser.add_argument("--per-request", type=int, default=16, help="batches per gRPC message")
    parser.add_argument("--latency-calls", type=int, default=1000)
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="sample each server process with py-spy (must be on PATH) into this folder",
    )
    args = parser.parse_args()
    options = Options(
        duration_s=args.duration,
        warmup_s=args.warmup,
        pool_batches=args.pool,
        streams=args.streams,
        callers=args.callers,
        batches_per_request=args.per_request,
        latency_calls=args.latency_calls,
        profile_dir=args.profile,
    )
    with tempfile.TemporaryDirectory(prefix="financelake-bench-") as tmp:
        home = Path(tmp)
        with kafka(home) as (settings, kind):
            options.kafka = kind
            # The server's own event loop, so that the raw limit is measured on it too.
            result = run_event_loop(measure(settings, home, options))
    publish("ingest", result, table(result))


if __name__ == "__main__":
    main()
