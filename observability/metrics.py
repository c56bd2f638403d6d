"""Prometheus metrics of every FinanceLake process, on the process's default registry.

gRPC servers count and time each RPC with go-grpc-prometheus' series names
(`grpc_server_started_total`, `grpc_server_handled_total{grpc_code}`,
`grpc_server_handling_seconds`), the RED series existing dashboards and alert rules already
know; everything else is `financelake_*`. Each process serves its registry at
`http://<metrics.host>:<port>/metrics` (`serve_metrics`), one port per process (settings).

The series are defined here, one place for names and help texts; the code that observes them
lives with what it measures (`financelake.services.server.metrics` for RPCs). Hot paths pay
one pre-bound counter increment and one histogram observation per RPC or per batch, never
per trade.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge, Histogram, start_http_server

logger = logging.getLogger(__name__)

# From half a millisecond (a GetQuote) to half a minute (a unary call's timeout).
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
_RPC_LABELS = ("grpc_service", "grpc_method", "grpc_type")

RPC_STARTED = Counter("grpc_server_started", "RPCs started on the server.", _RPC_LABELS)
RPC_HANDLED = Counter(
    "grpc_server_handled",
    "RPCs completed on the server, whatever their status.",
    (*_RPC_LABELS, "grpc_code"),
)
RPC_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time from an RPC's start to its end on the server (a stream's whole life).",
    _RPC_LABELS,
    buckets=LATENCY_BUCKETS,
)
RPC_MESSAGES_SENT = Counter(
    "grpc_server_msg_sent", "Messages the server sent on its streams.", _RPC_LABELS
)

# The stream worker (`financelake.stream.agents.driver`).
AGENT_RECORDS = Counter(
    "financelake_agent_records", "Kafka records an agent processed.", ("agent",)
)
LAKE_COMMIT_SECONDS = Histogram(
    "financelake_lake_commit_seconds",
    "Duration of one agent's Iceberg commit (Parquet write and catalog update).",
    ("agent",),
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
LAKE_COMMITTED_ROWS = Counter(
    "financelake_lake_committed_rows", "Rows an agent committed to its lake table.", ("agent",)
)
LAKE_COMMITTED_FILES = Counter(
    "financelake_lake_committed_files",
    "Data files an agent's commits added to its lake table (compaction's input).",
    ("agent",),
)

# The prediction server (`financelake.models`).
INFERENCE_SECONDS = Histogram(
    "financelake_inference_seconds",
    "ONNX Runtime run time of one call, whatever its batch size.",
    ("model",),
    buckets=(0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.1),
)
MODEL_SERVED_VERSION = Gauge(
    "financelake_model_served_version",
    "The version of each model name served for an interval (its newest loaded).",
    ("model", "interval"),
)
MODELS_LOADED = Gauge("financelake_models_loaded", "Models the prediction server serves.")


def serve_metrics(host: str, port: int) -> int:
    """Expose this process's registry at `http://host:port/metrics` from a daemon thread;
    the port bound (0 picks a free one)."""
    server, _ = start_http_server(port, addr=host)
    bound: int = server.server_port
    logger.info("metrics served", extra={"address": f"{host}:{bound}", "path": "/metrics"})
    return bound
