"""Kafka over TLS, as Amazon MSK's TLS-only listener (9094) needs: every client FinanceLake
builds, on a real broker.

A private broker (`LocalBroker`, its own home and free ports) gets a second listener,
`SSL://127.0.0.1:<port>`, with a certificate for localhost/127.0.0.1 from a throwaway CA made
here with the openssl CLI (the `cryptography` package is not among the project's
dependencies). The client settings are read from `FINANCELAKE_KAFKA_BOOTSTRAP` and
`FINANCELAKE_KAFKA__*` as a process reads them. Over TLS: topics are created, the ingestion
server publishes a batch that a TLS consumer reads back byte for byte, KafkaOffsets reads the
end offsets, `financelake status`'s probe sees the broker, and a Faust worker writes
bronze.ticks. A PLAINTEXT client, or one trusting only the system store, is refused quickly
with an error that says why.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from financelake.gen.ingestion.v1 import ingestion_service_pb2 as pb
from financelake.gen.ingestion.v1 import ingestion_service_pb2_grpc as pb_grpc
from financelake.services.feed import TopicFeed
from financelake.services.ingestion.publisher import producer_config
from financelake.services.ingestion.server import build_server
from financelake.services.kafka_security import librdkafka_options
from financelake.services.settings import KafkaClientSettings, Settings
from financelake.services.stream.kafka_status import KafkaOffsets
from financelake.stream.broker import LocalBroker, ping, round_trip, server_properties
from financelake.stream.kafka_dist import provision
from financelake.stream.topics import TopicError, ensure_topics, topic_names
from tests.builders import tick_batch
from tests.fixtures.grpc import StartServer, stub_for
from tests.fixtures.ingestion import wait_serving
from tests.fixtures.kafka import free_port, local_broker_settings
from tests.fixtures.stream import WorkerFactory, wait_for_rows
from tests.integration.test_stream_worker import make_batches, trades_frame

pytestmark = pytest.mark.integration

PARTITIONS = 3
# Each refused client gives up within its own timeout; three of them, plus slack for a busy
# machine, bound the whole refusal: an error, never a hang.
REFUSAL_TIMEOUT_S = 3.0
REFUSAL_BOUND_S = 20.0
PLAINTEXT = KafkaClientSettings()


@dataclass(frozen=True)
class TlsKafka:
    """The private broker: `settings` are its clients' (TLS listener, test CA)."""

    settings: Settings
    plain_address: str
    """The same broker's PLAINTEXT listener (its own readiness probe uses it)."""


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(directory: Path) -> tuple[Path, Path]:
    """A throwaway CA and a broker certificate it signed for localhost and 127.0.0.1:
    (the CA certificate, the broker's PEM keystore: unencrypted PKCS#8 key + certificate)."""
    directory.mkdir(parents=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        *["req", "-x509", "-new", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2"],
        *["-subj", "/CN=FinanceLake TLS test CA"],
        *["-addext", "basicConstraints=critical,CA:TRUE"],
        *["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        cwd=directory,
    )
    _openssl(
        *["req", "-new", *ec, "-keyout", "broker.key", "-out", "broker.csr"],
        *["-subj", "/CN=localhost"],
        cwd=directory,
    )
    (directory / "broker.ext").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid\n"
    )
    _openssl(
        *["x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key"],
        *["-set_serial", "2", "-days", "2", "-extfile", "broker.ext", "-out", "broker.crt"],
        cwd=directory,
    )
    keystore = directory / "broker-keystore.pem"
    keystore.write_text(
        (directory / "broker.key").read_text() + (directory / "broker.crt").read_text()
    )
    return directory / "ca.pem", keystore


def with_tls_listener(properties: dict[str, str], address: str, keystore: Path) -> dict[str, str]:
    """`properties` plus a client listener `SSL://address` serving `keystore`; inter-broker
    and controller traffic stay on the PLAINTEXT listeners."""
    listener = f"SSL://{address}"
    return {
        **properties,
        "listeners": f"{properties['listeners']},{listener}",
        "advertised.listeners": f"{properties['advertised.listeners']},{listener}",
        "listener.security.protocol.map": f"{properties['listener.security.protocol.map']},SSL:SSL",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(keystore),
    }


@pytest.fixture(scope="module")
def tls_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsKafka]:
    root = tmp_path_factory.mktemp("kafka-tls")
    ca_file, keystore = make_certificates(root / "tls")
    local = local_broker_settings(root / "home", Settings()).model_copy(update={"kafka": PLAINTEXT})
    tls_address = f"{local.broker.host}:{free_port(local.broker.host)}"
    provision(local)
    broker = LocalBroker(
        local, properties=with_tls_listener(server_properties(local), tls_address, keystore)
    )
    try:
        broker.start()
        with pytest.MonkeyPatch.context() as env:
            env.setenv("FINANCELAKE_KAFKA_BOOTSTRAP", tls_address)
            env.setenv("FINANCELAKE_KAFKA__SECURITY_PROTOCOL", "SSL")
            env.setenv("FINANCELAKE_KAFKA__SSL_CA_FILE", str(ca_file))
            settings = Settings()
        yield TlsKafka(settings, local.bootstrap_servers)
    finally:
        broker.stop()


def fresh(settings: Settings, home: Path) -> Settings:
    """`settings` with new product topic names, a new stream app id and its own home."""
    suffix = uuid.uuid4().hex[:8]
    topics = settings.topics.model_copy(
        update={kind: f"tls-{kind}-{suffix}" for kind in ("ticks", "bars", "alerts", "actions")}
        | {"partitions": PARTITIONS}
    )
    stream = settings.stream.model_copy(
        update={"app_id": f"tls-stream-{suffix}", "web_enabled": False, "commit_interval_s": 1.0}
    )
    return settings.model_copy(update={"home": home, "topics": topics, "stream": stream})


@pytest.fixture
def tls_settings(tls_kafka: TlsKafka, grpc_settings: Settings) -> Settings:
    """TLS clients on fresh topics (created over TLS), servers on port 0, a lake in tmp_path."""
    settings = fresh(grpc_settings, grpc_settings.home).model_copy(
        update={
            "kafka_bootstrap": tls_kafka.settings.kafka_bootstrap,
            "kafka": tls_kafka.settings.kafka,
        }
    )
    ensure_topics(settings)
    return settings


def read_back(settings: Settings, topic: str, expected: int) -> list[tuple[bytes, bytes]]:
    """(key, value) of the first `expected` records of `topic`, read over `settings.kafka`."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": f"tls-read-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            **librdkafka_options(settings.kafka),
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    records: list[tuple[bytes, bytes]] = []
    deadline = time.monotonic() + 20
    try:
        while len(records) < expected and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                records.append((message.key(), message.value()))  # type: ignore[arg-type]
    finally:
        consumer.close()
    return records


def plain_partitions(address: str, names: list[str], timeout: float = 10) -> dict[str, int]:
    """Partition counts of `names` on the PLAINTEXT listener, once its metadata has them all
    (a new topic reaches the broker's metadata cache a moment after its creation)."""
    admin = AdminClient({"bootstrap.servers": address})
    deadline = time.monotonic() + timeout
    while True:
        topics = admin.list_topics(timeout=timeout).topics
        if all(name in topics for name in names) or time.monotonic() > deadline:
            return {name: len(topics[name].partitions) for name in names if name in topics}
        time.sleep(0.1)


def test_topics_are_created_over_tls(tls_kafka: TlsKafka, tmp_path: Path) -> None:
    settings = fresh(tls_kafka.settings, tmp_path)

    created = ensure_topics(settings, timeout=15)
    again = ensure_topics(settings, timeout=15)

    assert [(s.name, s.partitions, s.created) for s in created] == [
        (name, PARTITIONS, True) for name in topic_names(settings)
    ]
    assert not any(s.created for s in again)
    # The broker's own listener sees the same topics: they are real, not a client's view.
    assert plain_partitions(tls_kafka.plain_address, topic_names(settings)) == dict.fromkeys(
        topic_names(settings), PARTITIONS
    )


def test_status_and_readiness_probe_reach_the_broker_over_tls(tls_kafka: TlsKafka) -> None:
    settings = tls_kafka.settings

    status = LocalBroker(settings).status(timeout=10)  # what `financelake status` shows

    assert (status.address, status.external, status.healthy) == (
        settings.bootstrap_servers,
        True,
        True,
    ), status.detail
    round_trip(settings.bootstrap_servers, settings.kafka, timeout=15)


async def test_a_published_batch_is_read_back_byte_for_byte_over_tls(
    grpc_server: StartServer, tls_settings: Settings
) -> None:
    ticks = tls_settings.topics.ticks
    batch = tick_batch("AAPL", prices=(190.5, 190.6, 190.55), exchanges=("XNAS",) * 3)
    # The servers' aiokafka consumer (WatchAlerts, WatchBars) on the same topic.
    feed: TopicFeed[bytes] = TopicFeed(
        tls_settings.bootstrap_servers, ticks, bytes, kafka=tls_settings.kafka
    )
    running = await grpc_server(lambda _, health: build_server(tls_settings, health))
    await wait_serving(running.channel)  # the ingestion producer connected over TLS
    try:
        async with feed.subscribe() as subscription:
            response = await stub_for(pb_grpc.IngestionServiceStub, running.channel).PublishTicks(
                pb.PublishTicksRequest(batches=[batch]), timeout=10
            )
            delivery = await asyncio.wait_for(anext(subscription), timeout=15)
    finally:
        await feed.stop()

    assert response.accepted_batches == 1
    assert delivery.item == batch.SerializeToString()
    assert read_back(tls_settings, ticks, expected=1) == [(b"AAPL", batch.SerializeToString())]
    (written,) = response.offsets
    offsets = await KafkaOffsets(tls_settings.bootstrap_servers, kafka=tls_settings.kafka).read(
        [ticks], tls_settings.stream.app_id
    )
    ends = {o.partition: o.end_offset for o in offsets}
    assert ends == {p: int(p == written.partition) for p in range(PARTITIONS)}


@pytest.mark.parametrize(
    ("kafka", "librdkafka_says", "aiokafka_says"),
    [
        # The TLS listener drops a client that does not start a handshake.
        (PLAINTEXT, "over PLAINTEXT", "closed"),
        # MSK's certificates chain to public CAs; the test CA is in no system store.
        (
            KafkaClientSettings(security_protocol="SSL"),
            "certificate verify failed",
            "CERTIFICATE_VERIFY_FAILED",
        ),
    ],
    ids=["plaintext", "system-trust-store"],
)
async def test_a_client_the_tls_listener_cannot_trust_is_refused_quickly(
    tls_kafka: TlsKafka,
    kafka: KafkaClientSettings,
    librdkafka_says: str,
    aiokafka_says: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = tls_kafka.settings.model_copy(update={"kafka": kafka})
    address = settings.bootstrap_servers

    started = time.monotonic()
    problem = await asyncio.to_thread(ping, address, kafka, REFUSAL_TIMEOUT_S)
    with pytest.raises(TopicError, match=f"cannot list topics on {address} over "):
        await asyncio.to_thread(ensure_topics, settings, timeout=REFUSAL_TIMEOUT_S)
    # The ingestion producer: aiokafka gives up bootstrapping and logs why.
    producer = AIOKafkaProducer(**producer_config(settings))
    try:
        with caplog.at_level(logging.ERROR, "aiokafka"), pytest.raises(KafkaConnectionError):
            await asyncio.wait_for(producer.start(), timeout=2 * REFUSAL_TIMEOUT_S)
    finally:
        await producer.stop()
    elapsed = time.monotonic() - started

    assert problem is not None
    assert problem.startswith(f"no answer from {address} over ")
    assert librdkafka_says in problem
    assert aiokafka_says in caplog.text
    assert elapsed < REFUSAL_BOUND_S


def test_the_stream_worker_writes_bronze_over_tls(tls_settings: Settings) -> None:
    batches = make_batches(["AAPL", "BTC-USD"], 1, 50, 2, seed=11)
    producer = Producer(
        {
            "bootstrap.servers": tls_settings.bootstrap_servers,
            "acks": "all",
            **librdkafka_options(tls_settings.kafka),
        }
    )
    for batch in batches:
        producer.produce(
            tls_settings.topics.ticks, batch.SerializeToString(), batch.symbol.encode()
        )
    assert producer.flush(30) == 0
    workers = WorkerFactory(tls_settings)  # the child reads the TLS settings from its env
    worker = workers.start()
    try:
        table = wait_for_rows(tls_settings, "bronze.ticks", len(trades_frame(batches)), worker)
        assert sorted(table.column("trade_id").to_pylist()) == sorted(
            trade_id for batch in batches for trade_id in batch.trade_ids
        )
        assert worker.stop() == 0, worker.log_tail()
    finally:
        if worker.process.poll() is None:
            worker.kill()
