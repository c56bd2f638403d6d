"""The Open Inference Protocol v2 on the prediction server, called by an independent client:
NVIDIA's `tritonclient[grpc]` from PyPI, unchanged, in its own process
(`tests/interop/triton_client.py`)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from financelake.models.dataset import DIRECTION_FEATURES, direction_features, read_features
from financelake.models.inference import OnnxModel
from financelake.models.registry import open_registry
from financelake.services.prediction.server import build_server
from financelake.stream.lake.catalog import open_catalog
from tests.fixtures.grpc import running_server
from tests.fixtures.prediction import prediction_settings

pytestmark = pytest.mark.integration

REPOSITORY = Path(__file__).resolve().parents[2]


def features_of(home: Path, rows: int) -> np.ndarray:
    """The last `rows` complete feature rows of the lake, as the models take them."""
    table = read_features(open_catalog(prediction_settings(home)), "1m").rows
    matrix = direction_features(table)
    return matrix[np.isfinite(matrix).all(axis=1)][-rows:]


async def test_tritonclient_reads_metadata_infers_batches_and_sees_bad_input_refused(
    trained_home: Path, tmp_path: Path
) -> None:
    features = features_of(trained_home, 64)
    np.save(tmp_path / "features.npy", features)
    expected = OnnxModel(open_registry(prediction_settings(trained_home)).load("direction-gbm"))
    async with running_server(build_server, prediction_settings(trained_home)) as running:
        client = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.interop.triton_client",
            running.address,
            str(tmp_path / "features.npy"),
            cwd=REPOSITORY,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(client.communicate(), 60)
    assert client.returncode == 0, err.decode()
    seen = json.loads(out)

    assert (seen["live"], seen["ready_v1"], seen["ready_v9"]) == (True, True, False)
    assert seen["server_name"] == "financelake"
    assert seen["metadata"] == {
        "name": "direction-gbm",
        "versions": ["1"],
        "platform": "onnxruntime_onnx",
        "inputs": [["features", "FP32", [-1, len(DIRECTION_FEATURES)]]],
        "outputs": [["label", "INT64", [-1]], ["probabilities", "FP32", [-1, 2]]],
    }
    np.testing.assert_array_equal(
        np.asarray(seen["probabilities"], dtype=np.float32),
        expected.run(features)["probabilities"],
    )
    assert not seen["label_returned"]  # only the requested output came back
    assert (seen["single_prediction_shape"], seen["single_version"]) == ([1, 1], "1")
    assert seen["wrong_shape"][0] == "StatusCode.INVALID_ARGUMENT"
    assert "shape" in seen["wrong_shape"][1]
    assert seen["wrong_type"][0] == "StatusCode.INVALID_ARGUMENT"
    assert seen["unknown_model"][0] == "StatusCode.NOT_FOUND"
