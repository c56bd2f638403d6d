"""`python -m financelake.services.marketdata`: serve MarketDataService until SIGTERM."""

from __future__ import annotations

from financelake.services.marketdata.server import build_server
from financelake.services.server import run_process

if __name__ == "__main__":
    run_process("marketdata", build_server)
