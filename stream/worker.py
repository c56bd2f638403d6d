"""`financelake stream worker` / `python -m financelake.stream`: run the stream app until
SIGTERM or SIGINT, committing what is pending before it exits."""

from __future__ import annotations

import faust

from financelake.services.server.logs import configure_logging
from financelake.services.settings import Settings
from financelake.stream.app import build_app


def run_worker(settings: Settings) -> None:
    """Build the app and run a Faust worker for it in this process (blocks)."""
    configure_logging(settings.log_level)
    stream_app = build_app(settings)
    worker = faust.Worker(
        stream_app.app,
        loglevel=settings.log_level,
        # Our JSON logging stays in charge; Faust's banner and stdout capture are not wanted
        # in a supervised process.
        override_logging=False,
        redirect_stdouts=False,
        quiet=True,
    )
    worker.execute_from_commandline()
