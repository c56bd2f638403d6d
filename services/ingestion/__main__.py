"""`python -m financelake.services.ingestion`: serve IngestionService until SIGTERM."""

from __future__ import annotations

from financelake.services.ingestion.server import build_server
from financelake.services.server import run_process

if __name__ == "__main__":
    run_process("ingestion", build_server)
