"""The one typed settings object, read once per process from `FINANCELAKE_*` variables.

Nested sections use `__` (e.g. `FINANCELAKE_BROKER__PORT=19092`). The external broker is
the flat `FINANCELAKE_KAFKA_BOOTSTRAP`: when it is set nothing is provisioned locally. How
clients reach it (PLAINTEXT or TLS) is the `kafka` section, `FINANCELAKE_KAFKA__*`; the two
names do not collide, since pydantic-settings only reads `FINANCELAKE_KAFKA__`-prefixed
variables into the section.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NestedSecretsSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

SECRETS_DIR_VARIABLE = "FINANCELAKE_SECRETS_DIR"
"""A folder of secret files, one per variable and named like it (e.g.
`FINANCELAKE_SOURCES__ALPHAVANTAGE_API_KEY`): how the Helm chart passes a Kubernetes
Secret, mounted as a volume, so that no secret sits in the environment. Variables win."""


class KafkaClientSettings(BaseModel):
    """How every Kafka client of the project connects to the brokers: the ingestion producer,
    the servers' consumers and admin clients, the stream worker (Faust), `financelake status`
    and `topics create`. `financelake.services.kafka_security` turns it into each library's
    options.

    `FINANCELAKE_KAFKA__SECURITY_PROTOCOL`: `PLAINTEXT` (the default; the broker `financelake
    up` provisions) or `SSL`, TLS to an external broker named by `FINANCELAKE_KAFKA_BOOTSTRAP`
    (Amazon MSK's TLS listener, port 9094).
    `FINANCELAKE_KAFKA__SSL_CA_FILE`: PEM file of the CAs the broker certificates chain to;
    unset, the system trust store, which is what MSK needs (its certificates chain to Amazon's
    public CAs). Only with SSL.
    `FINANCELAKE_KAFKA__SSL_CHECK_HOSTNAME`: whether the certificate must name the host
    connected to (default true); the chain is verified either way.
    """

    security_protocol: Literal["PLAINTEXT", "SSL"] = Field(
        default="PLAINTEXT", description="PLAINTEXT, or SSL (TLS, server certificate verified)"
    )
    ssl_ca_file: Path | None = Field(
        default=None,
        description="PEM CA bundle the broker certificates are verified against; unset: the "
        "system trust store",
    )
    ssl_check_hostname: bool = Field(
        default=True, description="Require the broker certificate to name the host dialled"
    )

    @field_validator("security_protocol", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        # librdkafka and Kafka's own clients take the protocol in any case.
        return value.upper() if isinstance(value, str) else value

    @field_validator("ssl_ca_file")
    @classmethod
    def _readable_file(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        path = value.expanduser().resolve()  # child processes may run from another cwd
        if not path.is_file():
            raise ValueError(f"the CA file {path} does not exist or is not a file")
        return path

    @model_validator(mode="after")
    def _ca_only_with_ssl(self) -> Self:
        if self.ssl_ca_file is not None and self.security_protocol != "SSL":
            raise ValueError(
                "FINANCELAKE_KAFKA__SSL_CA_FILE is set but FINANCELAKE_KAFKA__SECURITY_PROTOCOL "
                "is PLAINTEXT: set the protocol to SSL, or unset the CA file"
            )
        return self

    @property
    def tls(self) -> bool:
        """True when clients speak TLS to the brokers."""
        return self.security_protocol == "SSL"


class BrokerSettings(BaseModel):
    """The local single-node Kafka (KRaft broker + controller) the project provisions."""

    host: str = "127.0.0.1"
    port: int = Field(default=9092, ge=1, le=65535)
    controller_port: int = Field(default=9093, ge=1, le=65535)
    kafka_version: str = "4.1.1"
    scala_version: str = "2.13"
    heap: str = Field(default="768m", description="JVM -Xmx/-Xms for the broker")
    start_timeout_s: float = Field(default=120.0, gt=0)


class TopicSettings(BaseModel):
    """Topic names and shape; the names are part of the data contract (versioned)."""

    ticks: str = "financelake.ticks.v1"
    bars: str = "financelake.bars.v1"
    alerts: str = "financelake.alerts.v1"
    actions: str = "financelake.actions.v1"
    """Dividends and splits reported by imports."""
    partitions: int = Field(default=6, ge=1)
    replication_factor: int = Field(default=1, ge=1)


class ServerSettings(BaseModel):
    """Where the four gRPC servers listen and how they stop."""

    host: str = "127.0.0.1"
    ingestion_port: int = Field(default=50051, ge=0, le=65535)
    marketdata_port: int = Field(default=50052, ge=0, le=65535)
    stream_port: int = Field(default=50053, ge=0, le=65535)
    prediction_port: int = Field(default=50054, ge=0, le=65535)
    grace_period_s: float = Field(default=5.0, ge=0, description="SIGTERM drain time")
    max_message_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)

    def port_of(self, service: str) -> int:
        """Port of one service by its short name (`ingestion`, `marketdata`, ...)."""
        port: int = getattr(self, f"{service}_port")
        return port


class IngestionSettings(BaseModel):
    """Limits and Kafka producer behaviour of the ingestion service."""

    max_future_skew_s: float = Field(
        default=300.0, gt=0, description="Trades later than now + this are refused"
    )
    publish_timeout_s: float = Field(
        default=10.0, gt=0, description="Longest wait for Kafka's acknowledgement of a call"
    )
    max_in_flight_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024 * 1024,
        description="Bytes awaiting Kafka acknowledgement before callers get RESOURCE_EXHAUSTED",
    )
    # 0: aiokafka keeps one produce request in flight per broker, so under load batches
    # fill while the previous request is out; a linger only delays a lone caller
    # (bench-ingest: p50 of one batch 8.8 ms at 5 ms linger, 1.9 ms at 0; same throughput).
    linger_ms: int = Field(default=0, ge=0, description="Producer batching delay")
    csv_import_dir: Path | None = Field(
        default=None,
        description="Folder whose CSV files ImportHistory may read by path; unset: bytes only",
    )
    max_request_bytes: int = Field(
        default=1024 * 1024,
        ge=64 * 1024,
        description="Largest Kafka produce request (broker default message.max.bytes ~1 MiB)",
    )


class SourceSettings(BaseModel):
    """External market-data sources used by ImportHistory."""

    alphavantage_api_key: SecretStr | None = Field(
        default=None, description="FINANCELAKE_SOURCES__ALPHAVANTAGE_API_KEY; never commit it"
    )
    alphavantage_base_url: str = "https://www.alphavantage.co/query"
    alphavantage_requests_per_minute: float = Field(default=5.0, gt=0)
    http_timeout_s: float = Field(default=30.0, gt=0)


class LakeSettings(BaseModel):
    """The Iceberg catalog. Unset: a SqlCatalog on SQLite with a file warehouse under
    `home/lake`; otherwise pyiceberg catalog properties (e.g. type=glue, warehouse=s3://...)."""

    catalog_name: str = "financelake"
    catalog_properties: dict[str, str] = Field(default_factory=dict)


class StreamSettings(BaseModel):
    """The Faust worker (`financelake stream worker`): its consumer group, commit policy and
    the rules of its agents."""

    app_id: str = Field(
        default="financelake-stream",
        description="Faust app id; also the Kafka consumer group of every agent",
    )
    web_enabled: bool = True
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=6066, ge=0, le=65535)
    # 3 s keeps publish -> visible under 5 s at p95 (bench-stream) with one snapshot per
    # table every few seconds; `financelake lake compact` folds the small files later.
    commit_interval_s: float = Field(
        default=3.0, gt=0, description="Longest wait between two Iceberg commits of an agent"
    )
    commit_max_records: int = Field(
        default=2000,
        ge=1,
        description="Kafka records (batches) an agent accumulates before it commits early",
    )
    take_max_records: int = Field(
        default=500, ge=1, description="Records an agent processes in one step"
    )
    # aiokafka fetches a partition again only once all its fetched records are consumed, so
    # each fetch is a pause; 4 MiB makes them a quarter as many as Faust's 1 MiB
    # (bench-stream: 2.28 M -> 2.58 M trades/s).
    fetch_partition_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        description="Most bytes one fetch brings of a partition (at least its largest record)",
    )
    take_within_s: float = Field(
        default=0.05,
        gt=0,
        description="Longest an agent waits to fill a step; bounds bar and alert latency",
    )
    bar_grace_s: float = Field(
        default=10.0,
        ge=0,
        description="Event-time lateness a 1-minute bar waits for before it closes",
    )
    bar_retention_s: float = Field(
        default=60.0,
        ge=0,
        description="How long after closing a bar still takes late trades (as an amendment)",
    )
    alert_window: int = Field(
        default=60, ge=5, description="Bars of history the z-score alert rules look at"
    )
    alert_z_threshold: float = Field(
        default=4.0, gt=0, description="|z| at or beyond which a rule raises an alert"
    )


class ModelSettings(BaseModel):
    """The model registry and how `financelake models train` validates."""

    registry_uri: str | None = Field(
        default=None,
        description="Where model versions live: a local folder or s3://bucket/prefix "
        "(pyarrow S3 options as query parameters); unset: home/models",
    )
    validation_folds: int = Field(
        default=5, ge=2, description="Walk-forward folds each model is validated on"
    )
    min_training_rows: int = Field(
        default=1000, ge=1, description="Fewest usable gold.features rows a model is trained on"
    )


class PredictionSettings(BaseModel):
    """How the prediction server keeps its models and features current."""

    reload_interval_s: float = Field(
        default=2.0, gt=0, description="How often the registry is checked for new versions"
    )
    refresh_interval_s: float = Field(
        default=1.0, gt=0, description="How often gold.features is brought up to date"
    )
    feature_lookback_days: float = Field(
        default=15.0,
        gt=0,
        description="Symbols whose newest bar is older are not served (covers the last "
        "closed weekly bar and long weekends)",
    )


class DemoSettings(BaseModel):
    """The synthetic demo market `financelake up` loads so the stack is never empty."""

    enabled: bool = True
    equities: list[str] = Field(default_factory=lambda: ["AAPL", "MSFT", "NVDA", "SPY"])
    """Traded on the XNYS calendar (New York hours, holidays)."""
    crypto: list[str] = Field(default_factory=lambda: ["BTC-USD", "ETH-USD"])
    """Traded around the clock, so the live feed always has something to show."""
    history_days: float = Field(default=5.0, gt=0, le=365)
    seed: int = 42
    tick_interval_s: float = Field(default=1.0, gt=0, description="Live feed publish period")


class GatewaySettings(BaseModel):
    """The Envoy gateway (`financelake gateway render`): grpc-web and REST in front of the four
    servers, on one port."""

    enabled: bool = Field(default=True, description="`financelake up` runs Envoy")
    host: str = Field(
        default="127.0.0.1", description="Listener address locally (the cluster binds 0.0.0.0)"
    )
    port: int = Field(default=8080, ge=0, le=65535)
    admin_port: int = Field(
        default=9901, ge=0, le=65535, description="Envoy admin, always on 127.0.0.1"
    )
    cors_origins: list[str] = Field(
        default_factory=lambda: ["http://localhost:5173"],
        description="Browser origins allowed cross-origin (the Vite dev server)",
    )
    rate_limit_per_s: int = Field(
        default=1000, ge=1, description="Requests per second the listener admits (local limit)"
    )
    rate_limit_burst: int = Field(
        default=2000, ge=1, description="Requests admitted at once before the limit applies"
    )
    request_timeout_s: float = Field(
        default=30.0, gt=0, description="Route timeout of unary RPCs; streams have none"
    )
    descriptor_path: Path = Field(
        default=Path("gen/descriptor/financelake.binpb"),
        description="The descriptor set (`make gen`) the REST transcoder reads",
    )
    openapi_path: Path = Field(
        default=Path("gen/openapi/financelake.openapi.json"),
        description="The OpenAPI document (`make gen`) served at /openapi.json",
    )
    ui_path: Path = Field(
        default=Path("services/web/dist"),
        description="The built UI (`make web`) Envoy serves at `/`",
    )


class MetricsSettings(BaseModel):
    """Where each process exposes its Prometheus metrics (`GET /metrics`); one port each."""

    enabled: bool = Field(default=True, description="Serve each process's metrics endpoint")
    host: str = Field(default="127.0.0.1", description="Listen address (the cluster: 0.0.0.0)")
    ingestion_port: int = Field(default=9461, ge=0, le=65535)
    marketdata_port: int = Field(default=9462, ge=0, le=65535)
    stream_port: int = Field(default=9463, ge=0, le=65535)
    prediction_port: int = Field(default=9464, ge=0, le=65535)
    worker_port: int = Field(default=9465, ge=0, le=65535, description="The stream worker")

    def port_of(self, process: str) -> int:
        """Metrics port of one process by its short name (`ingestion`, ..., `worker`)."""
        port: int = getattr(self, f"{process}_port")
        return port


class TracingSettings(BaseModel):
    """OpenTelemetry traces, exported over OTLP/gRPC; off by default, and off costs nothing
    (no interceptor, no exporter, no Kafka header)."""

    enabled: bool = False
    otlp_endpoint: str = Field(
        default="http://127.0.0.1:4317", description="OTLP/gRPC receiver (a Collector, Jaeger)"
    )
    sample_ratio: float = Field(
        default=1.0, ge=0, le=1, description="Share of new traces recorded (parents decide)"
    )
    export_delay_ms: int = Field(
        default=2000, ge=1, description="Longest a finished span waits for its export batch"
    )
    jaeger_query_url: str = Field(
        default="http://127.0.0.1:16686",
        description="Jaeger's query API, which the UI's trace view reads through the gateway",
    )
    local_jaeger: bool = Field(
        default=True,
        description="`financelake up` runs Jaeger (`make jaeger`) at the OTLP endpoint and "
        "query URL when tracing is on",
    )


class Settings(BaseSettings):
    """Everything a FinanceLake process is configured with."""

    model_config = SettingsConfigDict(
        env_prefix="FINANCELAKE_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        secrets_dir = os.environ.get(SECRETS_DIR_VARIABLE)
        if not secrets_dir:
            return init_settings, env_settings, dotenv_settings
        secret_files = NestedSecretsSettingsSource(
            file_secret_settings,
            secrets_dir=secrets_dir,
            secrets_dir_missing="error",
            secrets_nested_delimiter="__",
        )
        return init_settings, env_settings, dotenv_settings, secret_files

    home: Path = Field(
        default=Path(".financelake"),
        description="Runtime state: broker data, logs, pid files, the local lake",
    )
    cache_dir: Path = Field(
        default=Path.home() / ".cache" / "financelake",
        description="Downloads reused across clones: Kafka jars, tools",
    )
    kafka_bootstrap: str | None = Field(
        default=None, description="Use this Kafka instead of provisioning one"
    )
    kafka: KafkaClientSettings = KafkaClientSettings()
    log_level: str = "INFO"
    broker: BrokerSettings = BrokerSettings()
    topics: TopicSettings = TopicSettings()
    servers: ServerSettings = ServerSettings()
    ingestion: IngestionSettings = IngestionSettings()
    sources: SourceSettings = SourceSettings()
    demo: DemoSettings = DemoSettings()
    lake: LakeSettings = LakeSettings()
    stream: StreamSettings = StreamSettings()
    models: ModelSettings = ModelSettings()
    prediction: PredictionSettings = PredictionSettings()
    gateway: GatewaySettings = GatewaySettings()
    metrics: MetricsSettings = MetricsSettings()
    tracing: TracingSettings = TracingSettings()

    @model_validator(mode="after")
    def _tls_needs_an_external_broker(self) -> Self:
        if self.kafka.tls and self.kafka_bootstrap is None:
            raise ValueError(
                "FINANCELAKE_KAFKA__SECURITY_PROTOCOL=SSL needs FINANCELAKE_KAFKA_BOOTSTRAP: the "
                "broker FinanceLake provisions itself listens PLAINTEXT only"
            )
        return self

    @property
    def bootstrap_servers(self) -> str:
        """The Kafka bootstrap address clients connect to."""
        return self.kafka_bootstrap or f"{self.broker.host}:{self.broker.port}"

    @property
    def uses_external_kafka(self) -> bool:
        """True when a broker was named, so nothing is provisioned."""
        return self.kafka_bootstrap is not None
