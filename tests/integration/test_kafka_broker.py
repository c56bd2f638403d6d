"""The local broker is a real Kafka: protobuf batches round-trip byte for byte, it stops clean."""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from financelake.gen.common.v1 import tick_pb2
from financelake.services.processes import pid_alive
from financelake.services.settings import Settings
from financelake.stream.broker import LocalBroker
from financelake.stream.kafka_dist import provision
from tests.builders import tick_batch
from tests.fixtures.kafka import local_broker_settings

pytestmark = pytest.mark.integration
logger = logging.getLogger(__name__)


def test_tick_batch_round_trips_identical_bytes(
    kafka_bootstrap: str, kafka_settings: Settings
) -> None:
    batch = tick_batch(
        prices=(189.5, 189.51, 189.49),
        exchanges=("XNAS", "XNYS", "XNAS"),
        trade_id_prefix=f"t-{uuid.uuid4()}-",
    )
    payload = batch.SerializeToString()
    topic = kafka_settings.topics.ticks
    delivered: list[Message] = []

    def on_delivery(error: KafkaError | None, message: Message) -> None:
        assert error is None, error
        delivered.append(message)

    producer = Producer(
        {"bootstrap.servers": kafka_bootstrap, "acks": "all", "enable.idempotence": True}
    )
    producer.produce(topic, key=batch.symbol.encode(), value=payload, on_delivery=on_delivery)
    assert producer.flush(10) == 0
    (record,) = delivered
    partition, offset = record.partition(), record.offset()
    assert partition is not None
    assert offset is not None

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": f"test-{uuid.uuid4()}",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, partition, offset)])
        received = None
        deadline = time.monotonic() + 15
        while received is None and time.monotonic() < deadline:
            received = consumer.poll(0.5)
        assert received is not None, "record not consumed within 15s"
        assert received.error() is None
    finally:
        consumer.close()

    assert received.key() == b"AAPL"
    assert received.value() == payload
    parsed = tick_pb2.TickBatch.FromString(received.value() or b"")
    assert parsed == batch
    assert list(parsed.prices) == [189.5, 189.51, 189.49]


def test_second_provision_is_fast() -> None:
    settings = Settings()
    provision(settings)  # resolves on a cold cache; instant when the session broker did it
    started = time.monotonic()
    dist = provision(settings)
    assert time.monotonic() - started < 0.5
    assert (dist.libs / f"kafka_{dist.scala_version}-{dist.version}.jar").is_file()


def test_stop_leaves_no_java_process(tmp_path: Path) -> None:
    broker = LocalBroker(local_broker_settings(tmp_path))
    started = time.monotonic()
    status = broker.start()
    startup = time.monotonic() - started
    pid = status.pid
    assert status.healthy, status.detail
    assert pid is not None
    assert "java" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    logger.info("local broker ready in %.1fs", startup)

    assert broker.stop() == pid
    assert not pid_alive(pid)
    assert not Path(f"/proc/{pid}").exists()
    assert not broker.process.pid_file.exists()
    assert not broker.status().healthy
