"""`make bench-stream`: how fast and how fresh the stream worker lands trades in Iceberg.

One run starts a private Kafka (unless FINANCELAKE_KAFKA_BOOTSTRAP names one) and a private
lake, then measures:

* `raw_append_rows_per_s`, the limit: the bronze rows of the backlog, built as pyarrow tables
  before timing, appended with bare pyiceberg `Table.append` into an empty `bronze.ticks`
  (same schema and partition spec), one append per `commit_max_records` records as the
  worker commits;
* `bronze_ticks_per_s`: a backlog of 1,000-trade TickBatches published before the worker
  starts; from the worker's first record to the bronze commit that completes the backlog.
  The whole worker runs (bronze, bars, imports, features, alerts agents), as deployed;
* `freshness_p50_s` / `freshness_p95_s`: then, live, a batch per symbol every 50 ms; for each
  batch, from Kafka's append time of its record to the commit time of the first bronze
  snapshot whose recorded offsets cover it (the moment a table scan can see it);
* `bar_latency_p50_ms` / `bar_latency_p99_ms`: in the same live phase, event time runs at
  40 s per wall second so minutes close often; from the append time of the ticks record that
  moved its partition's watermark past a window (end + grace) to the append time of that
  window's bar on the bars topic. Both topics use broker LogAppendTime: one clock.

It prints a table, then as its last line one JSON object, also written to
`tests/bench/results/stream.json`.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table
from pyiceberg.table.snapshots import ancestors_of

from financelake.gen.common.v1 import bar_pb2, tick_pb2
from financelake.services.settings import Settings
from financelake.services.supervisor import child_environment
from financelake.stream.agents import agent_group
from financelake.stream.agents.bronze import ticks_rows
from financelake.stream.lake.catalog import open_catalog
from financelake.stream.lake.tables import TICKS
from financelake.stream.lake.writer import offsets_key
from financelake.stream.tick_columns import decode_tick_batch
from tests.bench import report
from tests.bench.ingest import kafka

PARTITIONS = 6
ROWS = 1_000
SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "SPY", "QQQ", "BTC-USD", "ETH-USD")
SECOND_NS = 1_000_000_000
MINUTE_NS = 60 * SECOND_NS
LIVE_STEP_NS = 2 * SECOND_NS  # event time per live batch; 20 batches/s -> 40 s per second


@dataclass
class Options:
    backlog_batches: int
    live_s: float
    profile: Path | None = None
    """Where py-spy writes the worker's sampled stacks during the backlog (collapsed)."""
    kafka: str = ""


# ---- data --------------------------------------------------------------------------------


def backlog(count: int, start_ns: int, seed: int = 11) -> list[tick_pb2.TickBatch]:
    """`count` 1,000-trade batches, symbols round-robin, a second of event time each."""
    rng = np.random.default_rng(seed)
    out = []
    price = dict.fromkeys(SYMBOLS, 100.0)
    for index in range(count):
        symbol = SYMBOLS[index % len(SYMBOLS)]
        round_ = index // len(SYMBOLS)
        first = start_ns + round_ * SECOND_NS
        times = first + np.arange(ROWS, dtype=np.int64) * (SECOND_NS // ROWS)
        prices = price[symbol] * np.exp(np.cumsum(rng.normal(0, 1e-4, ROWS)))
        price[symbol] = float(prices[-1])
        out.append(
            tick_pb2.TickBatch(
                symbol=symbol,
                event_time_unix_nanos=times.tolist(),
                prices=prices.tolist(),
                sizes=rng.integers(1, 300, ROWS).astype(float).tolist(),
                exchanges=["XNAS"] * ROWS,
                trade_ids=[f"{symbol}-{round_}-{i}" for i in range(ROWS)],
            )
        )
    return out


def create_topic(bootstrap: str, name: str) -> str:
    """A fresh topic stamped with the broker's append time (one clock for latencies)."""
    topic = f"bench-{name}-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    config = {"message.timestamp.type": "LogAppendTime"}
    (future,) = admin.create_topics([NewTopic(topic, PARTITIONS, 1, config=config)]).values()
    future.result(timeout=30)
    return topic


@dataclass
class Published:
    """Where each produced record landed and when the broker appended it."""

    partition: list[int] = field(default_factory=list)
    offset: list[int] = field(default_factory=list)
    append_ms: list[int] = field(default_factory=list)
    max_event_ns: list[int] = field(default_factory=list)
    symbol: list[str] = field(default_factory=list)


def publish(
    producer: Producer, topic: str, batches: list[tick_pb2.TickBatch], into: Published
) -> None:
    """Produce each batch keyed by symbol and wait for every delivery report."""

    def delivered(error: Any, message: Any, max_event_ns: int) -> None:
        assert error is None, error
        into.symbol.append(message.key().decode())
        into.partition.append(message.partition())
        into.offset.append(message.offset())
        into.append_ms.append(message.timestamp()[1])
        into.max_event_ns.append(max_event_ns)

    for batch in batches:
        last = batch.event_time_unix_nanos[-1]
        producer.produce(
            topic,
            batch.SerializeToString(),
            batch.symbol.encode(),
            on_delivery=functools.partial(delivered, max_event_ns=last),
        )
        producer.poll(0)
    assert producer.flush(60) == 0


# ---- the limit: bare pyiceberg appends ---------------------------------------------------


def raw_append(home: Path, batches: list[tick_pb2.TickBatch], per_commit: int) -> float:
    root = home / "raw-lake"
    (root / "warehouse").mkdir(parents=True)
    catalog = SqlCatalog(
        "raw", uri=f"sqlite:///{root / 'catalog.db'}", warehouse=(root / "warehouse").as_uri()
    )
    catalog.create_namespace("bronze")
    table = catalog.create_table(
        TICKS.identifier,
        schema=TICKS.schema,
        partition_spec=TICKS.spec,
        properties=TICKS.all_properties,
    )
    now = time.time_ns()
    columns = [decode_tick_batch(b.SerializeToString()) for b in batches]
    chunks = [
        ticks_rows(
            columns[i : i + per_commit], 0, range(i, i + per_commit)[: len(batches) - i], now
        )
        for i in range(0, len(batches), per_commit)
    ]
    started = time.perf_counter()
    for chunk in chunks:
        table.append(chunk)
    elapsed = time.perf_counter() - started
    return float(sum(c.num_rows for c in chunks) / elapsed)


# ---- the worker --------------------------------------------------------------------------


@contextlib.contextmanager
def worker(settings: Settings, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = child_environment(settings, os.environ)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "financelake.stream"], env=env, stdout=out, stderr=out
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()


def first_record_time(log: Path, timeout: float = 120) -> float:
    """When the worker started on its first partition (its log's clock, Unix seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if "resumes at offset" in line and line.lstrip().startswith("{"):
                stamp = json.loads(line[line.index("{") :])["time"]
                return datetime.fromisoformat(stamp).timestamp()
        time.sleep(0.2)
    raise RuntimeError(f"the worker never started:\n{log.read_text()[-3000:]}")


def bronze_snapshots(table: Table, group: str) -> list[tuple[int, dict[int, int], int]]:
    """(commit ms, {partition: next offset}, total rows) of the group's bronze commits, oldest
    first."""
    key = offsets_key(group)
    metadata = table.metadata
    out = []
    for snapshot in ancestors_of(metadata.current_snapshot(), metadata):
        summary = snapshot.summary
        text = None if summary is None else summary[key]
        if summary is None or text is None:
            continue
        offsets = {
            int(p): o for positions in json.loads(text).values() for p, o in positions.items()
        }
        out.append((snapshot.timestamp_ms, offsets, int(summary["total-records"] or 0)))
    return out[::-1]


def wait_rows(settings: Settings, rows: int, timeout: float = 600) -> Table:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        catalog = open_catalog(settings)
        table = catalog.load_table(TICKS.identifier)
        snapshot = table.current_snapshot()
        if snapshot and snapshot.summary and int(snapshot.summary["total-records"] or 0) >= rows:
            return table
        time.sleep(0.5)
    raise RuntimeError(f"bronze.ticks never reached {rows} rows")


# ---- live phase --------------------------------------------------------------------------


def live_batches(rounds: int, start_ns: int) -> list[list[tick_pb2.TickBatch]]:
    """Per round, one 100-trade batch per symbol covering the round's LIVE_STEP_NS."""
    out = []
    for r in range(rounds):
        first = start_ns + r * LIVE_STEP_NS
        times = (first + np.arange(100, dtype=np.int64) * (LIVE_STEP_NS // 100)).tolist()
        out.append(
            [
                tick_pb2.TickBatch(
                    symbol=s,
                    event_time_unix_nanos=times,
                    prices=[100.0 + (r % 7)] * 100,
                    sizes=[10.0] * 100,
                    trade_ids=[f"live-{s}-{r}-{i}" for i in range(100)],
                )
                for s in SYMBOLS
            ]
        )
    return out


def read_bars(bootstrap: str, topic: str) -> list[tuple[bar_pb2.Bar, int]]:
    """Every bar on the topic with its append time (ms)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4()}", "log_level": 3}
    )
    ends = {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
        for p in range(PARTITIONS)
    }
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    out: list[tuple[bar_pb2.Bar, int]] = []
    try:
        while len(out) < sum(ends.values()):
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                value = message.value() or b""
                out.append((bar_pb2.Bar.FromString(value), message.timestamp()[1]))
    finally:
        consumer.close()
    return out


def bar_latencies(
    bars: list[tuple[bar_pb2.Bar, int]], live: Published, grace_ns: int, live_start_ns: int
) -> list[float]:
    """Per bar closed in the live phase: its append time minus the append time of the ticks
    record whose event time first moved its partition's watermark past the bar's end."""
    partition_of = dict(zip(live.symbol, live.partition, strict=True))
    by_partition: dict[int, list[tuple[int, int, int]]] = {}
    for p, o, t, e in zip(
        live.partition, live.offset, live.append_ms, live.max_event_ns, strict=True
    ):
        by_partition.setdefault(p, []).append((o, e, t))
    for records in by_partition.values():
        records.sort()
    out = []
    for bar, bar_ms in bars:
        if bar.revision or bar.start_time.ToNanoseconds() < live_start_ns:
            continue
        end = bar.start_time.ToNanoseconds() + MINUTE_NS
        watermark = 0
        for _, max_event, append_ms in by_partition[partition_of[bar.symbol]]:
            watermark = max(watermark, max_event - grace_ns)
            if watermark >= end:
                out.append(float(bar_ms - append_ms))
                break
    return out


def percentile(values: list[float], fraction: float) -> float:
    return float(np.percentile(np.asarray(values), fraction * 100))


# ---- the run -----------------------------------------------------------------------------


def measure(settings: Settings, home: Path, options: Options) -> dict[str, Any]:
    bootstrap = settings.bootstrap_servers
    topics = settings.topics.model_copy(
        update={
            "ticks": create_topic(bootstrap, "ticks"),
            "bars": create_topic(bootstrap, "bars"),
            "alerts": create_topic(bootstrap, "alerts"),
            "partitions": PARTITIONS,
        }
    )
    stream = settings.stream.model_copy(
        update={"app_id": f"bench-{uuid.uuid4().hex[:8]}", "web_enabled": False}
    )
    settings = settings.model_copy(
        update={"home": home / "worker-home", "topics": topics, "stream": stream}
    )
    start_ns = (time.time_ns() - 3 * 3600 * SECOND_NS) // MINUTE_NS * MINUTE_NS
    batches = backlog(options.backlog_batches, start_ns)
    rows = len(batches) * ROWS

    raw_rows_per_s = raw_append(home, batches, stream.commit_max_records)

    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 2, "log_level": 3}
    )
    publish(producer, topics.ticks, batches, Published())
    group = agent_group(stream.app_id, "bronze")
    log = home / "worker.log"
    with worker(settings, log) as process:
        sampler = None
        if options.profile is not None:
            sampler = subprocess.Popen(
                [
                    *("py-spy", "record", "--pid", str(process.pid), "--rate", "200"),
                    *("--format", "raw", "--output", str(options.profile), "--nonblocking"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        began = first_record_time(log)
        table = wait_rows(settings, rows)
        if sampler is not None:
            sampler.send_signal(signal.SIGINT)  # py-spy writes what it sampled and exits
            sampler.wait(60)
        commits = bronze_snapshots(table, group)
        done_ms = next(ms for ms, _, total in commits if total >= rows)
        bronze_rate = rows / (done_ms / 1000 - began)

        # Live: event time continues after the backlog, far ahead of its last minute.
        rounds = int(options.live_s * 20)
        live_start = start_ns + (len(batches) // len(SYMBOLS) + 600) * SECOND_NS
        live_start = live_start // MINUTE_NS * MINUTE_NS
        published = Published()
        for round_batches in live_batches(rounds, live_start):
            publish(producer, topics.ticks, round_batches, published)
            time.sleep(0.05)
        time.sleep(stream.commit_interval_s + 3)
        assert process.poll() is None, log.read_text()[-3000:]
        table = open_catalog(settings).load_table(TICKS.identifier)
        commits = bronze_snapshots(table, group)
        freshness = []
        for p, o, t in zip(published.partition, published.offset, published.append_ms, strict=True):
            seen = next((ms for ms, offsets, _ in commits if offsets.get(p, 0) > o), None)
            if seen is not None:
                freshness.append((seen - t) / 1000)
        bars = read_bars(bootstrap, topics.bars)
    latencies = bar_latencies(bars, published, int(stream.bar_grace_s * SECOND_NS), live_start)

    return {
        "bronze_ticks_per_s": round(bronze_rate),
        "raw_append_rows_per_s": round(raw_rows_per_s),
        "ratio_vs_raw": round(bronze_rate / raw_rows_per_s, 3),
        "freshness_p50_s": round(percentile(freshness, 0.5), 3),
        "freshness_p95_s": round(percentile(freshness, 0.95), 3),
        "bar_latency_p50_ms": round(percentile(latencies, 0.5), 1),
        "bar_latency_p99_ms": round(percentile(latencies, 0.99), 1),
        "samples": {"freshness": len(freshness), "bars": len(latencies)},
        "config": {
            "backlog_trades": rows,
            "partitions": PARTITIONS,
            "commit_interval_s": stream.commit_interval_s,
            "commit_max_records": stream.commit_max_records,
            "bar_grace_s": stream.bar_grace_s,
            "kafka": options.kafka,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
    }


def table(result: dict[str, Any]) -> list[report.Row]:
    """The human-readable part: (key, value, note) rows."""
    rows = [
        (
            "bronze_ticks_per_s",
            f"{result['bronze_ticks_per_s']:,}",
            "worker, all agents; >= 500,000",
        ),
        ("raw_append_rows_per_s", f"{result['raw_append_rows_per_s']:,}", "bare pyiceberg append"),
        ("ratio_vs_raw", f"{result['ratio_vs_raw']:.3f}", "target >= 0.5"),
        ("freshness_p50_s", f"{result['freshness_p50_s']:.2f}", "publish -> visible in a scan"),
        ("freshness_p95_s", f"{result['freshness_p95_s']:.2f}", "target <= 5"),
        ("bar_latency_p50_ms", f"{result['bar_latency_p50_ms']:.1f}", "window close -> bars topic"),
        ("bar_latency_p99_ms", f"{result['bar_latency_p99_ms']:.1f}", "target <= 250"),
    ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=10_000, help="1,000-trade batches")
    parser.add_argument("--live", type=float, default=30.0, help="seconds of live feed")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="sample the worker with py-spy (must be on PATH) into this file",
    )
    args = parser.parse_args()
    options = Options(backlog_batches=args.backlog, live_s=args.live, profile=args.profile)
    with tempfile.TemporaryDirectory(prefix="financelake-bench-") as tmp:
        home = Path(tmp)
        with kafka(home) as (settings, kind):
            options.kafka = kind
            result = measure(settings, home, options)
    report.publish("stream", result, table(result))


if __name__ == "__main__":
    main()
