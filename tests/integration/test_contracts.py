"""The contracts are lint-clean, backward compatible with main, and gen/ is what they generate."""

from __future__ import annotations

import filecmp
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf.descriptor_pb2 import FileDescriptorSet

from financelake.services.codegen import browser_descriptors

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BUF = REPO / "node_modules" / ".bin" / "buf"


def _run(*args: str | Path, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True)


def _tree(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}


def test_generated_code_has_not_drifted_from_the_protos(tmp_path: Path) -> None:
    result = _run(
        sys.executable, "-m", "financelake.services.codegen", "generate", "--out", tmp_path
    )
    assert result.returncode == 0, result.stderr

    committed = {
        name: path
        for name, path in _tree(REPO / "gen").items()
        if "__pycache__" not in name
        and name.split("/")[0] in {"python", "client", "ts", "descriptor", "openapi"}
    }
    fresh = _tree(tmp_path)
    assert sorted(committed) == sorted(fresh), "files differ: run `make gen` and commit"
    changed = [n for n in fresh if not filecmp.cmp(fresh[n], committed[n], shallow=False)]
    assert not changed, f"stale generated files (run `make gen`): {changed}"


def test_buf_lint_rejects_a_contract_that_breaks_the_rules(tmp_path: Path) -> None:
    # Proves the lint configuration bites on our module (the exemptions are file-specific).
    shutil.copytree(REPO / "proto", tmp_path / "proto")
    shutil.copy(REPO / "buf.yaml", tmp_path)
    (tmp_path / ".build").symlink_to(REPO / ".build")
    bad = tmp_path / "proto" / "financelake" / "common" / "v1" / "bad.proto"
    bad.write_text(
        'syntax = "proto3";\npackage financelake.common.v1;\n'
        "enum color { RED = 0; }\nmessage thing { string Name = 1; }\n"
    )
    assert _run(BUF, "lint", cwd=REPO).returncode == 0
    result = _run(BUF, "lint", "--error-format=json", cwd=tmp_path)
    assert result.returncode != 0
    rules = {json.loads(line)["type"] for line in result.stdout.splitlines()}
    assert {"ENUM_PASCAL_CASE", "ENUM_ZERO_VALUE_SUFFIX", "FIELD_LOWER_SNAKE_CASE"} <= rules


def _previous_contracts_commit() -> str | None:
    """The commit whose contracts main had before this change, or None before the first one.

    With uncommitted proto changes that is HEAD; on a clean tree (CI's fresh clone) HEAD's
    parent, so the latest commit is checked against the main it was made on.
    """
    dirty = _run("git", "status", "--porcelain", "--", "proto", "buf.yaml").stdout.strip()
    base = "HEAD" if dirty else "HEAD~1"
    if _run("git", "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}").returncode != 0:
        return None
    if not _run("git", "ls-tree", "--name-only", base, "proto/").stdout.strip():
        return None
    return base


def test_contracts_do_not_break_mains_previous_contracts(tmp_path: Path) -> None:
    inside = _run("git", "rev-parse", "--is-inside-work-tree")
    assert inside.returncode == 0, "the breaking-change check needs the git history"
    base = _previous_contracts_commit()
    if base is None:
        return  # the very first contracts: nothing to be compatible with yet
    archive = subprocess.run(
        ["git", "archive", "--format=tar", base, "proto", "buf.yaml"],
        cwd=REPO,
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(tmp_path)], input=archive.stdout, check=True)
    (tmp_path / ".build").symlink_to(REPO / ".build")
    result = _run(BUF, "breaking", "proto", "--against", tmp_path / "proto")
    assert result.returncode == 0, (
        f"breaking changes against {base}:\n{result.stdout}{result.stderr}"
    )


def test_the_ui_descriptors_keep_every_message_but_no_option_only_import() -> None:
    """The browser's generated code embeds our descriptors without the validation rules and
    REST mappings (only the servers and Envoy use those), and with every message intact."""
    full = FileDescriptorSet.FromString(
        (REPO / "gen" / "descriptor" / "financelake.binpb").read_bytes()
    )
    browser = browser_descriptors(full)

    names = {file.name for file in browser.file}
    assert "financelake/marketdata/v1/marketdata_service.proto" in names
    assert not {name for name in names if name.startswith(("buf/", "google/api/"))}
    for file in browser.file:
        assert not [d for d in file.dependency if d.startswith(("buf/", "google/api/"))]
        original = next(f for f in full.file if f.name == file.name)
        assert [m.name for m in file.message_type] == [m.name for m in original.message_type]
    tick = "financelake/common/v1/tick.proto"
    symbol_fields = [
        next(f for f in files.file if f.name == tick).message_type[0].field[0]
        for files in (full, browser)
    ]
    assert [field.HasField("options") for field in symbol_fields] == [True, False]
    assert not (REPO / "gen" / "ts" / "buf").exists()
