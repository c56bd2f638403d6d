"""`make bench-predict`: how fast the prediction server answers, beside what ONNX Runtime and
scikit-learn take for the same model on the same input.

One run needs no Kafka. Before any timing it builds a private home (FINANCELAKE_HOME in a temp
folder): `gold.features` of a synthetic market (`tests.fixtures.market_features`: `SYMBOLS`,
`BARS` 1-minute bars each, `market_bars(..., reversal=REVERSAL)`, the indicators computed as
the stream computes them), then trains and registers every model with
`train_and_register(TrainingRequest(config=TrainingConfig()))`: the production defaults (5
walk-forward folds, a 200-iteration HistGradientBoosting), so the served models have their real
size. Then, in the bench process, the limits, measured on the inputs the server later gets
(each symbol's newest features row, what the server holds in memory; `--limit-reps` calls
each after a warm-up, one call timed at a time):

* `raw_session_run_p50_us`: a bare `onnxruntime.InferenceSession.run` of `direction-gbm`'s
  ONNX bytes on 1 row (every output), with the server's session options (1 intra-op and 1
  inter-op thread, no spinning); `_batch64_` on 64 rows; `_default_options_` with
  ONNX Runtime's default options; `raw_predict_models_p50_us`: the two sessions one Predict
  runs (the direction model Predict serves and `return-ridge`), 1 row each;
* `sklearn_predict_p50_us`: the fitted scikit-learn pipeline of `direction-gbm` (the
  `RegisteredModel.model.estimator` that was exported) `predict_proba` on the same 1 row.

Then it starts the real server (`python -m financelake.services.prediction`, configured only
through FINANCELAKE_*; the registry is `home/models`, the default), waits for health SERVING
of PredictionService and for Predict to stop answering UNAVAILABLE (features load in the
background), checks that Predict and ModelInfer return what the bench computes locally with
the same models, and measures:

* `predict_p50_ms` / `_p99_ms` / `predict_req_per_s_c1`: unary Predict(symbol, 1m, default
  model), ONE client, sequential calls, symbols rotating, `--predict-calls` timed after
  `--predict-warmup` calls;
* `predict_req_per_s_c50` (and its p50/p99): 50 concurrent closed-loop Predict callers
  (asyncio tasks over `--channels` channels, one client process) for `--duration` seconds
  after `--warmup` seconds;
* `modelinfer_batch1_req_per_s`: Open Inference Protocol v2 ModelInfer on `direction-gbm`,
  one FP32 `features` row per call (`raw_input_contents`), `--infer-clients` closed-loop
  callers; `modelinfer_batch64_rows_per_s`: the same with 64 rows per call (rows/s = calls/s
  x 64), `--batch64-clients` callers.

Every client sends pre-serialised request bytes through a generic `unary_unary` (no request
serialiser, responses left as bytes; the first response of each concurrent phase is decoded and
checked), so the client's Python costs little. Client and server CPU seconds per wall second
are recorded for every phase (server: /proc, for the concurrent phases over warm-up and timed
phase, scaled to the timed phase), and the server's with no calls for `IDLE_S` seconds
(`server_idle_cpu_per_s`: its features refresh and registry poll). Client and server share the
machine's two cores. Ratios: `predict_vs_raw` = Predict p50 / raw session run p50;
`modelinfer_vs_raw` = ModelInfer batch-1 calls/s / (1 / raw run p50).

`--profile DIR` samples the server with py-spy during each phase (collapsed stacks in
DIR/server-<phase>.txt) and prints the top frames of each to stderr.

It prints a table, then as its last line one JSON object, also written to
`tests/bench/results/predict.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import numpy.typing as npt
import onnxruntime
from grpc_health.v1 import health_pb2, health_pb2_grpc

from financelake.gen.inference import grpc_predict_v2_pb2 as oip
from financelake.gen.prediction.v1 import prediction_service_pb2 as pb
from financelake.models.dataset import direction_features, read_features
from financelake.models.export import INPUT_NAME
from financelake.models.registry import ModelRegistry, open_registry
from financelake.models.training import TrainingConfig
from financelake.models.workflow import RegisteredModel, TrainingRequest, train_and_register
from financelake.services.prediction.forecast import parse_reference
from financelake.services.prediction.inference import INFERENCE_SERVICE_NAME
from financelake.services.prediction.latest_features import newest_rows
from financelake.services.prediction.servicer import SERVICE_NAME
from financelake.services.settings import Settings
from financelake.stream.lake.catalog import open_catalog
from tests.bench.ingest import free_port
from tests.bench.marketdata import (
    QuoteRun,
    channel,
    closed_loop,
    cpu_seconds,
    percentile,
    quote_run,
    sampled,
    service_process,
    tail,
)
from tests.bench.report import Row, publish
from tests.fixtures.market_features import features_rows, market_bars, write_features

SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "JPM")
BARS = 3000
REVERSAL = 0.2
"""The planted signal: each 1m return is -0.2 x the previous one plus noise."""
INTERVAL = "1m"
GBM = "direction-gbm"
RETURNS = "return-ridge"
BATCH = 64
PREDICT_METHOD = f"/{SERVICE_NAME}/Predict"
INFER_METHOD = f"/{INFERENCE_SERVICE_NAME}/ModelInfer"
TARGET_PREDICT_P99_MS = 5.0
TARGET_INFER_REQ_PER_S = 2000.0
IDLE_S = 3.0
_SERVER_START_S = 120.0
_STARTED = time.monotonic()

Matrix = npt.NDArray[np.float32]


@dataclass
class Options:
    """The knobs, reported with the results."""

    predict_calls: int
    predict_warmup: int
    clients: int
    channels: int
    infer_clients: int
    batch64_clients: int
    duration_s: float
    warmup_s: float
    limit_reps: int
    profile: Path | None = None


def say(message: str) -> None:
    """Progress on stderr, with the seconds since the bench started."""
    print(f"[{time.monotonic() - _STARTED:6.1f} s] {message}", file=sys.stderr)


# ---- the lake, the models, the inputs ----------------------------------------------------


@dataclass
class Trained:
    """What the bench trained and the inputs it sends."""

    registered: dict[str, RegisteredModel]
    registry: ModelRegistry
    rows: list[Matrix]
    """Each symbol's newest features row (1, n_features), in `SYMBOLS` order."""
    batches: list[Matrix]
    """`BATCH`-row matrices of complete feature rows."""
    lake_rows: int
    train_s: float


def train(settings: Settings) -> Trained:
    """gold.features of the synthetic market, every model trained and registered."""
    catalog = open_catalog(settings)
    write_features(catalog, features_rows(market_bars(SYMBOLS, BARS, reversal=REVERSAL)))
    say(f"gold.features: {len(SYMBOLS)} symbols x {BARS:,} bars written; training")
    registry = open_registry(settings)
    started = time.perf_counter()
    registered = train_and_register(
        catalog, registry, TrainingRequest(interval=INTERVAL, config=TrainingConfig())
    )
    train_s = time.perf_counter() - started
    rows = read_features(catalog, INTERVAL).rows
    newest = {row.symbol: row.features for row in newest_rows(rows) if row.complete}
    assert sorted(newest) == sorted(SYMBOLS), sorted(newest)
    matrix = direction_features(rows)
    complete = np.ascontiguousarray(matrix[np.isfinite(matrix).all(axis=1)], dtype=np.float32)
    return Trained(
        registered={r.metadata.name: r for r in registered},
        registry=registry,
        rows=[newest[s].reshape(1, -1).astype(np.float32) for s in SYMBOLS],
        batches=[complete[-BATCH * (k + 1) : len(complete) - BATCH * k] for k in range(4)],
        lake_rows=rows.num_rows,
        train_s=train_s,
    )


# ---- the limits --------------------------------------------------------------------------


def session(onnx: bytes, server_options: bool = True) -> onnxruntime.InferenceSession:
    """A bare session of the ONNX bytes; with the server's options (`models.inference`), or
    ONNX Runtime's defaults."""
    options = onnxruntime.SessionOptions()
    if server_options:
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(
        onnx, sess_options=options, providers=["CPUExecutionProvider"]
    )


def per_call_us(call: Callable[[Matrix], object], inputs: list[Matrix], reps: int) -> list[float]:
    """Microseconds of each of `reps` calls, inputs rotating, after `reps // 10` untimed."""
    for i in range(max(10, reps // 10)):
        call(inputs[i % len(inputs)])
    out: list[float] = []
    for i in range(reps):
        features = inputs[i % len(inputs)]
        started = time.perf_counter_ns()
        call(features)
        out.append((time.perf_counter_ns() - started) / 1000)
    return out


@dataclass
class Limits:
    raw_us: list[float]
    raw_batch_us: list[float]
    raw_default_us: list[float]
    raw_predict_us: list[float]
    sklearn_us: list[float]
    sklearn_batch_us: list[float]


def measure_limits(trained: Trained, predict_model: str, reps: int) -> Limits:
    """The bare runs of the module docstring, in this process, one after the other."""

    def runner(name: str, version: int | None = None, server_options: bool = True) -> Any:
        bare = session(trained.registry.load(name, version).onnx, server_options)
        return lambda features: bare.run(None, {INPUT_NAME: features})

    gbm = runner(GBM)
    name, version = parse_reference(predict_model)
    direction, returns = runner(name, version), runner(RETURNS)

    def predict_models(features: Matrix) -> None:
        direction(features)
        returns(features)

    estimator = trained.registered[GBM].model.estimator
    return Limits(
        raw_us=per_call_us(gbm, trained.rows, reps),
        raw_batch_us=per_call_us(gbm, trained.batches, reps),
        raw_default_us=per_call_us(runner(GBM, server_options=False), trained.rows, reps),
        raw_predict_us=per_call_us(predict_models, trained.rows, reps),
        sklearn_us=per_call_us(estimator.predict_proba, trained.rows, reps),
        sklearn_batch_us=per_call_us(estimator.predict_proba, trained.batches, reps // 4),
    )


# ---- the server --------------------------------------------------------------------------


def server_env(home: Path, port: int) -> dict[str, str]:
    """The server's whole configuration: no Kafka, the synthetic market (2026-01) in reach."""
    return {
        "FINANCELAKE_HOME": str(home),
        "FINANCELAKE_SERVERS__HOST": "127.0.0.1",
        "FINANCELAKE_SERVERS__PREDICTION_PORT": str(port),
        "FINANCELAKE_KAFKA_BOOTSTRAP": "127.0.0.1:1",
        "FINANCELAKE_PREDICTION__FEATURE_LOOKBACK_DAYS": "10000",
    }


def predict_request(symbol: str) -> bytes:
    return pb.PredictRequest(symbol=symbol).SerializeToString()


def infer_request(rows: Matrix, model: str = GBM) -> bytes:
    """ModelInfer of `rows` as tritonclient sends it: FP32 bytes in `raw_input_contents`."""
    request = oip.ModelInferRequest(model_name=model)
    request.inputs.add(name=INPUT_NAME, datatype="FP32", shape=list(rows.shape))
    request.raw_input_contents.append(np.ascontiguousarray(rows, dtype="<f4").tobytes())
    return request.SerializeToString()


async def wait_ready(
    process: subprocess.Popen[bytes], port: int, log: Path
) -> tuple[float, pb.PredictResponse]:
    """Until health says PredictionService is SERVING and Predict stops answering
    UNAVAILABLE (the features are read in the background); (seconds, the first answer)."""
    started = time.monotonic()
    deadline = started + _SERVER_START_S
    async with channel(port) as chan:
        health = health_pb2_grpc.HealthStub(chan)
        predict = chan.unary_unary(PREDICT_METHOD)
        serving = False
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"prediction server exited:\n{tail(log)}")
            with contextlib.suppress(grpc.aio.AioRpcError):
                if not serving:
                    answer = await health.Check(
                        health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=1
                    )
                    serving = answer.status == health_pb2.HealthCheckResponse.SERVING
                if serving:
                    raw = await predict(predict_request(SYMBOLS[0]), timeout=2)
                    return time.monotonic() - started, pb.PredictResponse.FromString(raw)
            await asyncio.sleep(0.1)
    raise RuntimeError(f"prediction server not ready in {_SERVER_START_S}s; see {log}")


async def check_answers(port: int, trained: Trained, predict_model: str) -> None:
    """Predict and ModelInfer answer what the same models give in this process."""
    name, version = parse_reference(predict_model)
    direction = session(trained.registry.load(name, version).onnx)
    gbm = session(trained.registry.load(GBM).onnx)
    async with channel(port) as chan:
        predict = chan.unary_unary(PREDICT_METHOD)
        infer = chan.unary_unary(INFER_METHOD)
        for symbol, row in zip(SYMBOLS, trained.rows, strict=True):
            answer = pb.PredictResponse.FromString(
                await predict(predict_request(symbol), timeout=5)
            )
            expected = direction.run(["probabilities"], {INPUT_NAME: row})[0][0, 1]
            assert answer.prediction.symbol == symbol, answer
            assert answer.prediction.model_version == predict_model, answer
            assert abs(answer.prediction.probability_up - expected) < 1e-6, (answer, expected)
        for rows in (trained.rows[0], trained.batches[0]):
            reply = oip.ModelInferResponse.FromString(await infer(infer_request(rows), timeout=5))
            outputs = [output.name for output in reply.outputs]
            got = np.frombuffer(reply.raw_output_contents[outputs.index("probabilities")], "<f4")
            expected = gbm.run(["probabilities"], {INPUT_NAME: rows})[0]
            np.testing.assert_allclose(got.reshape(expected.shape), expected, atol=1e-6)


# ---- the client phases -------------------------------------------------------------------


async def predict_sequential(pid: int, port: int, options: Options) -> QuoteRun:
    """One client, one Predict at a time, symbols rotating."""
    requests = [predict_request(s) for s in SYMBOLS]
    async with channel(port) as chan:
        predict = chan.unary_unary(PREDICT_METHOD)
        for i in range(options.predict_warmup):
            await predict(requests[i % len(requests)], timeout=10)
        latencies: list[float] = []
        server = cpu_seconds(pid)
        client = time.process_time()
        started = time.perf_counter()
        for i in range(options.predict_calls):
            sent = time.perf_counter()
            await predict(requests[i % len(requests)], timeout=10)
            latencies.append((time.perf_counter() - sent) * 1000)
        seconds = time.perf_counter() - started
        client = time.process_time() - client
        server = cpu_seconds(pid) - server
    return QuoteRun(
        mode="1 client, sequential",
        req_per_s=options.predict_calls / seconds,
        p50_ms=percentile(latencies, 0.50),
        p99_ms=percentile(latencies, 0.99),
        calls=options.predict_calls,
        client_cpu=client / seconds,
        server_cpu=server / seconds,
    )


async def concurrent(
    pid: int,
    port: int,
    mode: str,
    method: str,
    requests: list[bytes],
    clients: int,
    options: Options,
    check: Callable[[bytes], None],
) -> QuoteRun:
    """`clients` closed-loop callers of `method` (marketdata's `closed_loop`)."""
    before = cpu_seconds(pid)
    load = await closed_loop(
        port,
        method,
        requests,
        clients,
        min(options.channels, clients),
        options.warmup_s,
        options.duration_s,
        check,
    )
    # The server's CPU over warm-up and timed phase, scaled to the timed phase.
    server = (cpu_seconds(pid) - before) * options.duration_s
    server /= options.warmup_s + options.duration_s
    return quote_run(mode, [load], server)


def check_predict(response: bytes) -> None:
    answer = pb.PredictResponse.FromString(response)
    assert answer.prediction.symbol in SYMBOLS, answer


def check_infer(rows: int) -> Callable[[bytes], None]:
    def check(response: bytes) -> None:
        reply = oip.ModelInferResponse.FromString(response)
        shapes = {output.name: list(output.shape) for output in reply.outputs}
        assert shapes["probabilities"] == [rows, 2], shapes

    return check


# ---- the run -----------------------------------------------------------------------------


def phase(run: QuoteRun) -> dict[str, Any]:
    return {
        "mode": run.mode,
        "req_per_s": round(run.req_per_s),
        "p50_ms": round(run.p50_ms, 3),
        "p99_ms": round(run.p99_ms, 3),
        "calls": run.calls,
        "client_cpu_per_s": round(run.client_cpu, 2),
        "server_cpu_per_s": round(run.server_cpu, 2),
    }


async def serve_and_measure(home: Path, trained: Trained, options: Options) -> dict[str, Any]:
    port = free_port("127.0.0.1")
    log = home / "prediction.log"
    module = "financelake.services.prediction"
    with service_process(module, server_env(home, port), log) as process:
        ready_s, first = await wait_ready(process, port, log)
        predict_model = first.prediction.model_version
        say(f"server ready in {ready_s:.1f} s (pid {process.pid})")
        await check_answers(port, trained, predict_model)
        pid = process.pid
        # What the server spends with no calls: the features refresh, the registry poll.
        idle = cpu_seconds(pid)
        await asyncio.sleep(IDLE_S)
        idle_cpu = (cpu_seconds(pid) - idle) / IDLE_S

        with sampled(pid, options.profile, "predict-c1"):
            c1 = await predict_sequential(pid, port, options)
        say(f"predict c1: p50 {c1.p50_ms:.3f} ms, p99 {c1.p99_ms:.3f} ms")

        predicts = [predict_request(s) for s in SYMBOLS]
        with sampled(pid, options.profile, "predict-c50"):
            c50 = await concurrent(
                *(pid, port, f"{options.clients} clients, closed loop", PREDICT_METHOD),
                *(predicts, options.clients, options, check_predict),
            )
        say(f"predict c{options.clients}: {c50.req_per_s:,.0f}/s")

        singles = [infer_request(row) for row in trained.rows]
        with sampled(pid, options.profile, "modelinfer-b1"):
            b1 = await concurrent(
                *(pid, port, f"batch 1, {options.infer_clients} clients", INFER_METHOD),
                *(singles, options.infer_clients, options, check_infer(1)),
            )
        say(f"modelinfer batch 1: {b1.req_per_s:,.0f}/s")

        batches = [infer_request(rows) for rows in trained.batches]
        with sampled(pid, options.profile, "modelinfer-b64"):
            b64 = await concurrent(
                *(pid, port, f"batch {BATCH}, {options.batch64_clients} clients", INFER_METHOD),
                *(batches, options.batch64_clients, options, check_infer(BATCH)),
            )
        say(f"modelinfer batch {BATCH}: {b64.req_per_s * BATCH:,.0f} rows/s")
        assert process.poll() is None, tail(log)
    say("server stopped")
    return {
        "ready_s": ready_s,
        "idle_cpu": idle_cpu,
        "predict_model": predict_model,
        "c1": c1,
        "c50": c50,
        "b1": b1,
        "b64": b64,
    }


async def measure(home: Path, options: Options) -> dict[str, Any]:
    settings = Settings(home=home, kafka_bootstrap="127.0.0.1:1")
    trained = train(settings)
    say(
        f"lake: {trained.lake_rows:,} feature rows; {len(trained.registered)} models trained "
        f"and registered in {trained.train_s:.1f} s"
    )
    # Which direction model Predict serves: the one with the lowest walk-forward log loss.
    predict_model = min(
        (r.metadata for r in trained.registered.values() if r.metadata.name.startswith("dir")),
        key=lambda m: (m.metrics.get("log_loss", float("inf")), m.name),
    ).reference
    limits = measure_limits(trained, predict_model, options.limit_reps)
    raw_p50 = percentile(limits.raw_us, 0.5)
    say(
        f"limits: raw session run p50 {raw_p50:.1f} us, sklearn predict_proba p50 "
        f"{percentile(limits.sklearn_us, 0.5):.1f} us"
    )

    served = await serve_and_measure(home, trained, options)
    assert served["predict_model"] == predict_model, (served["predict_model"], predict_model)
    c1, c50, b1, b64 = (served[k] for k in ("c1", "c50", "b1", "b64"))
    gbm_meta = trained.registered[GBM].metadata
    return {
        "predict_p50_ms": round(c1.p50_ms, 3),
        "predict_p99_ms": round(c1.p99_ms, 3),
        "predict_req_per_s_c1": round(c1.req_per_s),
        "predict_req_per_s_c50": round(c50.req_per_s),
        "predict_p50_ms_c50": round(c50.p50_ms, 3),
        "predict_p99_ms_c50": round(c50.p99_ms, 3),
        "modelinfer_batch1_req_per_s": round(b1.req_per_s),
        "modelinfer_batch1_p50_ms": round(b1.p50_ms, 3),
        "modelinfer_batch1_p99_ms": round(b1.p99_ms, 3),
        "modelinfer_batch64_rows_per_s": round(b64.req_per_s * BATCH),
        "modelinfer_batch64_req_per_s": round(b64.req_per_s),
        "modelinfer_batch64_p50_ms": round(b64.p50_ms, 3),
        "modelinfer_batch64_p99_ms": round(b64.p99_ms, 3),
        "raw_session_run_p50_us": round(raw_p50, 1),
        "raw_session_run_p99_us": round(percentile(limits.raw_us, 0.99), 1),
        "raw_session_run_batch64_p50_us": round(percentile(limits.raw_batch_us, 0.5), 1),
        "raw_session_run_default_options_p50_us": round(percentile(limits.raw_default_us, 0.5), 1),
        "raw_predict_models_p50_us": round(percentile(limits.raw_predict_us, 0.5), 1),
        "sklearn_predict_p50_us": round(percentile(limits.sklearn_us, 0.5), 1),
        "sklearn_predict_batch64_p50_us": round(percentile(limits.sklearn_batch_us, 0.5), 1),
        "predict_vs_raw": round(c1.p50_ms * 1000 / raw_p50, 1),
        "modelinfer_vs_raw": round(b1.req_per_s * raw_p50 / 1e6, 3),
        "targets": {
            "predict_p99_ms": TARGET_PREDICT_P99_MS,
            "predict_p99_met": c1.p99_ms <= TARGET_PREDICT_P99_MS,
            "modelinfer_batch1_req_per_s": TARGET_INFER_REQ_PER_S,
            "modelinfer_batch1_met": b1.req_per_s >= TARGET_INFER_REQ_PER_S,
        },
        "server_idle_cpu_per_s": round(served["idle_cpu"], 3),
        "phases": [phase(run) for run in (c1, c50, b1, b64)],
        "config": {
            "symbols": list(SYMBOLS),
            "bars_per_symbol": BARS,
            "reversal": REVERSAL,
            "lake_feature_rows": trained.lake_rows,
            "models": sorted(r.metadata.reference for r in trained.registered.values()),
            "train_s": round(trained.train_s, 1),
            "training_folds": TrainingConfig().folds,
            "gbm_iterations": TrainingConfig().gbm_iterations,
            "gbm_onnx_bytes": len(trained.registry.load(GBM).onnx),
            "gbm_train_rows": gbm_meta.train_rows,
            "predict_model": predict_model,
            "predict_return_model": trained.registered[RETURNS].metadata.reference,
            "infer_model": gbm_meta.reference,
            "batch": BATCH,
            "predict_calls": options.predict_calls,
            "predict_warmup_calls": options.predict_warmup,
            "clients": options.clients,
            "channels": options.channels,
            "infer_clients": options.infer_clients,
            "batch64_clients": options.batch64_clients,
            "duration_s": options.duration_s,
            "warmup_s": options.warmup_s,
            "limit_reps": options.limit_reps,
            "server_ready_s": round(served["ready_s"], 1),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "onnxruntime": onnxruntime.__version__,
            "scikit_learn": package_version("scikit-learn"),
            "grpcio": grpc.__version__,
        },
    }


def cpu_note(run: dict[str, Any]) -> str:
    return (
        f"p99 {run['p99_ms']:.2f} ms; cpu/s client {run['client_cpu_per_s']:.2f} "
        f"server {run['server_cpu_per_s']:.2f}"
    )


def table(result: dict[str, Any]) -> list[Row]:
    """The human-readable part: (key, value, note) rows."""
    c = result["config"]
    c1, c50, b1, b64 = result["phases"]
    return [
        (
            "predict_p50_ms",
            f"{result['predict_p50_ms']:.3f}",
            f"Predict, 1 client, sequential; model {c['predict_model']} + "
            f"{c['predict_return_model']}",
        ),
        (
            "predict_p99_ms",
            f"{result['predict_p99_ms']:.3f}",
            f"target <= {TARGET_PREDICT_P99_MS:g}"
            + ("" if result["targets"]["predict_p99_met"] else "  ** MISSED **"),
        ),
        ("predict_req_per_s_c1", f"{result['predict_req_per_s_c1']:,}", cpu_note(c1)),
        (
            "predict_req_per_s_c50",
            f"{result['predict_req_per_s_c50']:,}",
            f"{c['clients']} clients over {c['channels']} channels, closed loop; p50 "
            f"{result['predict_p50_ms_c50']:.2f} ms, " + cpu_note(c50),
        ),
        (
            "modelinfer_batch1_req_per_s",
            f"{result['modelinfer_batch1_req_per_s']:,}",
            f"{c['infer_model']}, {c['infer_clients']} clients; target >= "
            f"{TARGET_INFER_REQ_PER_S:,.0f}"
            + ("" if result["targets"]["modelinfer_batch1_met"] else "  ** MISSED **"),
        ),
        ("  modelinfer_batch1_p50_ms", f"{result['modelinfer_batch1_p50_ms']:.3f}", cpu_note(b1)),
        (
            "modelinfer_batch64_rows_per_s",
            f"{result['modelinfer_batch64_rows_per_s']:,}",
            f"{result['modelinfer_batch64_req_per_s']:,} calls/s x {c['batch']}, "
            f"{c['batch64_clients']} clients",
        ),
        (
            "  modelinfer_batch64_p50_ms",
            f"{result['modelinfer_batch64_p50_ms']:.3f}",
            cpu_note(b64),
        ),
        (
            "raw_session_run_p50_us",
            f"{result['raw_session_run_p50_us']:.1f}",
            f"bare InferenceSession.run, {GBM}, 1 row, server options: the limit",
        ),
        (
            "  raw_session_run_batch64_p50_us",
            f"{result['raw_session_run_batch64_p50_us']:.1f}",
            f"default options, 1 row: {result['raw_session_run_default_options_p50_us']:.1f} us",
        ),
        (
            "raw_predict_models_p50_us",
            f"{result['raw_predict_models_p50_us']:.1f}",
            f"the two sessions one Predict runs, 1 row each ({c['predict_model']}, "
            f"{c['predict_return_model']})",
        ),
        (
            "sklearn_predict_p50_us",
            f"{result['sklearn_predict_p50_us']:.1f}",
            f"{GBM} predict_proba, 1 row; 64 rows: "
            f"{result['sklearn_predict_batch64_p50_us']:,.1f} us",
        ),
        ("predict_vs_raw", f"{result['predict_vs_raw']:.1f}", "Predict p50 / raw run p50"),
        (
            "modelinfer_vs_raw",
            f"{result['modelinfer_vs_raw']:.3f}",
            "ModelInfer batch-1 calls/s / (1 / raw run p50)",
        ),
        (
            "server_idle_cpu_per_s",
            f"{result['server_idle_cpu_per_s']:.3f}",
            "no calls: features refresh, registry poll",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--predict-calls", type=int, default=5000, help="timed, 1 client")
    parser.add_argument("--predict-warmup", type=int, default=500, help="untimed, 1 client")
    parser.add_argument("--clients", type=int, default=50, help="concurrent Predict callers")
    parser.add_argument("--channels", type=int, default=5, help="channels the callers share")
    parser.add_argument("--infer-clients", type=int, default=32, help="ModelInfer batch 1")
    parser.add_argument("--batch64-clients", type=int, default=8, help="ModelInfer batch 64")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load phase")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before each")
    parser.add_argument("--limit-reps", type=int, default=4000, help="timed bare runs each")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="sample the server with py-spy into this folder, phase by phase",
    )
    args = parser.parse_args()
    options = Options(
        predict_calls=args.predict_calls,
        predict_warmup=args.predict_warmup,
        clients=args.clients,
        channels=args.channels,
        infer_clients=args.infer_clients,
        batch64_clients=args.batch64_clients,
        duration_s=args.duration,
        warmup_s=args.warmup,
        limit_reps=args.limit_reps,
        profile=args.profile,
    )
    with tempfile.TemporaryDirectory(prefix="financelake-bench-") as tmp:
        home = Path(tmp) / "prediction-home"
        home.mkdir()
        result = asyncio.run(measure(home, options))
    publish("predict", result, table(result))


if __name__ == "__main__":
    main()
