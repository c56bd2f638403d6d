"""`python -m financelake.stream`: the stream worker, as the supervisor starts it."""

from __future__ import annotations

from financelake.services.settings import Settings
from financelake.stream.worker import run_worker

if __name__ == "__main__":
    run_worker(Settings())
