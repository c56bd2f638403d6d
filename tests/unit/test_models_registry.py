"""The model registry on a real local file system: versions 1, 2, 3 per name, latest and
pinned loads, metadata round trip, checksum verified on load, half-written versions invisible."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from financelake.models.errors import ModelChecksumMismatch, ModelNotFound
from financelake.models.registry import ModelCard, ModelRegistry, open_registry, registry_uri
from financelake.services.settings import ModelSettings, Settings

pytestmark = pytest.mark.unit


def _card(name: str = "direction-gbm", **changes: Any) -> ModelCard:
    card = ModelCard(
        name=name,
        label="next_return_direction",
        interval="1m",
        estimator="HistGradientBoostingClassifier",
        feature_names=("return", "rsi_14"),
        input_name="features",
        output_names=("label", "probabilities"),
        train_start_time=datetime(2026, 1, 2, 14, 30, tzinfo=UTC),
        train_end_time=datetime(2026, 11, 25, 21, 0, tzinfo=UTC),
        train_snapshot_id=8_123_456_789_012_345_678,
        train_rows=12_345,
        symbols=("AAPL", "MSFT"),
        metrics={"roc_auc": 0.51, "roc_auc_se": 0.01, "accuracy": 0.5, "log_loss": 0.69},
        baseline_metrics={"always_up.roc_auc": 0.5, "last_direction.roc_auc": 0.49},
        skill=False,
        verdict="no evidence of skill",
        validation_folds=5,
        validation_rows=10_000,
        onnx_max_abs_diff=1.2e-7,
        params={},
        library_versions={"scikit-learn": "1.9.1"},
    )
    return dataclasses.replace(card, **changes)


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry.from_uri(str(tmp_path / "models"))


def test_register_then_load_latest_and_pinned_versions(registry: ModelRegistry, tmp_path: Path):
    first = registry.register(_card(), b"onnx one")
    second = registry.register(_card(train_rows=20_000), b"onnx two")
    registry.register(_card("anomaly", label="anomaly", skill=None), b"onnx anomaly")

    assert (first.version, second.version) == (1, 2)
    assert second.reference == "direction-gbm@2"
    assert registry.names() == ["anomaly", "direction-gbm"]
    assert registry.versions("direction-gbm") == [1, 2]
    assert registry.load("direction-gbm").onnx == b"onnx two"
    assert registry.load("direction-gbm", 1).onnx == b"onnx one"
    assert registry.metadata("direction-gbm") == second
    assert registry.metadata("direction-gbm", 1) == first
    assert [m.reference for m in registry.list_models()] == [
        "anomaly@1",
        "direction-gbm@2",
        "direction-gbm@1",
    ]
    on_disk = tmp_path / "models" / "direction-gbm" / "2"
    assert sorted(p.name for p in on_disk.iterdir()) == ["metadata.json", "model.onnx"]


def test_metadata_keeps_every_field(registry: ModelRegistry, tmp_path: Path):
    card = _card()
    stored = registry.register(card, b"onnx")
    document = json.loads((tmp_path / "models/direction-gbm/1/metadata.json").read_text())

    kept = {f.name: getattr(stored, f.name) for f in dataclasses.fields(card)}
    assert kept == dataclasses.asdict(card)
    assert stored.onnx_sha256 == hashlib.sha256(b"onnx").hexdigest()
    assert document["format"] == 1
    assert document["version"] == 1
    assert document["feature_names"] == ["return", "rsi_14"]
    assert document["train_snapshot_id"] == card.train_snapshot_id
    assert datetime.fromisoformat(document["created_time"]).tzinfo is not None


def test_a_changed_onnx_file_is_refused_on_load(registry: ModelRegistry, tmp_path: Path):
    registry.register(_card(), b"the real model")
    (tmp_path / "models/direction-gbm/1/model.onnx").write_bytes(b"something else")

    with pytest.raises(ModelChecksumMismatch, match="direction-gbm@1") as raised:
        registry.load("direction-gbm")
    assert raised.value.reason == "MODEL_CHECKSUM_MISMATCH"


def test_a_half_written_version_is_invisible_and_its_number_not_reused(
    registry: ModelRegistry, tmp_path: Path
):
    registry.register(_card(), b"one")
    # A registration that died after writing its ONNX file, before its metadata.
    abandoned = tmp_path / "models/direction-gbm/2"
    abandoned.mkdir()
    (abandoned / "model.onnx").write_bytes(b"half")

    assert registry.versions("direction-gbm") == [1]
    assert registry.load("direction-gbm").metadata.version == 1
    with pytest.raises(ModelNotFound):
        registry.load("direction-gbm", 2)
    assert registry.register(_card(), b"three").version == 3
    assert registry.versions("direction-gbm") == [1, 3]
    assert not list(tmp_path.glob("models/**/*.tmp"))


def test_unknown_models_and_versions_are_not_found(registry: ModelRegistry):
    assert registry.names() == []
    assert registry.list_models() == []
    with pytest.raises(ModelNotFound, match="financelake models train") as raised:
        registry.metadata("direction-gbm")
    assert raised.value.reason == "MODEL_NOT_FOUND"
    registry.register(_card(), b"one")
    with pytest.raises(ModelNotFound, match="direction-gbm@7"):
        registry.load("direction-gbm", 7)


@pytest.mark.parametrize("name", ["Direction", "1model", "direction_gbm", "a" * 64, ""])
def test_names_follow_the_contract(registry: ModelRegistry, name: str):
    with pytest.raises(ValueError, match="must match"):
        registry.register(_card(name), b"onnx")


def test_a_file_uri_and_a_path_open_the_same_registry(tmp_path: Path):
    ModelRegistry.from_uri(str(tmp_path / "models")).register(_card(), b"onnx")

    by_uri = ModelRegistry.from_uri((tmp_path / "models").as_uri())

    assert by_uri.load("direction-gbm").onnx == b"onnx"


def test_settings_place_the_registry_under_home_unless_told(tmp_path: Path):
    assert registry_uri(Settings(home=tmp_path)) == str(tmp_path / "models")
    elsewhere = Settings(home=tmp_path, models=ModelSettings(registry_uri=str(tmp_path / "x")))
    open_registry(elsewhere).register(_card(), b"onnx")
    assert (tmp_path / "x/direction-gbm/1/model.onnx").read_bytes() == b"onnx"
