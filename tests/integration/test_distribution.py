"""FinanceLake installs as one distribution with one import root, `financelake`."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
_NOT_SOURCES = shutil.ignore_patterns(
    ".git",
    ".venv",
    "node_modules",
    "build",
    ".build",
    ".financelake",
    "*.egg-info",
    "__pycache__",
    "*.so",
)


def test_wheel_holds_only_the_financelake_import_root(tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=_NOT_SOURCES)
    built = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path)],
        cwd=source,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = tmp_path.glob("financelake-*.whl")
    names = zipfile.ZipFile(wheel).namelist()

    top_level = {name.split("/")[0] for name in names}
    assert top_level == {"financelake", "-".join(wheel.name.split("-")[:2]) + ".dist-info"}
    # The stream's C reader is compiled into it.
    assert any(name.startswith("financelake/stream/_tick_wire.") for name in names)
    for module in (
        "financelake/services/settings.py",
        "financelake/gen/ingestion/v1/ingestion_service_pb2.py",
        "financelake/gen/ingestion/v1/ingestion_service_pb2.pyi",
        "financelake/gen/inference/grpc_predict_v2_pb2_grpc.py",
        "financelake/client/financelake/marketdata/v1/__init__.py",
        "financelake/stream/__init__.py",
        "financelake/gateway/config.py",
    ):
        assert module in names

    # Import from the unpacked wheel alone, not from the editable install of this checkout.
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    probe = (
        "import sys; sys.path[:] = [p for p in sys.path if '__editable__' not in p];"
        f"sys.path.insert(0, {str(unpacked)!r});"
        "import financelake.gen.ingestion.v1.ingestion_service_pb2_grpc as g;"
        "import financelake.services.settings, financelake.client.financelake.common.v1;"
        "import financelake.stream._tick_wire;"
        "print(g.__file__)"
    )
    imported = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.startswith(str(unpacked))
