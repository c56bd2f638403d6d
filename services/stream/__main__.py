"""`python -m financelake.services.stream`: serve StreamService until SIGTERM."""

from __future__ import annotations

from financelake.services.server import run_process
from financelake.services.stream.server import build_server

if __name__ == "__main__":
    run_process("stream", build_server)
