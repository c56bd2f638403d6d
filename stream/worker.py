"""`financelake stream worker` / `python -m financelake.stream`: run the stream app until
SIGTERM or SIGINT, committing what is pending before it exits.

Once the lake agents have committed on the way out, the process ends within the servers'
grace period even if Faust is still trying to reach Kafka (it retries its own offset commit
without a deadline while the broker is down): the lake holds every position the worker
needs, Kafka's group offsets are only where the next worker starts reading.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
from typing import Any

import faust

from financelake.observability.metrics import serve_metrics
from financelake.observability.tracing import configure_tracing
from financelake.services.server.logs import configure_logging
from financelake.services.settings import Settings
from financelake.stream.app import build_app

logger = logging.getLogger(__name__)


def run_worker(settings: Settings) -> None:
    """Build the app and run a Faust worker for it in this process (blocks)."""
    configure_logging(settings.log_level)
    if settings.metrics.enabled:
        serve_metrics(settings.metrics.host, settings.metrics.worker_port)
    configure_tracing(settings.tracing, "worker")
    app = build_app(settings)
    grace_s = settings.servers.grace_period_s

    async def exit_if_stuck(sender: Any, **kwargs: Any) -> None:
        def give_up() -> None:
            logger.warning(
                "Faust did not stop within %.0f s of the final commits; exiting", grace_s
            )
            logging.shutdown()
            os._exit(0)

        timer = threading.Timer(grace_s, give_up)
        timer.daemon = True
        timer.start()

    # Connected after the agents' drivers, so it runs once their final commits landed. mode
    # types receivers as a union mypy cannot match a coroutine function against.
    app.on_before_shutdown.connect(exit_if_stuck)  # type: ignore[arg-type]

    worker = faust.Worker(
        app,
        loglevel=settings.log_level,
        # Our JSON logging stays in charge; Faust's banner and stdout capture are not wanted
        # in a supervised process.
        override_logging=False,
        redirect_stdouts=False,
        quiet=True,
    )
    # What exists now (libraries, models, the app) lives as long as the process; frozen, it
    # is left out of every full collection, which otherwise scans it all (0.2 s each on the
    # event loop, bench-stream).
    gc.collect()
    gc.freeze()
    worker.execute_from_commandline()
