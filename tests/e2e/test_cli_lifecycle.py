"""`financelake up --detach`, `status`, `down` as a user runs them, against the test broker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from financelake.services.processes import pid_alive
from financelake.services.settings import Settings
from financelake.services.supervisor import SERVERS
from tests.fixtures.kafka import free_port

pytestmark = pytest.mark.e2e

CLI = str(Path(sys.executable).with_name("financelake"))


def _run(
    env: Mapping[str, str], *args: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], env=dict(env), capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def cli_env(tmp_path: Path, kafka_bootstrap: str) -> Iterator[dict[str, str]]:
    """Environment for the CLI: the test broker, a private home, free server ports."""
    host = Settings().servers.host
    env = {key: value for key, value in os.environ.items() if not key.startswith("FINANCELAKE_")}
    env |= {
        "FINANCELAKE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "FINANCELAKE_HOME": str(tmp_path / "home"),
        "COLUMNS": "200",  # rich wraps tables to 80 columns when not on a terminal
    }
    for name in SERVERS:
        env[f"FINANCELAKE_SERVERS__{name.upper()}_PORT"] = str(free_port(host))
    yield env
    _run(env, "down")  # whatever happened in the test, leave no process behind


def test_up_status_down_leaves_nothing_running(cli_env: dict[str, str]) -> None:
    started = _run(cli_env, "up", "--detach")
    assert started.returncode == 0, started.stdout + started.stderr

    shown = _run(cli_env, "status")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    for name in SERVERS:
        assert name in shown.stdout
    assert "unhealthy" not in shown.stdout
    assert shown.stdout.count("healthy") == len(SERVERS) + 1  # + the broker

    rows = json.loads(_run(cli_env, "status", "--json").stdout)
    pids = {row["name"]: row["pid"] for row in rows if row["name"] in SERVERS}
    assert set(pids) == set(SERVERS)
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

    stopped = _run(cli_env, "down")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert [name for name, pid in pids.items() if pid_alive(pid)] == []
    assert not list((Path(cli_env["FINANCELAKE_HOME"]) / "run").glob("*.pid"))

    after = _run(cli_env, "status")
    assert after.returncode == 1


def _start_foreground(env: Mapping[str, str]) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [CLI, "up"], env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while _run(env, "status").returncode != 0:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the stack did not become healthy"
        time.sleep(0.2)
    return process


def _running_pids(env: Mapping[str, str]) -> list[int]:
    return [row["pid"] for row in json.loads(_run(env, "status", "--json").stdout) if row["pid"]]


@pytest.mark.parametrize(
    ("stop", "exit_code"),
    [("ctrl-c", 0), ("down-from-another-terminal", 0), ("a-server-crashes", 1)],
)
def test_foreground_up_stops_everything(cli_env: dict[str, str], stop: str, exit_code: int) -> None:
    foreground = _start_foreground(cli_env)
    pids = _running_pids(cli_env)
    assert len(pids) == len(SERVERS)  # the broker is external here

    if stop == "ctrl-c":
        foreground.send_signal(signal.SIGINT)
    elif stop == "a-server-crashes":
        os.kill(pids[0], signal.SIGKILL)
    else:
        assert _run(cli_env, "down").returncode == 0
    _, stderr = foreground.communicate(timeout=60)

    assert foreground.returncode == exit_code, stderr
    assert "Stopped:" in stderr
    assert [pid for pid in pids if pid_alive(pid)] == []
