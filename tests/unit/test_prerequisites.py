"""Missing or too old Java, or missing Maven, is one clear error saying what to install."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from financelake.stream.kafka_dist import PrerequisiteMissing, require_java, require_maven

pytestmark = pytest.mark.unit


def _fake_java(folder: Path, version_line: str) -> None:
    # A stand-in for an installed JDK: `java -version` prints to stderr.
    java = folder / "java"
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(0o755)


def test_no_java_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PrerequisiteMissing, match=r"Java 17\+ is required.*openjdk-17"):
        require_java()


@pytest.mark.parametrize(
    ("version_line", "found"),
    [('openjdk version "11.0.22" 2024-01-16', 11), ('java version "1.8.0_392"', 8)],
)
def test_old_java_is_refused_with_the_version_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version_line: str, found: int
) -> None:
    _fake_java(tmp_path, version_line)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PrerequisiteMissing, match=f"found Java {found} at"):
        require_java()


def test_java_17_and_newer_are_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_java(tmp_path, 'openjdk version "21.0.5" 2024-10-15')
    monkeypatch.setenv("PATH", str(tmp_path))
    assert require_java() == str(tmp_path / "java")


def test_no_maven_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PrerequisiteMissing, match=r"Apache Maven .* is required"):
        require_maven()


def test_cli_reports_missing_java_in_one_clear_error(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("FINANCELAKE_")}
    env |= {"PATH": str(tmp_path), "FINANCELAKE_HOME": str(tmp_path / "home")}
    cli = Path(sys.executable).with_name("financelake")
    result = subprocess.run(
        [str(cli), "kafka", "start"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "Java 17+ is required" in result.stderr
    assert "Traceback" not in result.stderr
