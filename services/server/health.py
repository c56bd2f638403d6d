"""The health handle each server owns: grpc.health.v1 statuses that follow real readiness.

Semantics (what `Check` answers):

* `""` (the whole process): NOT_SERVING until the server has started and bound its port,
  SERVING while it runs, NOT_SERVING again from the moment a graceful stop begins. It is
  what `financelake status`, Kubernetes probes and Envoy ask.
* each registered service's full name: NOT_SERVING until that service's own dependencies
  are ready. Services registered with `ready_on_start=True` need nothing beyond the
  process and turn SERVING with `""`; the others (the prediction services, which need a
  loaded model) stay NOT_SERVING until their owner calls `set_serving(name)`.
* any other name: NOT_FOUND, as the protocol prescribes.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol

from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer

OVERALL = ""
_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class _HealthServicer(HealthServicer):  # type: ignore[misc]
    """The library servicer, except that nothing starts out SERVING."""

    def __init__(self) -> None:
        super().__init__()
        # The library seeds "" as SERVING at construction, before the server even has a
        # port; a health check must not claim readiness that does not exist yet. No
        # watcher can exist before the server starts, so the plain assignment is what
        # `set()` itself would do.
        self._server_status = {OVERALL: _NOT_SERVING}

    def declare(self, service: str) -> None:
        """Make `service` known (NOT_SERVING) before the server starts."""
        self._server_status.setdefault(service, _NOT_SERVING)


class Dependency(Protocol):
    """Something a service needs at run time (a Kafka producer, a model), started with the
    server and stopped after it drained; it reports its readiness through the health handle.
    """

    def start(self) -> Awaitable[None]:
        """Begin; must return promptly (connect in the background, retrying)."""
        ...

    def stop(self) -> Awaitable[None]:
        """Release everything; called after in-flight calls have drained."""
        ...


class ServerHealth:
    """Reports the health of one server process and the services it hosts, and runs the
    dependencies their readiness rests on."""

    def __init__(self) -> None:
        self._servicer = _HealthServicer()
        self._ready_on_start: dict[str, bool] = {}
        self._dependencies: list[Dependency] = []

    def add_dependency(self, dependency: Dependency) -> None:
        """Start `dependency` when the server starts and stop it after the server stopped."""
        self._dependencies.append(dependency)

    @property
    def servicer(self) -> HealthServicer:
        """The grpc.health.v1 servicer to register on the server."""
        return self._servicer

    @property
    def services(self) -> tuple[str, ...]:
        """Full names of the services whose health this handle reports."""
        return tuple(self._ready_on_start)

    def track(self, service: str, *, ready_on_start: bool) -> None:
        """Report health for `service`, NOT_SERVING until it is ready."""
        if not service:
            raise ValueError("a tracked service needs its full name; '' is the overall status")
        self._ready_on_start[service] = ready_on_start
        self._servicer.declare(service)

    async def set_serving(self, service: str = OVERALL) -> None:
        """Mark a tracked service (or the whole process, `""`) ready."""
        await self._servicer.set(self._known(service), _SERVING)

    async def set_not_serving(self, service: str = OVERALL) -> None:
        """Mark a tracked service (or the whole process, `""`) not ready."""
        await self._servicer.set(self._known(service), _NOT_SERVING)

    async def mark_started(self) -> None:
        """The server runs: dependencies start; `""` and every service ready on start
        become SERVING."""
        for dependency in self._dependencies:
            await dependency.start()
        for service, ready in self._ready_on_start.items():
            if ready:
                await self.set_serving(service)
        await self.set_serving(OVERALL)

    async def shutdown(self) -> None:
        """Everything NOT_SERVING for good: the server is draining before it stops."""
        await self._servicer.enter_graceful_shutdown()

    async def stop_dependencies(self) -> None:
        """Stop the dependencies, last started first (after the server has drained)."""
        for dependency in reversed(self._dependencies):
            await dependency.stop()

    def _known(self, service: str) -> str:
        # A typo would otherwise create a new entry and leave the real one unchanged.
        if service != OVERALL and service not in self._ready_on_start:
            raise KeyError(f"health is not tracked for service {service!r}")
        return service
