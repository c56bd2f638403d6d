"""`financelake models train` and `models list` end to end on a real on-disk Iceberg lake:
gold.features at one snapshot in, checked ONNX versions in the registry out; a clean message
(no traceback) when the lake cannot train anything."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import onnxruntime
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from typer.testing import CliRunner

from financelake.models.registry import open_registry
from financelake.models.training import MODELS
from financelake.services.cli import app
from financelake.services.settings import Settings
from financelake.stream.lake.catalog import open_catalog
from financelake.stream.lake.tables import FEATURES
from tests.fixtures.market_features import features_rows, market_bars, write_features

pytestmark = [
    pytest.mark.integration,
    # skl2onnx's HistGradientBoosting converter; harmless under protobuf < 7 (pyproject.toml).
    pytest.mark.filterwarnings("ignore:Field onnx.AttributeProto.ints:DeprecationWarning"),
]


@pytest.fixture
def lake_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SqlCatalog]:
    """FINANCELAKE_HOME in tmp_path and no other FINANCELAKE_ variable, as the CLI will see
    it; yields the lake catalog of those settings."""
    for key in os.environ:
        if key.startswith("FINANCELAKE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("FINANCELAKE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps tables to 80 columns when not on a terminal
    catalog = open_catalog(Settings())
    assert isinstance(catalog, SqlCatalog)
    yield catalog
    catalog.engine.dispose()


def test_train_registers_every_model_and_list_shows_them(lake_home: SqlCatalog):
    market = market_bars(symbols=("AAA", "BBB", "CCC"), bars=700, reversal=0.5)
    write_features(lake_home, features_rows(market))
    snapshot = lake_home.load_table(FEATURES.identifier).current_snapshot()
    assert snapshot is not None
    runner = CliRunner()

    trained = runner.invoke(app, ["models", "train", "--interval", "1m", "--folds", "3"])

    assert trained.exit_code == 0, trained.output
    for spec in MODELS:
        assert f"{spec.name}@1 {spec.estimator}:" in trained.stdout
    for column in ("always_up", "last_direction", "zero_return", "z_rule"):
        assert column in trained.stdout
    assert "beats every baseline" in trained.stdout
    assert "Traceback" not in trained.output
    registry = open_registry(Settings())
    assert registry.names() == sorted(spec.name for spec in MODELS)
    gbm = registry.load("direction-gbm")
    assert gbm.metadata.train_snapshot_id == snapshot.snapshot_id
    assert gbm.metadata.symbols == ("AAA", "BBB", "CCC")
    assert gbm.metadata.validation_folds == 3
    assert gbm.metadata.library_versions["onnxruntime"] == onnxruntime.__version__
    session = onnxruntime.InferenceSession(gbm.onnx, providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["label", "probabilities"]
    assert registry.metadata("anomaly").params == {"window_bars": 60.0}

    again = runner.invoke(
        app,
        ["models", "train", "--name", "direction-logistic", "-s", "AAA", "-s", "CCC"],
    )
    listed = runner.invoke(app, ["models", "list"])

    assert again.exit_code == 0, again.output
    assert "direction-logistic@2" in again.stdout
    assert registry.metadata("direction-logistic").symbols == ("AAA", "CCC")
    assert registry.metadata("direction-logistic").validation_folds == 5
    assert registry.versions("direction-gbm") == [1]
    assert listed.exit_code == 0, listed.output
    lines = [line for line in listed.stdout.splitlines() if "@" in line]
    assert [line.split("│")[1].strip() for line in lines] == [
        "direction-logistic@2",
        *(f"{spec.name}@1" for spec in reversed(MODELS)),
    ]


def test_train_on_a_lake_without_features_says_so(lake_home: SqlCatalog):
    result = CliRunner().invoke(app, ["models", "train"])

    assert result.exit_code == 1
    assert "gold.features does not exist yet" in result.stderr
    assert "Traceback" not in result.output
    assert open_registry(Settings()).names() == []


def test_train_on_too_few_bars_says_so_and_registers_nothing(lake_home: SqlCatalog):
    write_features(lake_home, features_rows(market_bars(symbols=("AAA",), bars=300)))

    result = CliRunner().invoke(app, ["models", "train"])

    assert result.exit_code == 1
    assert "Nothing registered" in result.stderr
    assert "usable rows in gold.features, at least 1,000 are needed" in result.stderr
    assert "Traceback" not in result.output
    assert open_registry(Settings()).names() == []


def test_an_unknown_model_name_is_a_usage_error(lake_home: SqlCatalog):
    result = CliRunner().invoke(app, ["models", "train", "--name", "crystal-ball"])

    assert result.exit_code == 2
    assert "unknown model 'crystal-ball'" in result.output


def test_list_on_an_empty_registry(lake_home: SqlCatalog):
    result = CliRunner().invoke(app, ["models", "list"])

    assert result.exit_code == 0
    assert "No model registered" in result.stderr
