"""Calls a server's Open Inference Protocol with NVIDIA's tritonclient, as a user would.

Run as its own process (`python -m tests.interop.triton_client ADDRESS FEATURES.npy`):
tritonclient registers its own `inference.*` protobuf messages, which share their names with
ours, so it cannot be imported next to our generated code. Prints one JSON object of what it
saw; arrays as nested lists.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import numpy as np
import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException


def features_input(values: np.ndarray, datatype: str = "FP32") -> triton.InferInput:
    tensor = triton.InferInput("features", list(values.shape), datatype)
    tensor.set_data_from_numpy(values)
    return tensor


def refusal(client: triton.InferenceServerClient, model: str, tensor: Any) -> list[str]:
    """[status, message] of an infer call that must fail."""
    try:
        client.infer(model, [tensor])
    except InferenceServerException as error:
        return [str(error.status()), str(error.message())]
    return ["OK", ""]


def main() -> None:
    address, path = sys.argv[1:3]
    features = np.load(path)
    client = triton.InferenceServerClient(url=address)
    deadline = time.monotonic() + 20
    while not client.is_server_ready():
        if time.monotonic() > deadline:
            raise SystemExit("the server never became ready")
        time.sleep(0.1)
    metadata = client.get_model_metadata("direction-gbm")
    batch = client.infer(
        "direction-gbm",
        [features_input(features)],
        model_version="1",
        outputs=[triton.InferRequestedOutput("probabilities")],
    )
    single = client.infer("return-ridge", [features_input(features[:1])])
    seen = {
        "live": client.is_server_live(),
        "server_name": client.get_server_metadata().name,
        "ready_v1": client.is_model_ready("direction-gbm", "1"),
        "ready_v9": client.is_model_ready("direction-gbm", "9"),
        "metadata": {
            "name": metadata.name,
            "versions": list(metadata.versions),
            "platform": metadata.platform,
            "inputs": [[t.name, t.datatype, list(t.shape)] for t in metadata.inputs],
            "outputs": [[t.name, t.datatype, list(t.shape)] for t in metadata.outputs],
        },
        "probabilities": batch.as_numpy("probabilities").tolist(),
        "label_returned": batch.as_numpy("label") is not None,
        "single_prediction_shape": list(single.as_numpy("prediction").shape),
        "single_version": single.get_response().model_version,
        "wrong_shape": refusal(client, "direction-gbm", features_input(features[:, :3].copy())),
        "wrong_type": refusal(
            client, "direction-gbm", features_input(features.astype(np.float64), "FP64")
        ),
        "unknown_model": refusal(client, "no-such-model", features_input(features)),
    }
    client.close()
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
