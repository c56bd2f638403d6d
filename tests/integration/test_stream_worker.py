"""The stream worker as a real process: real broker, real Iceberg tables on disk.

Bars are checked against a reference computed here with pandas from the same trades;
the kill test SIGKILLs the worker at random moments and checks the lake afterwards holds
every trade once and the same bars as an uninterrupted run would.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from financelake.gen.common.v1 import alert_pb2, bar_pb2, tick_pb2
from financelake.services.settings import Settings
from tests.fixtures.ingestion import PARTITIONS, read_topic
from tests.fixtures.stream import (
    WorkerFactory,
    WorkerProcess,
    lake,
    publish_batches,
    wait_for_rows,
)

MINUTE_NS = 60 * 1_000_000_000
START_NS = 1_767_000_000 * 1_000_000_000 // MINUTE_NS * MINUTE_NS  # a minute boundary, 2025


def make_batches(
    symbols: Sequence[str],
    minutes: int,
    trades_per_batch: int,
    batches_per_minute: int,
    seed: int,
    start_ns: int = START_NS,
) -> list[tick_pb2.TickBatch]:
    """Trades in event-time order per symbol, random prices/sizes, unique trade ids."""
    rng = np.random.default_rng(seed)
    out: list[tick_pb2.TickBatch] = []
    step = MINUTE_NS // (batches_per_minute * trades_per_batch)
    for symbol in symbols:
        price = 100.0
        serial = 0
        for b in range(minutes * batches_per_minute):
            first = start_ns + b * trades_per_batch * step
            times = first + np.arange(trades_per_batch, dtype=np.int64) * step
            prices = price * np.exp(np.cumsum(rng.normal(0, 1e-3, trades_per_batch)))
            price = float(prices[-1])
            sizes = rng.integers(1, 500, trades_per_batch).astype(np.float64)
            out.append(
                tick_pb2.TickBatch(
                    symbol=symbol,
                    event_time_unix_nanos=times.tolist(),
                    prices=np.round(prices, 4).tolist(),
                    sizes=sizes.tolist(),
                    exchanges=["XNAS"] * trades_per_batch,
                    trade_ids=[f"{symbol}-{serial + i}" for i in range(trades_per_batch)],
                )
            )
            serial += trades_per_batch
    return out


def trades_frame(batches: Sequence[tick_pb2.TickBatch]) -> pd.DataFrame:
    """The published trades as one frame, in publish order."""
    return pd.DataFrame(
        {
            "symbol": np.concatenate([[b.symbol] * len(b.prices) for b in batches]),
            "event_time_ns": np.concatenate([list(b.event_time_unix_nanos) for b in batches]),
            "price": np.concatenate([list(b.prices) for b in batches]),
            "size": np.concatenate([list(b.sizes) for b in batches]),
            "trade_id": np.concatenate([list(b.trade_ids) for b in batches]),
        }
    )


def reference_bars(trades: pd.DataFrame) -> pd.DataFrame:
    """1-minute OHLCV/VWAP/count per symbol with pandas, independent of stream.bars."""
    frame = trades.assign(
        time=pd.to_datetime(trades["event_time_ns"], utc=True),
        notional=trades["price"] * trades["size"],
    )
    # A stable sort by time keeps arrival order for equal times (the open/close tie rule).
    frame = frame.sort_values(["symbol", "time"], kind="stable")
    rows = []
    for symbol, group in frame.groupby("symbol"):
        resampled = group.set_index("time").resample("1min")
        ohlc = resampled["price"].ohlc()
        ohlc["volume"] = resampled["size"].sum()
        ohlc["trade_count"] = resampled["price"].count()
        ohlc["vwap"] = resampled["notional"].sum() / ohlc["volume"]
        ohlc = ohlc[ohlc["trade_count"] > 0]
        ohlc["symbol"] = symbol
        rows.append(ohlc.reset_index().rename(columns={"time": "start_time"}))
    return pd.concat(rows).sort_values(["symbol", "start_time"]).reset_index(drop=True)


def final_bars(table: pa.Table) -> pd.DataFrame:
    """silver.bars rows built from trades, the highest revision of each bar."""
    frame = table.to_pandas()
    frame = frame[frame["source"] == "trades"]
    frame = frame.sort_values(["symbol", "start_time", "revision"])
    return frame.drop_duplicates(["symbol", "start_time"], keep="last").reset_index(drop=True)


def assert_bars_equal(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    keys = ["symbol", "start_time"]
    merged = expected.merge(actual, on=keys, how="outer", suffixes=("_ref", ""), indicator=True)
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"][keys]
    for column in ("open", "high", "low", "close", "volume", "vwap"):
        np.testing.assert_allclose(merged[column], merged[f"{column}_ref"], rtol=1e-12)
    assert (merged["trade_count"] == merged["trade_count_ref"]).all()


def closing_batches(symbols: Sequence[str], at_ns: int) -> list[tick_pb2.TickBatch]:
    """One trade per symbol far enough ahead to close (and evict) every earlier bar."""
    return [
        tick_pb2.TickBatch(
            symbol=s,
            event_time_unix_nanos=[at_ns],
            prices=[1.0],
            sizes=[1.0],
            trade_ids=[f"{s}-close-{at_ns}"],
        )
        for s in symbols
    ]


def wait_for_log(worker: WorkerProcess, text: str, timeout: float) -> None:
    """Until the worker's log contains `text` (fails early if the worker died)."""
    deadline = time.monotonic() + timeout
    while text not in worker.log.read_text(errors="replace"):
        assert worker.process.poll() is None, worker.log_tail()
        assert time.monotonic() < deadline, f"no {text!r} in the worker log:\n{worker.log_tail()}"
        time.sleep(0.1)


def wait_for_bars(
    settings: Settings, expected: int, worker: object, timeout: float = 60
) -> pd.DataFrame:
    deadline = time.monotonic() + timeout
    bars = pd.DataFrame()
    while time.monotonic() < deadline:
        catalog = lake(settings)
        if catalog.table_exists("silver.bars"):
            bars = final_bars(catalog.load_table("silver.bars").scan().to_arrow())
            if len(bars) >= expected:
                return bars
        time.sleep(0.5)
    raise AssertionError(f"silver.bars has {len(bars)} final bars, not {expected}")


def test_bronze_holds_every_published_trade_once_with_its_values(
    stream_settings: Settings, stream_worker: WorkerFactory
) -> None:
    batches = make_batches(["AAPL", "MSFT", "BTC-USD"], 2, 500, 3, seed=1)
    batches.append(
        tick_pb2.TickBatch(
            symbol="NVDA",
            event_time_unix_nanos=[START_NS + 5],
            prices=[123.25],
            sizes=[0.5],
            trade_ids=["no-venue"],
        )
    )
    publish_batches(stream_settings, batches)
    worker = stream_worker.start()
    expected = trades_frame(batches)

    table = wait_for_rows(stream_settings, "bronze.ticks", len(expected), worker)
    time.sleep(2)  # a second commit would show up as extra rows
    table = lake(stream_settings).load_table("bronze.ticks").scan().to_arrow()

    assert table.num_rows == len(expected)
    actual = table.to_pandas().sort_values("trade_id").reset_index(drop=True)
    expected = expected.sort_values("trade_id").reset_index(drop=True)
    assert list(actual["trade_id"]) == list(expected["trade_id"])
    assert list(actual["symbol"]) == list(expected["symbol"])
    assert (actual["price"].to_numpy() == expected["price"].to_numpy()).all()
    assert (actual["size"].to_numpy() == expected["size"].to_numpy()).all()
    micros = actual["event_time"].dt.as_unit("us").astype("int64").to_numpy()
    assert (micros == expected["event_time_ns"].to_numpy() // 1000).all()
    venue = dict(zip(actual["trade_id"], actual["exchange"], strict=True))
    assert venue["AAPL-0"] == "XNAS"
    assert pd.isna(venue["no-venue"])
    # Every row names the Kafka record it came from; a record's rows share its symbol.
    positions = actual.groupby(["kafka_partition", "kafka_offset"])["symbol"].nunique()
    assert (positions == 1).all()
    assert len(positions) == len(batches)
    assert actual["ingest_time"].notna().all()
    assert worker.stop() == 0


def test_bars_match_a_pandas_reference_with_late_trades_amending_and_too_late_counted(
    stream_settings: Settings, stream_worker: WorkerFactory
) -> None:
    symbols = ["AAPL", "MSFT"]
    on_time = make_batches(symbols, 4, 200, 2, seed=2)
    # Minute 2 closed 10 s (grace) after 03:00; a trade for it at 04:00 is within the
    # 60 s retention: it amends the bar. One for minute 0 at 04:00 is too late.
    late = [
        tick_pb2.TickBatch(
            symbol="AAPL",
            event_time_unix_nanos=[START_NS + 2 * MINUTE_NS + 30_000_000_000],
            prices=[250.0],
            sizes=[7.0],
            trade_ids=["late-amends"],
        ),
        tick_pb2.TickBatch(
            symbol="AAPL",
            event_time_unix_nanos=[START_NS + 10_000_000_000],
            prices=[1.5],
            sizes=[3.0],
            trade_ids=["too-late"],
        ),
    ]
    publish_batches(stream_settings, on_time)
    publish_batches(stream_settings, late)
    publish_batches(stream_settings, closing_batches(symbols, START_NS + 20 * MINUTE_NS))

    worker = stream_worker.start()
    admitted = trades_frame([*on_time, late[0]])
    expected = reference_bars(admitted)
    actual = wait_for_bars(stream_settings, len(expected), worker)
    assert_bars_equal(actual, expected)

    amended = actual[(actual["symbol"] == "AAPL") & (actual["revision"] > 0)]
    assert list(amended["start_time"]) == [pd.Timestamp(START_NS + 2 * MINUTE_NS, tz="UTC")]
    assert amended["high"].iloc[0] == 250.0
    assert "too late" in worker.log.read_text()
    # Bronze keeps even the too-late trade: bars refuse it, the raw record does not.
    bronze = wait_for_rows(stream_settings, "bronze.ticks", len(admitted) + 3, worker)
    assert "too-late" in set(bronze["trade_id"].to_pylist())

    # The bars topic carries every closed bar and the amendment, as Bar messages.
    messages = [
        bar_pb2.Bar.FromString(value)
        for _, _, _, value in read_topic(
            stream_settings.bootstrap_servers, stream_settings.topics.bars, len(expected) + 1
        )
    ]
    assert len(messages) == len(expected) + 1
    assert sorted(m.revision for m in messages)[-1] == 1
    assert {m.source for m in messages} == {bar_pb2.BAR_SOURCE_TRADES}
    assert worker.stop() == 0


def test_worker_killed_at_random_moments_resumes_without_loss_or_duplicates(
    stream_settings: Settings, stream_worker: WorkerFactory
) -> None:
    symbols = ["AAPL", "MSFT", "NVDA", "SPY", "BTC-USD"]
    waves = 4
    batches = make_batches(symbols, 4 * waves, 250, 4, seed=3)
    # Wave by wave: publish, let a new worker take the partitions (the killed one's session
    # must expire first), SIGKILL it at a random moment of its processing: before, during or
    # after a commit (commits are 1 s apart).
    per_symbol = len(batches) // len(symbols)
    chooser = random.Random(4)
    resumed_at: list[str] = []
    for wave in range(waves):
        lo, hi = wave * per_symbol // waves, (wave + 1) * per_symbol // waves
        wave_batches = [
            batches[s * per_symbol + i] for i in range(lo, hi) for s in range(len(symbols))
        ]
        publish_batches(stream_settings, wave_batches)
        worker = stream_worker.start()
        wait_for_log(worker, "resumes at offset", timeout=60)
        time.sleep(chooser.uniform(0.5, 4.5))
        worker.kill()
        resumed_at += re.findall(
            r"bronze: partition \d+ resumes at offset (\d+)", worker.log.read_text()
        )
    # Later workers started where earlier ones had committed, not from scratch.
    assert any(int(offset) > 0 for offset in resumed_at)
    publish_batches(stream_settings, closing_batches(symbols, START_NS + 60 * MINUTE_NS))

    worker = stream_worker.start()
    trades = trades_frame(batches)
    bronze = wait_for_rows(stream_settings, "bronze.ticks", len(trades) + len(symbols), worker)
    expected = reference_bars(trades)
    bars = wait_for_bars(stream_settings, len(expected), worker)
    time.sleep(2)
    bronze = lake(stream_settings).load_table("bronze.ticks").scan().to_arrow()
    silver = lake(stream_settings).load_table("silver.bars").scan().to_arrow().to_pandas()

    assert bronze.num_rows == len(trades) + len(symbols)
    ids = bronze.select(["symbol", "trade_id"]).to_pandas()
    assert not ids.duplicated().any()
    assert not silver.duplicated(["symbol", "start_time", "revision"]).any()
    assert_bars_equal(bars, expected)
    assert "resumes at offset" in worker.log.read_text()
    assert worker.stop() == 0


@pytest.mark.parametrize("symbol", ["AAPL"])
def test_sigterm_commits_what_is_pending(
    stream_settings: Settings, stream_worker: WorkerFactory, symbol: str
) -> None:
    # A commit interval far beyond the test: only the shutdown hook can write the rows.
    settings = stream_settings.model_copy(
        update={"stream": stream_settings.stream.model_copy(update={"commit_interval_s": 3600.0})}
    )
    factory = WorkerFactory(settings)
    batches = make_batches([symbol], 1, 100, 2, seed=5)
    publish_batches(settings, batches)
    worker = factory.start()
    try:
        deadline = time.monotonic() + 30
        while "resumes at offset" not in worker.log.read_text():
            assert time.monotonic() < deadline, worker.log_tail()
            time.sleep(0.2)
        time.sleep(1.0)
        assert worker.stop() == 0, worker.log_tail()
    finally:
        if worker.process.poll() is None:
            worker.kill()
    table = lake(settings).load_table("bronze.ticks").scan().to_arrow()
    assert table.num_rows == 200


def test_a_group_offset_committed_past_the_lake_skips_nothing(
    stream_settings: Settings, stream_worker: WorkerFactory
) -> None:
    # Faust can commit offsets of events it dropped unprocessed (those fetched before a
    # rebalance); here the group's offsets are put past every record before the worker starts.
    batches = make_batches(["AAPL", "MSFT", "NVDA"], 1, 100, 2, seed=11)
    publish_batches(stream_settings, batches)
    topic = stream_settings.topics.ticks
    group = Consumer(
        {
            "bootstrap.servers": stream_settings.bootstrap_servers,
            "group.id": stream_settings.stream.app_id,
        }
    )
    ends = [
        TopicPartition(topic, p, group.get_watermark_offsets(TopicPartition(topic, p))[1])
        for p in range(PARTITIONS)
    ]
    assert sum(tp.offset for tp in ends) == len(batches)
    group.commit(offsets=ends, asynchronous=False)
    group.close()

    worker = stream_worker.start()
    bronze = wait_for_rows(stream_settings, "bronze.ticks", 600, worker)
    assert bronze.num_rows == 600
    assert "never reached the lake" not in worker.log.read_text()
    assert worker.stop() == 0


def test_a_drained_backlog_is_visible_without_waiting_for_the_commit_interval(
    stream_settings: Settings,
) -> None:
    # Neither the interval nor the size limit can commit during the test: only the end of
    # the catch-up can, with the worker still running.
    stream = stream_settings.stream.model_copy(
        update={"commit_interval_s": 3600.0, "commit_max_records": 100_000, "take_max_records": 5}
    )
    settings = stream_settings.model_copy(update={"stream": stream})
    factory = WorkerFactory(settings)
    batches = make_batches(["AAPL", "MSFT", "NVDA"], 2, 50, 10, seed=9)
    publish_batches(settings, batches)
    worker = factory.start()
    try:
        table = wait_for_rows(settings, "bronze.ticks", 60 * 50, worker, timeout=45)
        assert table.num_rows == 60 * 50
        assert worker.process.poll() is None
    finally:
        worker.kill()


def test_features_and_alerts_follow_the_bars_and_imported_bars_land_in_silver(
    stream_settings: Settings, stream_worker: WorkerFactory
) -> None:
    minutes = 80
    batches = make_batches(["AAPL"], minutes, 100, 1, seed=6)
    jump = 70  # minute whose trades all print 20% higher: a price move no quiet window hides
    for batch in batches[jump:]:
        prices = [p * 1.2 for p in batch.prices]
        del batch.prices[:]
        batch.prices.extend(prices)
    imported = [
        bar_pb2.Bar(
            symbol="MSFT",
            interval=bar_pb2.INTERVAL_1D,
            open=10.0 + d,
            high=11.0 + d,
            low=9.0 + d,
            close=10.5 + d,
            volume=1000.0,
            vwap=10.2 + d,
            source=bar_pb2.BAR_SOURCE_SYNTHETIC,
            adjusted=True,
        )
        for d in range(30)
    ]
    for day, bar in enumerate(imported):
        bar.start_time.FromNanoseconds(START_NS - (30 - day) * 86_400 * 1_000_000_000)
    publish_batches(stream_settings, [*batches, *closing_batches(["AAPL"], START_NS + 10**13)])
    producer = Producer({"bootstrap.servers": stream_settings.bootstrap_servers, "acks": "all"})
    for bar in imported:
        producer.produce(stream_settings.topics.bars, bar.SerializeToString(), b"MSFT")
    assert producer.flush(30) == 0

    worker = stream_worker.start()
    features = wait_for_rows(stream_settings, "gold.features", minutes + len(imported), worker)
    silver = wait_for_rows(stream_settings, "silver.bars", minutes + len(imported), worker)
    alerts = wait_for_rows(stream_settings, "gold.alerts", 1, worker)

    synthetic = silver.to_pandas().query("source == 'synthetic'")
    assert len(synthetic) == len(imported)
    assert set(synthetic["interval"]) == {"1d"}
    assert synthetic["adjusted"].all()

    # Indicators of the streamed bars equal pandas' rolling/EWM definitions on the closes.
    bars = final_bars(silver).sort_values("start_time")
    aapl = features.to_pandas().query("symbol == 'AAPL'").sort_values("start_time")
    assert list(aapl["start_time"]) == list(bars["start_time"])
    closes = bars["close"].reset_index(drop=True)
    sma = closes.rolling(20).mean().to_numpy()
    np.testing.assert_allclose(aapl["sma_20"].to_numpy()[19:], sma[19:], rtol=1e-9)
    assert aapl["sma_20"].iloc[:19].isna().all()
    returns = closes.pct_change().to_numpy()
    np.testing.assert_allclose(aapl["return"].to_numpy()[1:], returns[1:], rtol=1e-9)
    msft = features.to_pandas().query("symbol == 'MSFT' and interval == '1d'")
    assert len(msft) == len(imported)

    # The jump raises one price-move alert on its bar, in the table and on the topic.
    moves = alerts.to_pandas().query("kind == 'price_move' and symbol == 'AAPL'")
    assert list(moves["event_time"]) == [pd.Timestamp(START_NS + jump * MINUTE_NS, tz="UTC")]
    assert moves["value"].iloc[0] > 0.1
    on_topic = [
        alert_pb2.Alert.FromString(value)
        for _, _, _, value in read_topic(
            stream_settings.bootstrap_servers, stream_settings.topics.alerts, len(alerts)
        )
    ]
    assert {a.alert_id for a in on_topic} == set(alerts["alert_id"].to_pylist())
    assert worker.stop() == 0


def test_malformed_records_are_skipped_and_logged_not_fatal(
    stream_settings: Settings, stream_worker: WorkerFactory
) -> None:
    good = make_batches(["AAPL"], 1, 100, 2, seed=8)
    ragged = tick_pb2.TickBatch(
        symbol="AAPL", event_time_unix_nanos=[START_NS], prices=[1.0, 2.0], trade_ids=["r"]
    )
    producer = Producer({"bootstrap.servers": stream_settings.bootstrap_servers, "acks": "all"})
    producer.produce(stream_settings.topics.ticks, good[0].SerializeToString(), b"AAPL")
    producer.produce(stream_settings.topics.ticks, b"\xff\xff not protobuf", b"AAPL")
    producer.produce(stream_settings.topics.ticks, ragged.SerializeToString(), b"AAPL")
    producer.produce(stream_settings.topics.ticks, good[1].SerializeToString(), b"AAPL")
    producer.produce(stream_settings.topics.bars, b"\x08\xff", b"AAPL")
    assert producer.flush(30) == 0

    worker = stream_worker.start()
    bronze = wait_for_rows(stream_settings, "bronze.ticks", 200, worker)
    time.sleep(2)
    assert worker.process.poll() is None, worker.log_tail()
    assert bronze.num_rows == 200
    log = worker.log.read_text()
    assert "skipping malformed record" in log
    assert "ragged columns" in log
    assert f"{stream_settings.topics.bars}[" in log
    assert worker.stop() == 0
