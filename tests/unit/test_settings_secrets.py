"""Secrets as files: a folder named by FINANCELAKE_SECRETS_DIR (the chart mounts its Secret
there) sets nested secret settings, variables still win, and a missing folder is an error
rather than silently no secrets."""

from pathlib import Path

import pytest
from pydantic_settings import SettingsError

from financelake.services.settings import SECRETS_DIR_VARIABLE, Settings

KEY_VARIABLE = "FINANCELAKE_SOURCES__ALPHAVANTAGE_API_KEY"


def _key(settings: Settings) -> str | None:
    key = settings.sources.alphavantage_api_key
    return None if key is None else key.get_secret_value()


def test_a_secret_file_sets_its_nested_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / KEY_VARIABLE).write_text("from-the-file")
    monkeypatch.delenv(KEY_VARIABLE, raising=False)
    monkeypatch.setenv(SECRETS_DIR_VARIABLE, str(tmp_path))
    assert _key(Settings()) == "from-the-file"


def test_a_variable_wins_over_a_secret_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / KEY_VARIABLE).write_text("from-the-file")
    monkeypatch.setenv(KEY_VARIABLE, "from-the-environment")
    monkeypatch.setenv(SECRETS_DIR_VARIABLE, str(tmp_path))
    assert _key(Settings()) == "from-the-environment"


def test_a_missing_secrets_folder_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRETS_DIR_VARIABLE, str(tmp_path / "absent"))
    with pytest.raises(SettingsError, match="absent"):
        Settings()
