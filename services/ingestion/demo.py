"""The demo market feed `financelake up` runs: `python -m financelake.services.ingestion.demo`.

A client of IngestionService like any other. It first imports the synthetic 1-minute history
of the demo symbols up to now (ImportHistory), then publishes their live trades every
`tick_interval_s` through one IngestTicks stream until SIGTERM. Once the history is in, it also
trains the first models when none is registered (`models.bootstrap`), so the prediction server
has something to serve. The simulator is
deterministic and split-invariant, so the live trades continue the history exactly; the
time published up to is kept in `home/demo/feed.json`, and the next start imports history
from there, never twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc

from financelake.gen.common.v1 import bar_pb2
from financelake.gen.ingestion.v1 import import_pb2
from financelake.gen.ingestion.v1 import ingestion_service_pb2 as pb
from financelake.gen.ingestion.v1 import ingestion_service_pb2_grpc as pb_grpc
from financelake.models.bootstrap import train_first_models
from financelake.observability.tracing import client_interceptors, configure_tracing
from financelake.services.ingestion.convert import tick_batch, timestamp
from financelake.services.ingestion.sources.synthetic import TradeTrickle
from financelake.services.ingestion.sources.synthetic_model import SyntheticOptions
from financelake.services.server.logs import configure_logging
from financelake.services.settings import Settings

logger = logging.getLogger(__name__)

_RETRY_DELAY_S = 2.0


@dataclass(frozen=True)
class Market:
    """Demo symbols that share a trading calendar."""

    calendar: str
    symbols: tuple[str, ...]


def markets(settings: Settings) -> list[Market]:
    """The demo symbols grouped by calendar (equities on XNYS, crypto around the clock)."""
    demo = settings.demo
    found = [Market("XNYS", tuple(demo.equities)), Market("24x7", tuple(demo.crypto))]
    return [market for market in found if market.symbols]


def _options(settings: Settings, calendar: str) -> SyntheticOptions:
    return SyntheticOptions.with_defaults(seed=settings.demo.seed, calendar=calendar)


def _state_file(settings: Settings) -> Path:
    return settings.home / "demo" / "feed.json"


def _published_until(settings: Settings) -> int | None:
    try:
        return int(json.loads(_state_file(settings).read_text())["published_until_ns"])
    except (OSError, ValueError, KeyError):
        return None


def _remember(settings: Settings, published_until_ns: int) -> None:
    path = _state_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"published_until_ns": published_until_ns}))


async def import_history(
    stub: pb_grpc.IngestionServiceStub, settings: Settings, start_ns: int, end_ns: int
) -> int:
    """Import the demo symbols' 1-minute bars for [start, end); returns the bars published."""
    published = 0
    for market in markets(settings):
        request = pb.ImportHistoryRequest(
            source=import_pb2.IMPORT_SOURCE_SYNTHETIC,
            symbols=market.symbols,
            interval=bar_pb2.INTERVAL_1M,
            start_time=timestamp(start_ns),
            end_time=timestamp(end_ns),
            synthetic=import_pb2.SyntheticOptions(
                seed=settings.demo.seed, calendar=market.calendar
            ),
        )
        async for progress in stub.ImportHistory(request):
            if progress.state == import_pb2.IMPORT_STATE_FAILED:
                raise RuntimeError(f"demo history import failed: {progress.message}")
            if progress.state == import_pb2.IMPORT_STATE_DONE:
                published += progress.rows_published
    return published


class LiveFeed:
    """Trades of every demo market from `start_ns` on, one request per tick."""

    def __init__(self, settings: Settings, start_ns: int) -> None:
        self._interval = settings.demo.tick_interval_s
        self._trickles = [
            TradeTrickle(market.symbols, _options(settings, market.calendar), start_ns)
            for market in markets(settings)
        ]
        self.published_until_ns = start_ns

    async def requests(self, stop: asyncio.Event) -> AsyncIterator[pb.IngestTicksRequest]:
        """The IngestTicks stream: yields each tick's trades until `stop` is set."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._interval)
            now = time.time_ns()
            batches = [tick_batch(t) for trickle in self._trickles for t in trickle.advance(now)]
            if batches:
                yield pb.IngestTicksRequest(batches=batches)
            self.published_until_ns = now


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Import history, then feed live trades until `stop`; retries while ingestion is away."""
    address = f"{settings.servers.host}:{settings.servers.ingestion_port}"
    interceptors = client_interceptors(settings.tracing)
    async with grpc.aio.insecure_channel(address, interceptors=interceptors) as channel:
        stub = pb_grpc.IngestionServiceStub(channel)  # type: ignore[no-untyped-call]  # grpcio stubs are untyped
        history_start = int(time.time_ns() - settings.demo.history_days * 86_400e9)
        first_models: asyncio.Task[object] | None = None
        try:
            while not stop.is_set():
                # History resumes where the previous run's live trades ended: never twice.
                start = _published_until(settings) or history_start
                now = time.time_ns()
                feed = LiveFeed(settings, now)
                try:
                    bars = await import_history(stub, settings, start, now)
                    logger.info("demo history imported: %d bars up to now", bars)
                    _remember(settings, now)
                    if first_models is None:
                        first_models = asyncio.create_task(train_first_models(settings, stop))
                    response = await stub.IngestTicks(feed.requests(stop))
                    logger.info("demo feed stopped after %d trades", response.accepted_trades)
                    return
                except grpc.aio.AioRpcError as exc:
                    logger.warning("ingestion unavailable (%s); retrying", exc.code().name)
                    await asyncio.sleep(_RETRY_DELAY_S)
                finally:
                    if feed.published_until_ns > now:
                        _remember(settings, feed.published_until_ns)
        finally:
            if first_models is not None:
                first_models.cancel()


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)
    configure_tracing(settings.tracing, "demo-feed")

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await run(settings, stop)

    asyncio.run(serve())


if __name__ == "__main__":
    main()
