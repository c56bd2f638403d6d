"""Training data read from a real Iceberg gold.features: one snapshot, the newest computation
of each amended bar, only the interval and symbols asked for; a run registers all its models
or none."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pyiceberg.catalog.sql import SqlCatalog

from financelake.models.dataset import read_features
from financelake.models.errors import NotEnoughData
from financelake.models.registry import ModelRegistry
from financelake.models.training import TrainingConfig
from financelake.models.workflow import TrainingRequest, run_steps, train_and_register
from financelake.stream.lake.tables import FEATURES
from tests.fixtures.market_features import features_rows, market_bars, write_features

pytestmark = [
    pytest.mark.integration,
    # skl2onnx's HistGradientBoosting converter; harmless under protobuf < 7 (pyproject.toml).
    pytest.mark.filterwarnings("ignore:Field onnx.AttributeProto.ints:DeprecationWarning"),
]


def test_read_features_keeps_the_newest_computation_at_one_snapshot(
    iceberg_catalog: SqlCatalog,
):
    market = market_bars(symbols=("AAA", "BBB"), bars=100)
    rows = features_rows(market)
    interval = rows.schema.field("interval")
    five_minute = rows.slice(0, 10).set_column(
        rows.schema.get_field_index("interval"), interval, pa.array(["5m"] * 10, interval.type)
    )
    write_features(iceberg_catalog, pa.concat_tables([rows, five_minute]))
    amended_close = market[0].close.copy()
    amended_close[70] *= 1.02
    amendment = features_rows([market[0].with_close(amended_close)], computed_us=2**52)
    table = iceberg_catalog.load_table(FEATURES.identifier)
    table.append(amendment.slice(70, 1))  # a second commit, as the stream would make it

    read = read_features(iceberg_catalog, "1m", ["AAA"])

    snapshot = iceberg_catalog.load_table(FEATURES.identifier).current_snapshot()
    assert snapshot is not None
    assert read.snapshot_id == snapshot.snapshot_id
    assert read.interval == "1m"
    assert read.rows.num_rows == 100
    assert set(read.rows["symbol"].to_pylist()) == {"AAA"}
    assert set(read.rows["interval"].to_pylist()) == {"1m"}
    assert read.rows["close"][70].as_py() == amended_close[70]
    starts = pc.cast(read.rows["start_time"], pa.int64()).to_numpy()
    assert (np.diff(starts) > 0).all()


def test_a_run_registers_all_its_models_or_none(iceberg_catalog: SqlCatalog, tmp_path: Path):
    # 1,070 bars: 1,020 usable for the direction models, 1,009 for the anomaly model (its
    # 60-bar window), so a minimum of 1,015 fails only the anomaly model, trained last.
    write_features(iceberg_catalog, features_rows(market_bars(symbols=("AAA",), bars=1070)))
    registry = ModelRegistry.from_uri(str(tmp_path / "models"))
    config = TrainingConfig(folds=3, min_rows=1015, gbm_iterations=20, anomaly_trees=10)
    steps: list[str] = []

    with pytest.raises(NotEnoughData, match="anomaly: 1,009 usable rows"):
        train_and_register(iceberg_catalog, registry, TrainingRequest(config=config), steps.append)

    assert any(step.startswith("direction-gbm: ONNX Runtime matches") for step in steps)
    assert registry.names() == []

    request = TrainingRequest(config=TrainingConfig(folds=3, min_rows=1000, anomaly_trees=10))
    steps.clear()
    registered = train_and_register(iceberg_catalog, registry, request, steps.append)

    assert [r.metadata.reference for r in registered] == [
        "direction-logistic@1",
        "direction-gbm@1",
        "return-ridge@1",
        "anomaly@1",
    ]
    assert len(steps) == run_steps(request)
    assert registry.names() == ["anomaly", "direction-gbm", "direction-logistic", "return-ridge"]
