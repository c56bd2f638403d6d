"""Jaeger v2 as the local trace store: its config, built from the tracing settings, and how to
run it and ask whether it answers (no Jaeger code: `make jaeger` builds the binary from its
Go module into the tool cache).

Jaeger receives OTLP/gRPC at `tracing.otlp_endpoint`, keeps the traces in memory and serves
its query API at `tracing.jaeger_query_url`; the UI's trace view reads that API through the
gateway (`/api/traces/<id>`). Jaeger's own web UI is not in its Go module (its assets are
built from a separate repository), so the UI draws the traces itself.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

from financelake.services.settings import Settings

_STORE = "memstore"
MAX_TRACES = 100_000


class JaegerNotFound(RuntimeError):
    """The Jaeger binary is not in the tool cache."""


def jaeger_binary(settings: Settings) -> Path:
    """The binary `make jaeger` builds, or JaegerNotFound saying how to get it."""
    binary = settings.cache_dir.expanduser() / "bin" / "jaeger"
    if not binary.is_file():
        raise JaegerNotFound(f"no Jaeger at {binary}: `make jaeger` builds it")
    return binary


def _host_port(url: str, default_port: int) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.hostname or '127.0.0.1'}:{parts.port or default_port}"


def jaeger_config(settings: Settings) -> str:
    """Jaeger's YAML config: OTLP/gRPC in, memory storage, the query API, nothing else (no
    other receiver, no self-telemetry port that could clash)."""
    tracing = settings.tracing
    config = {
        "service": {
            "extensions": ["jaeger_storage", "jaeger_query"],
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["batch"],
                    "exporters": ["jaeger_storage_exporter"],
                }
            },
            "telemetry": {"metrics": {"level": "none"}, "logs": {"level": "info"}},
        },
        "extensions": {
            "jaeger_storage": {"backends": {_STORE: {"memory": {"max_traces": MAX_TRACES}}}},
            "jaeger_query": {
                "storage": {"traces": _STORE},
                "http": {"endpoint": _host_port(tracing.jaeger_query_url, 16686)},
                # The gRPC query API is not used; it must bind somewhere all the same.
                "grpc": {"endpoint": "127.0.0.1:0"},
            },
        },
        "receivers": {
            "otlp": {"protocols": {"grpc": {"endpoint": _host_port(tracing.otlp_endpoint, 4317)}}}
        },
        "processors": {"batch": {}},
        "exporters": {"jaeger_storage_exporter": {"trace_storage": _STORE}},
    }
    return yaml.safe_dump(config, sort_keys=False)


def run_command(binary: Path, config: Path) -> list[str]:
    return [str(binary), "--config", str(config)]


def query_ready(settings: Settings, timeout: float = 1.0) -> tuple[bool, str]:
    """Whether Jaeger's query API answers (its service list)."""
    url = f"{settings.tracing.jaeger_query_url.rstrip('/')}/api/services"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200, f"HTTP {response.status}"
    except (urllib.error.URLError, OSError) as exc:
        return False, str(exc)
