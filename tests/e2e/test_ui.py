"""The UI in a real browser against the real stack: `financelake up --detach` with its demo
market behind Envoy, driven by `services/web/e2e/ui.e2e.mjs` (playwright-core and Debian's
Chromium, which `make test` installs).

The script opens Markets and finds the demo symbols, opens a symbol and sees candles and a
live bar update, switches the interval, starts a synthetic import and follows it to done,
opens the import's trace (tracing is on, into the Jaeger `up` starts) and sees the ingestion
server's and the stream worker's spans in it, sees an alert of the imported symbol arrive
live on the Alerts page, and opens Pipeline and Models. Screenshots of each page go to
`build/e2e-screenshots/`.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.kafka import free_port
from tests.fixtures.stack import run_cli

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "services" / "web" / "e2e" / "ui.e2e.mjs"
DIST = REPO / "services" / "web" / "dist"
SCREENSHOTS = REPO / "build" / "e2e-screenshots"
CHROMIUM = Path("/usr/bin/chromium")


def test_the_ui_shows_the_live_demo_market_imports_and_alerts(cli_env: dict[str, str]) -> None:
    assert (DIST / "index.html").exists(), "the UI is not built: `make web` builds it"
    assert CHROMIUM.exists(), "Chromium is missing: `make browser` installs it"
    env = cli_env | {
        "FINANCELAKE_DEMO__ENABLED": "true",
        "FINANCELAKE_DEMO__HISTORY_DAYS": "0.1",  # 144 minutes: a chart with some history
        "FINANCELAKE_DEMO__TICK_INTERVAL_S": "0.5",
        "FINANCELAKE_GATEWAY__UI_PATH": str(DIST),
        # Traced, into the Jaeger `financelake up` starts, so the UI can show a trace.
        "FINANCELAKE_TRACING__ENABLED": "true",
        "FINANCELAKE_TRACING__OTLP_ENDPOINT": f"http://127.0.0.1:{free_port('127.0.0.1')}",
        "FINANCELAKE_TRACING__JAEGER_QUERY_URL": f"http://127.0.0.1:{free_port('127.0.0.1')}",
        "FINANCELAKE_TRACING__EXPORT_DELAY_MS": "500",
    }
    started = run_cli(env, "up", "--detach")
    assert started.returncode == 0, started.stdout + started.stderr

    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    gateway = f"http://127.0.0.1:{env['FINANCELAKE_GATEWAY__PORT']}"
    browser = subprocess.run(
        ["node", str(SCRIPT), gateway, str(SCREENSHOTS)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert browser.returncode == 0, browser.stdout + browser.stderr
    shots = {path.stem for path in SCREENSHOTS.glob("*.png")}
    assert {"markets", "symbol", "import", "trace", "alerts", "pipeline", "models"} <= shots
