"""`financelake up --detach`, `status`, `down` as a user runs them, against the test broker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from financelake.gen.common.v1 import bar_pb2, tick_pb2
from financelake.services.processes import pid_alive
from financelake.services.settings import Settings
from financelake.services.supervisor import GATEWAY, SERVERS, STREAM_WORKER
from financelake.stream.lake.catalog import open_catalog
from tests.fixtures.ingestion import read_topic
from tests.fixtures.stack import CLI, run_cli

pytestmark = pytest.mark.e2e


def test_up_status_down_leaves_nothing_running(cli_env: dict[str, str]) -> None:
    started = run_cli(cli_env, "up", "--detach")
    assert started.returncode == 0, started.stdout + started.stderr

    shown = run_cli(cli_env, "status")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    for name in SERVERS:
        assert name in shown.stdout
    assert "unhealthy" not in shown.stdout
    # + the broker, Envoy and the worker
    assert shown.stdout.count("healthy") == len(SERVERS) + 3

    rows = json.loads(run_cli(cli_env, "status", "--json").stdout)
    components = (*SERVERS, GATEWAY, STREAM_WORKER)
    pids = {row["name"]: row["pid"] for row in rows if row["name"] in components}
    assert set(pids) == set(components)
    assert all(isinstance(pid, int) and pid_alive(pid) for pid in pids.values()), pids
    assert all(row["healthy"] for row in rows), rows
    # No model is loaded yet: the prediction server says so instead of pretending.
    not_ready = {row["name"]: row["not_ready"] for row in rows if row["name"] in SERVERS}
    assert not_ready == {
        "ingestion": [],
        "marketdata": [],
        "stream": [],
        "prediction": [
            "financelake.prediction.v1.PredictionService",
            "inference.GRPCInferenceService",
        ],
    }
    assert "not ready yet: PredictionService, GRPCInferenceService" in shown.stdout

    stopped = run_cli(cli_env, "down")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert [name for name, pid in pids.items() if pid_alive(pid)] == []
    assert not list((Path(cli_env["FINANCELAKE_HOME"]) / "run").glob("*.pid"))

    after = run_cli(cli_env, "status")
    assert after.returncode == 1


def _start_foreground(env: Mapping[str, str]) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [CLI, "up"], env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while run_cli(env, "status").returncode != 0:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the stack did not become healthy"
        time.sleep(0.2)
    return process


def _running_pids(env: Mapping[str, str]) -> list[int]:
    return [row["pid"] for row in json.loads(run_cli(env, "status", "--json").stdout) if row["pid"]]


@pytest.mark.parametrize(
    ("stop", "exit_code"),
    [("ctrl-c", 0), ("down-from-another-terminal", 0), ("a-server-crashes", 1)],
)
def test_foreground_up_stops_everything(cli_env: dict[str, str], stop: str, exit_code: int) -> None:
    foreground = _start_foreground(cli_env)
    pids = _running_pids(cli_env)
    assert len(pids) == len(SERVERS) + 2  # Envoy and the worker; the broker is external here

    if stop == "ctrl-c":
        foreground.send_signal(signal.SIGINT)
    elif stop == "a-server-crashes":
        os.kill(pids[0], signal.SIGKILL)
    else:
        assert run_cli(cli_env, "down").returncode == 0
    _, stderr = foreground.communicate(timeout=60)

    assert foreground.returncode == exit_code, stderr
    assert "Stopped:" in stderr
    assert [pid for pid in pids if pid_alive(pid)] == []


def test_up_loads_the_demo_market_and_keeps_it_live(
    cli_env: dict[str, str], kafka_bootstrap: str
) -> None:
    env = cli_env | {
        "FINANCELAKE_DEMO__ENABLED": "true",
        "FINANCELAKE_DEMO__HISTORY_DAYS": "0.05",  # 72 minutes of 1m bars
        "FINANCELAKE_DEMO__TICK_INTERVAL_S": "0.5",
    }
    started = run_cli(env, "up", "--detach")
    assert started.returncode == 0, started.stdout + started.stderr
    rows = {row["name"]: row for row in json.loads(run_cli(env, "status", "--json").stdout)}
    assert rows["demo-feed"]["healthy"], rows["demo-feed"]

    # History as 1m bars of every demo symbol (crypto trades around the clock), then trades.
    bars = read_topic(kafka_bootstrap, env["FINANCELAKE_TOPICS__BARS"], expected=100, timeout=60)
    history = [
        bar
        for bar in (bar_pb2.Bar.FromString(value) for *_, value in bars)
        if bar.source == bar_pb2.BAR_SOURCE_SYNTHETIC
    ]
    symbols = {bar.symbol for bar in history}
    assert {"BTC-USD", "ETH-USD"} <= symbols
    # Several records: in a quiet minute one symbol may trade in a tick interval, not the other.
    ticks = read_topic(kafka_bootstrap, env["FINANCELAKE_TOPICS__TICKS"], expected=24, timeout=60)
    live = [tick_pb2.TickBatch.FromString(value) for *_, value in ticks]
    assert {batch.symbol for batch in live} >= {"BTC-USD", "ETH-USD"}
    newest = max(max(batch.event_time_unix_nanos) for batch in live)
    assert time.time_ns() - newest < 30e9, "the live trades are not live"

    # The worker lands the history in silver.bars and the live trades in bronze.ticks.
    catalog = open_catalog(Settings(home=Path(env["FINANCELAKE_HOME"])))
    deadline = time.monotonic() + 60
    while True:
        silver = catalog.load_table("silver.bars").scan(row_filter="source == 'synthetic'")
        bronze = catalog.load_table("bronze.ticks").scan()
        if silver.count() >= len(history) and bronze.count() > 0:
            break
        assert time.monotonic() < deadline, "the stream worker did not fill the lake"
        time.sleep(1)

    assert run_cli(env, "down").returncode == 0
    state = json.loads((Path(env["FINANCELAKE_HOME"]) / "demo" / "feed.json").read_text())
    assert state["published_until_ns"] >= newest


def test_ingest_commands_import_through_the_running_service(
    cli_env: dict[str, str], kafka_bootstrap: str, tmp_path: Path
) -> None:
    assert run_cli(cli_env, "up", "--detach").returncode == 0
    bars_topic = cli_env["FINANCELAKE_TOPICS__BARS"]

    simulated = run_cli(cli_env, "ingest", "synthetic", "AAPL", "--interval", "1h", "--days", "7")
    assert simulated.returncode == 0, simulated.stderr
    assert "Imported" in simulated.stderr

    csv_file = tmp_path / "bars.csv"
    csv_file.write_text(
        "Date,Open,High,Low,Close,Volume\n"
        "2025-03-03,100,101,99,100.5,1000\n"
        "2025-03-04,100.5,100,99,99.5,10\n"  # open above the high: refused, line 3
    )
    imported = run_cli(
        cli_env, "ingest", "csv", str(csv_file), "--symbol", "ACME", "--map", "Date=time"
    )
    assert imported.returncode == 0, imported.stderr
    assert "Imported 1 of 2 rows" in imported.stderr
    assert "1 refused row(s)" in imported.stderr

    bars = [bar_pb2.Bar.FromString(v) for *_, v in read_topic(kafka_bootstrap, bars_topic, 2)]
    assert "ACME" in {bar.symbol for bar in bars}
    assert "AAPL" in {bar.symbol for bar in bars}

    failed = run_cli(cli_env, "ingest", "csv", str(tmp_path / "bars.csv"), "--server-path")
    assert failed.returncode == 1
    assert "FAILED_PRECONDITION" in failed.stderr
