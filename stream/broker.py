"""A real local Apache Kafka (KRaft, one node), launched by us and proven ready.

`LocalBroker` formats storage once, writes `server.properties` and the log4j2 config, and runs
`kafka.Kafka` (from the release `kafka_dist.provision` resolved) as a `DetachedProcess`, so the
broker outlives the command that started it and is stopped by pid, never by name. Ready means a
produce + consume round trip succeeded. When `settings.kafka_bootstrap` names a broker, nothing
is provisioned or started and `LocalBroker` only reports on that broker, over the transport
`settings.kafka` says (TLS for Amazon MSK). The local broker listens PLAINTEXT.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

# NewTopic is documented here; the package re-exports it without listing it, hence the ignore.
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from financelake.services.kafka_security import describe, librdkafka_options
from financelake.services.processes import DetachedProcess, pid_alive
from financelake.services.settings import KafkaClientSettings, Settings
from financelake.stream.kafka_dist import BrokerError, KafkaDistribution, provision, require_java

logger = logging.getLogger(__name__)

DEFAULT_STOP_GRACE_S = 30.0
# Readiness is proven by a produce + consume round trip on this private one-partition topic,
# since auto-creation is off and the product topics may not exist yet.
PROBE_TOPIC = "financelake-readiness-probe"


class BrokerStartError(BrokerError):
    """The broker did not become ready; the message carries the tail of its log."""


@dataclass(frozen=True)
class BrokerStatus:
    """What is known about the broker clients would connect to."""

    address: str
    pid: int | None
    external: bool
    healthy: bool
    detail: str


# ---- readiness ----------------------------------------------------------------------------


def _client_config(
    bootstrap: str, kafka: KafkaClientSettings, timeout: float
) -> dict[str, str | int | float | bool]:
    return {
        "bootstrap.servers": bootstrap,
        "socket.timeout.ms": max(1000, int(timeout * 1000)),
        # Route librdkafka's own logging (connection refused while starting) through logging.
        "logger": logging.getLogger("financelake.stream.rdkafka"),  # type: ignore[dict-item]
        **librdkafka_options(kafka),
    }


def ping(bootstrap: str, kafka: KafkaClientSettings, timeout: float = 2.0) -> str | None:
    """None when the cluster answers a metadata request over `kafka`'s transport, else why
    not, naming the transport and librdkafka's first connection error (a failed TLS
    handshake says which certificate check failed)."""
    reported: list[KafkaError] = []
    config = _client_config(bootstrap, kafka, timeout)
    # The answer carries the first error; librdkafka's log would repeat it for every retry
    # (`LocalBroker.start` pings an external broker every second), so it stays quiet here.
    admin = AdminClient({**config, "log_level": 0, "error_cb": reported.append})  # type: ignore[dict-item]
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        admin.poll(0)  # serves error_cb
        # "1/1 brokers are down" only summarises; the connection errors say why.
        causes = [e.str() for e in reported if e.code() != KafkaError._ALL_BROKERS_DOWN]
        cause = f" ({causes[0]})" if causes else ""
        return f"no answer from {bootstrap} over {describe(kafka)}: {exc.args[0].str()}{cause}"
    if not metadata.brokers:
        return f"{bootstrap} answered without brokers"
    return None


def round_trip(bootstrap: str, kafka: KafkaClientSettings, timeout: float = 10.0) -> None:
    """Produce one record and consume it back; raises `KafkaException` if either fails."""
    config = _client_config(bootstrap, kafka, timeout)
    admin = AdminClient(config)
    if PROBE_TOPIC not in admin.list_topics(timeout=timeout).topics:
        futures = admin.create_topics(
            [NewTopic(PROBE_TOPIC, num_partitions=1, replication_factor=1)],
            request_timeout=timeout,
        )
        try:
            futures[PROBE_TOPIC].result(timeout)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    token = uuid.uuid4().bytes
    delivered: list[Message] = []
    failures: list[KafkaError] = []
    producer = Producer({**config, "acks": "all", "message.timeout.ms": int(timeout * 1000)})

    def on_delivery(error: KafkaError | None, message: Message) -> None:
        # Runs inside flush(); record rather than raise through librdkafka's callback.
        if error is not None:
            failures.append(error)
        else:
            delivered.append(message)

    producer.produce(PROBE_TOPIC, value=token, partition=0, on_delivery=on_delivery)
    producer.flush(timeout)
    if failures:
        raise KafkaException(failures[0])
    if not delivered:
        raise KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT, "probe record not acked"))
    offset = delivered[0].offset()
    consumer = Consumer(
        {**config, "group.id": "financelake-readiness-probe", "enable.auto.commit": False}
    )
    try:
        # assign (not subscribe): no group rebalance to wait for, we read the exact offset.
        consumer.assign([TopicPartition(PROBE_TOPIC, 0, offset if offset is not None else 0)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error() is not None:
                raise KafkaException(message.error())
            if message.value() == token:
                return
        raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "probe record not consumed"))
    finally:
        consumer.close()


def _port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


# ---- the broker ---------------------------------------------------------------------------


def _new_cluster_id() -> str:
    # Kafka's Uuid.randomUuid: url-safe base64 of 16 random bytes, never starting with "-"
    # (it would read as a command-line flag).
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


_LOG4J2 = """\
# Written by financelake.stream.broker. Console only: stdout is the broker's log file.
status = warn
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.console.ref = console
# The full config dump on every start would push the useful lines out of error tails.
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


def _kafka_root(settings: Settings) -> Path:
    return settings.home.expanduser().resolve() / "kafka"


def server_properties(settings: Settings) -> dict[str, str]:
    """The `server.properties` of the local broker: one PLAINTEXT listener for clients, one
    for the controller, storage under `settings.home / "kafka" / "data"`."""
    broker = settings.broker
    host = broker.host
    return {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{host}:{broker.controller_port}",
        "listeners": f"PLAINTEXT://{host}:{broker.port},CONTROLLER://{host}:{broker.controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{broker.port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(_kafka_root(settings) / "data"),
        # Topics are created explicitly with their configured shape (stream.topics).
        "auto.create.topics.enable": "false",
        "num.partitions": "1",
        # One node: internal topics cannot have more replicas than brokers.
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "min.insync.replicas": "1",
        "default.replication.factor": "1",
        # No reason to wait for more group members on a laptop; keeps tests fast.
        "group.initial.rebalance.delay.ms": "0",
    }


# The local broker's client listener is PLAINTEXT whatever `settings.kafka` says (settings
# refuse TLS without an external broker), so its own readiness probes always use PLAINTEXT.
_LOCAL_TRANSPORT = KafkaClientSettings()


class LocalBroker:
    """The single-node KRaft broker+controller under `settings.home / "kafka"`.

    `properties` replaces `server_properties(settings)` as the broker's configuration; tests
    derive it from that to add a listener (a TLS one). The settings' PLAINTEXT listener must
    stay: readiness is proven on it.
    """

    def __init__(self, settings: Settings, *, properties: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.properties = dict(server_properties(settings) if properties is None else properties)
        home = settings.home.expanduser().resolve()
        self.root = _kafka_root(settings)
        self.data_dir = self.root / "data"
        self.config_file = self.root / "server.properties"
        self.log4j_file = self.root / "log4j2.properties"
        self.cluster_id_file = self.root / "cluster.id"
        self.process = DetachedProcess(
            name="kafka",
            pid_file=home / "run" / "kafka.pid",
            log_file=home / "logs" / "kafka.log",
            marker=str(self.config_file),
        )

    @property
    def address(self) -> str:
        """Bootstrap address of the broker this object manages or reports on."""
        return self.settings.bootstrap_servers

    @property
    def external(self) -> bool:
        """True when `FINANCELAKE_KAFKA_BOOTSTRAP` names a broker we do not run."""
        return self.settings.uses_external_kafka

    @property
    def _transport(self) -> KafkaClientSettings:
        return self.settings.kafka if self.external else _LOCAL_TRANSPORT

    def status(self, timeout: float = 2.0) -> BrokerStatus:
        """Whether the broker runs (local) and answers a metadata request."""
        pid = None if self.external else self.process.pid()
        if not self.external and pid is None:
            return BrokerStatus(self.address, None, False, False, "not running")
        problem = ping(self.address, self._transport, timeout)
        detail = problem or ("external broker" if self.external else "serving")
        return BrokerStatus(self.address, pid, self.external, problem is None, detail)

    def start(self, timeout: float | None = None) -> BrokerStatus:
        """Start (if not running) and wait until a produce and a consume succeed."""
        timeout = self.settings.broker.start_timeout_s if timeout is None else timeout
        deadline = time.monotonic() + timeout
        if self.external:
            # Someone else's cluster: look, do not write (no probe topic there).
            logger.info("Using the external broker %s; nothing to start", self.address)
            while (problem := ping(self.address, self._transport)) is not None:
                if time.monotonic() >= deadline:
                    raise BrokerStartError(f"external broker not reachable: {problem}")
                time.sleep(1.0)
            return self.status()
        pid = self.process.pid()
        if pid is None:
            pid = self._launch()
        else:
            logger.info("Kafka already running (pid %d)", pid)
        started = time.monotonic()
        self._wait_ready(deadline, pid=pid)
        logger.info("Kafka ready at %s in %.1fs", self.address, time.monotonic() - started)
        return self.status()

    def stop(self, grace: float = DEFAULT_STOP_GRACE_S) -> int | None:
        """Stop the local broker by its pid file; returns the pid stopped, if any."""
        if self.external:
            logger.info("The external broker %s is not ours to stop", self.address)
            return None
        return self.process.stop(grace)

    def _launch(self) -> int:
        broker = self.settings.broker
        if _port_open(broker.host, broker.port) or _port_open(broker.host, broker.controller_port):
            raise BrokerStartError(
                f"{broker.host}:{broker.port} or :{broker.controller_port} is already in use by "
                "another process: stop it, choose FINANCELAKE_BROKER__PORT / "
                "FINANCELAKE_BROKER__CONTROLLER_PORT, or use it via FINANCELAKE_KAFKA_BOOTSTRAP"
            )
        dist = provision(self.settings)
        java = require_java()
        self._write_config()
        self._format_storage(java, dist)
        argv = [
            java,
            f"-Xmx{broker.heap}",
            f"-Xms{broker.heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.log4j_file}",
            "-cp",
            dist.classpath,
            "kafka.Kafka",
            str(self.config_file),
        ]
        logger.info("Starting Kafka %s on %s", dist.version, self.address)
        return self.process.spawn(argv, env=os.environ, cwd=self.root)

    def _write_config(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        lines = ["# Written by financelake.stream.broker from Settings on every start."]
        lines += [f"{key}={value}" for key, value in self.properties.items()]
        self.config_file.write_text("\n".join(lines) + "\n")
        self.log4j_file.write_text(_LOG4J2)

    def _format_storage(self, java: str, dist: KafkaDistribution) -> None:
        if (self.data_dir / "meta.properties").is_file():
            return  # formatted before: formatting again would fail or wipe the cluster id
        if not self.cluster_id_file.is_file():
            self.cluster_id_file.write_text(_new_cluster_id() + "\n")
        cluster_id = self.cluster_id_file.read_text().strip()
        logger.info("Formatting Kafka storage in %s (cluster id %s)", self.data_dir, cluster_id)
        command = [java, f"-Dlog4j2.configurationFile={self.log4j_file}", "-cp", dist.classpath]
        command += ["kafka.tools.StorageTool", "format", "-t", cluster_id]
        command += ["-c", str(self.config_file), "--ignore-formatted"]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            output = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
            raise BrokerStartError(f"Formatting Kafka storage failed:\n{output}")

    def _wait_ready(self, deadline: float, pid: int) -> None:
        broker = self.settings.broker
        last_error = "not reachable yet"
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                self.process.pid_file.unlink(missing_ok=True)
                raise BrokerStartError(
                    f"Kafka (pid {pid}) exited while starting; last lines of "
                    f"{self.process.log_file}:\n{self.process.log_tail()}"
                )
            # Wait for the port before using librdkafka, which would log every refused connect.
            if _port_open(broker.host, broker.port):
                try:
                    round_trip(
                        self.address,
                        self._transport,
                        timeout=max(1.0, min(10.0, deadline - time.monotonic())),
                    )
                    return
                except KafkaException as exc:
                    last_error = str(exc.args[0])
            time.sleep(0.2)
        raise BrokerStartError(
            f"Kafka at {self.address} was not ready in time ({last_error}); last lines of "
            f"{self.process.log_file}:\n{self.process.log_tail()}"
        )
