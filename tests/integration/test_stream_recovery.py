"""The stream worker across a broker outage: no trade lost, none written twice.

Each test runs a private broker (its own home in tmp_path, so stopping it leaves the session
broker alone), publishes the first half of a known set of trades, stops the broker, and
starts it again (same data dir, same port) before publishing the rest. One test keeps the
worker running through the outage; the other SIGTERMs it while the broker is down and starts
a new one. Either way bronze.ticks must end up with every trade exactly once and silver.bars
equal to the pandas reference of an uninterrupted run (including the bars that were open
when the worker stopped, restored from its checkpoint); and a SIGTERM must end the worker
within a grace period even with no broker to talk to.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from financelake.gen.common.v1 import tick_pb2
from financelake.services.settings import Settings
from financelake.stream.broker import LocalBroker
from financelake.stream.kafka_dist import provision
from financelake.stream.topics import ensure_topics
from tests.fixtures.kafka import local_broker_settings
from tests.fixtures.stream import WorkerFactory, WorkerProcess, lake, publish_batches, wait_for_rows
from tests.integration.test_stream_worker import (
    MINUTE_NS,
    START_NS,
    assert_bars_equal,
    closing_batches,
    make_batches,
    reference_bars,
    trades_frame,
    wait_for_bars,
)

pytestmark = pytest.mark.integration

SYMBOLS = ["AAPL", "MSFT", "BTC-USD"]
# Long enough for the worker's heartbeats, fetches and offset commits to fail many times.
OUTAGE_S = 8.0
# How long a SIGTERMed worker may take to exit: twice the supervisor's default grace
# (`servers.grace_period_s`), after which `financelake down` SIGKILLs it.
STOP_GRACE_S = 10.0


@dataclass
class PrivateStack:
    """A broker of the test's own, settings pointing at it, and the workers started on it."""

    settings: Settings
    broker: LocalBroker
    workers: WorkerFactory


@pytest.fixture
def private_stack(tmp_path: Path) -> Iterator[PrivateStack]:
    base = Settings()
    if base.uses_external_kafka:
        pytest.skip("stopping the broker needs a local one")
    settings = local_broker_settings(tmp_path / "home", base)
    stream = settings.stream.model_copy(
        update={
            "app_id": f"test-recovery-{uuid.uuid4().hex[:8]}",
            "web_enabled": False,
            "commit_interval_s": 1.0,
        }
    )
    settings = settings.model_copy(update={"stream": stream})
    provision(settings)
    broker = LocalBroker(settings)
    broker.start()
    workers = WorkerFactory(settings)
    try:
        ensure_topics(settings)
        yield PrivateStack(settings, broker, workers)
    finally:
        for worker in workers.started:
            if worker.process.poll() is None:
                worker.kill()
        broker.stop()


def halves(seed: int) -> tuple[list[tick_pb2.TickBatch], list[tick_pb2.TickBatch]]:
    """Four minutes of trades per symbol: the first two minutes of each, then the last two
    (so each half keeps every symbol's event-time order)."""
    batches = make_batches(SYMBOLS, 4, 100, 2, seed=seed)
    per_symbol = len(batches) // len(SYMBOLS)
    first = [b for i, b in enumerate(batches) if i % per_symbol < per_symbol // 2]
    second = [b for i, b in enumerate(batches) if i % per_symbol >= per_symbol // 2]
    return first, second


def trade_count(batches: Sequence[tick_pb2.TickBatch]) -> int:
    return sum(len(b.trade_ids) for b in batches)


def worker_story(worker: WorkerProcess, lines: int = 12) -> str:
    """The worker's last log lines without aiokafka's reconnect errors (several every 100 ms
    while the broker is down), which would bury what the worker itself last did."""
    text = worker.log.read_text(errors="replace").splitlines()
    own = [line for line in text if '"level": "ERROR", "logger": "aiokafka' not in line]
    return "\n".join(own[-lines:])


def assert_lake_holds_every_trade_once(
    settings: Settings,
    batches: Sequence[tick_pb2.TickBatch],
    worker: WorkerProcess,
    timeout: float = 60,
) -> None:
    """bronze.ticks has each published trade (plus the closing ones) exactly once and the
    final silver.bars equal the pandas reference of `batches`."""
    trades = trades_frame(batches)
    closing = len(SYMBOLS)
    wait_for_rows(settings, "bronze.ticks", len(trades) + closing, worker, timeout)
    expected = reference_bars(trades)
    bars = wait_for_bars(settings, len(expected), worker, timeout)
    time.sleep(2)  # a late duplicate commit would show up as extra rows
    catalog = lake(settings)
    bronze = catalog.load_table("bronze.ticks").scan().to_arrow().to_pandas()
    silver = catalog.load_table("silver.bars").scan().to_arrow().to_pandas()

    duplicated = bronze[bronze.duplicated(["symbol", "trade_id"], keep=False)]
    assert duplicated.empty, f"trades written twice:\n{duplicated[['symbol', 'trade_id']]}"
    missing = set(trades["trade_id"]) - set(bronze["trade_id"])
    assert not missing, f"{len(missing)} trades lost, e.g. {sorted(missing)[:5]}"
    assert len(bronze) == len(trades) + closing
    assert not silver.duplicated(["symbol", "start_time", "revision"]).any()
    assert sorted(set(bars["symbol"])) == sorted(SYMBOLS), (
        f"silver.bars symbols {sorted(set(bars['symbol']))}:\n"
        f"{bars[['symbol', 'start_time', 'trade_count', 'revision']]}"
    )
    assert_bars_equal(bars, expected)


def test_broker_stopped_and_started_under_a_running_worker_loses_nothing(
    private_stack: PrivateStack,
) -> None:
    settings, broker, workers = private_stack.settings, private_stack.broker, private_stack.workers
    first, second = halves(seed=11)
    worker = workers.start()
    publish_batches(settings, first)
    wait_for_rows(settings, "bronze.ticks", trade_count(first), worker)

    broker.stop()
    time.sleep(OUTAGE_S)
    # Faust does not give up: aiokafka keeps reconnecting and the worker stays up.
    assert worker.process.poll() is None, (
        f"worker exited with the broker down:\n{worker_story(worker)}"
    )
    broker.start()
    publish_batches(settings, [*second, *closing_batches(SYMBOLS, START_NS + 20 * MINUTE_NS)])

    # The same process picks up where it was: no restart, no replay to filter.
    assert_lake_holds_every_trade_once(settings, [*first, *second], worker)
    assert workers.started == [worker]
    assert "Marking the coordinator dead" in worker.log.read_text()  # it did see the outage
    assert worker.stop() == 0, worker_story(worker)


def test_worker_restarted_while_the_broker_is_down_resumes_without_loss_or_duplicates(
    private_stack: PrivateStack,
) -> None:
    settings, broker, workers = private_stack.settings, private_stack.broker, private_stack.workers
    first, second = halves(seed=12)
    old = workers.start()
    publish_batches(settings, first)
    wait_for_rows(settings, "bronze.ticks", trade_count(first), old)

    broker.stop()
    # Faust would retry its Kafka offset commit forever; the worker ends within the grace
    # period once its lake commits are done.
    assert old.stop(STOP_GRACE_S) == 0, worker_story(old)
    bronze = lake(settings).load_table("bronze.ticks").scan().to_arrow()
    assert bronze.num_rows == trade_count(first)

    # A worker started with no broker to bootstrap from fails fast instead of waiting.
    early = workers.start()
    assert early.process.wait(60) != 0, worker_story(early)
    assert "Unable to bootstrap" in early.log.read_text(), worker_story(early)

    broker.start()
    publish_batches(settings, [*second, *closing_batches(SYMBOLS, START_NS + 20 * MINUTE_NS)])
    worker = workers.start()
    # Bounded above the 15 s session timeout: the stopped worker did not leave the group, so
    # the next join waits for its session to expire (no loss, only delay).
    assert_lake_holds_every_trade_once(settings, [*first, *second], worker, timeout=60)
    assert "resumes at offset" in worker.log.read_text()
    assert worker.stop() == 0, worker_story(worker)
