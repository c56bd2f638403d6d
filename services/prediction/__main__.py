"""`python -m financelake.services.prediction`: serve the prediction services until SIGTERM."""

from __future__ import annotations

from financelake.services.prediction.server import build_server
from financelake.services.server import run_process

if __name__ == "__main__":
    run_process("prediction", build_server)
