"""Envoy's bootstrap for the gateway, built as plain dicts from the settings.

One source for both targets: `local` dials the servers at `settings.servers.host:<port>` and
listens on `settings.gateway.host`; `cluster` dials the Kubernetes services
(`financelake-<server>:<port>`) and listens on every interface. Nothing else differs, which
`tests/integration/test_gateway.py` asserts.

The HTTP filters run in this order, each for a reason:
1. local rate limit: overload is refused before any work (429, or RESOURCE_EXHAUSTED for gRPC);
2. CORS: answers the dev server's preflights before the gRPC filters see them;
3. compressor (gzip): on the way out it sees every answer after the filters below have
   shaped it, the UI's direct responses included, and compresses only the UI's types (HTML,
   JavaScript, CSS, SVG): never JSON, whose REST server streams must flow line by line
   rather than wait in a compression buffer, nor grpc-web;
4. grpc_web: turns browser grpc-web calls into plain gRPC;
5. grpc_json_transcoder: turns REST calls (the `google.api.http` paths) into gRPC, and
   rewrites the path to `/<service>/<method>`, so the routes below only know gRPC paths;
6. router.

Besides the gRPC routes, Envoy answers `/openapi.json` and the built UI (`gateway.ui`) itself.

With tracing on (`settings.tracing`), Envoy's OpenTelemetry tracer starts (or continues) the
trace of every request, exports its spans over OTLP like the servers do, passes the context
upstream in `traceparent`, and answers the trace id in `x-trace-id` (the UI links to it).
"""

from __future__ import annotations

import json
import urllib.parse
from enum import StrEnum
from pathlib import Path
from typing import Any

from financelake.services.settings import Settings

Json = dict[str, Any]

# Each server and the gRPC services it hosts; routes match `/<service>/`.
SERVER_SERVICES: dict[str, tuple[str, ...]] = {
    "ingestion": ("financelake.ingestion.v1.IngestionService",),
    "marketdata": ("financelake.marketdata.v1.MarketDataService",),
    "stream": ("financelake.stream.v1.StreamService",),
    "prediction": (
        "financelake.prediction.v1.PredictionService",
        "inference.GRPCInferenceService",
    ),
}
# The services with `google.api.http` rules: what the transcoder exposes as REST.
TRANSCODED_SERVICES: tuple[str, ...] = tuple(services[0] for services in SERVER_SERVICES.values())
# Streaming RPCs live as long as the client wants: their routes carry no timeout.
STREAMING_METHODS: tuple[str, ...] = (
    "/financelake.ingestion.v1.IngestionService/IngestTicks",
    "/financelake.ingestion.v1.IngestionService/ImportHistory",
    "/financelake.marketdata.v1.MarketDataService/WatchBars",
    "/financelake.stream.v1.StreamService/WatchAlerts",
)
CLUSTER_SERVICE_PREFIX = "financelake-"
# Health checks: a dead server leaves rotation within ~2 intervals; checks run at the same
# pace without traffic too, so `financelake status` and the first request see the truth.
_HEALTH_INTERVAL = "5s"
_HEALTH_TIMEOUT = "1s"
_CONNECT_TIMEOUT = "1s"
_GRPC_HEADERS = "content-type,x-grpc-web,x-user-agent,grpc-timeout,x-request-id,authorization"
_EXPOSED_HEADERS = "grpc-status,grpc-message,grpc-status-details-bin,x-request-id,x-trace-id"
TRACE_ID_HEADER = "x-trace-id"
OTLP_CLUSTER = "otlp"
TRACE_QUERY_CLUSTER = "trace_query"
# Jaeger's query API as the UI's trace view asks for it (Jaeger's own JSON API path).
TRACE_API_PREFIX = "/api/traces/"
# The UI's trace page (also a page prefix in `gateway.ui`).
UI_TRACE_PAGE = "/traces/"
CLUSTER_JAEGER_QUERY = ("jaeger-query", 16686)
# One JSON object per request on stdout; `%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%` is the REST path
# the client sent, before the transcoder rewrote it.
_ACCESS_LOG_FORMAT: dict[str, str] = {
    "time": "%START_TIME%",
    "request_id": "%REQ(X-REQUEST-ID)%",
    "trace_id": "%TRACE_ID%",
    "method": "%REQ(:METHOD)%",
    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    "grpc_path": "%REQ(:PATH)%",
    "protocol": "%PROTOCOL%",
    "status": "%RESPONSE_CODE%",
    "grpc_status": "%GRPC_STATUS(NUMBER)%",
    "flags": "%RESPONSE_FLAGS%",
    "duration_ms": "%DURATION%",
    "bytes_in": "%BYTES_RECEIVED%",
    "bytes_out": "%BYTES_SENT%",
    "upstream": "%UPSTREAM_CLUSTER%",
    "user_agent": "%REQ(USER-AGENT)%",
}
_TYPE = "type.googleapis.com/envoy.extensions."
# What the compressor gzips: the UI's text files. Not application/json (see above).
_COMPRESSED_TYPES: tuple[str, ...] = (
    "text/html",
    "text/javascript",
    "application/javascript",
    "text/css",
    "image/svg+xml",
)


class Target(StrEnum):
    """Where the rendered config runs."""

    LOCAL = "local"
    CLUSTER = "cluster"


def _socket(address: str, port: int) -> Json:
    return {"socket_address": {"address": address, "port_value": port}}


def _seconds(value: float) -> str:
    return f"{value:g}s"


def upstream_address(settings: Settings, target: Target, server: str) -> tuple[str, int]:
    """Where Envoy dials one server: the local host, or the server's Kubernetes service."""
    port = settings.servers.port_of(server)
    if target is Target.CLUSTER:
        return f"{CLUSTER_SERVICE_PREFIX}{server}", port
    return settings.servers.host, port


def _cluster(settings: Settings, target: Target, server: str) -> Json:
    host, port = upstream_address(settings, target, server)
    return {
        "name": server,
        "connect_timeout": _CONNECT_TIMEOUT,
        # STRICT_DNS in both targets: an IP literal resolves to itself, a service name
        # follows pod restarts.
        "type": "STRICT_DNS",
        "lb_policy": "ROUND_ROBIN",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": f"{_TYPE}upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
        "load_assignment": {
            "cluster_name": server,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _socket(host, port)}}]}],
        },
        "health_checks": [
            {
                "timeout": _HEALTH_TIMEOUT,
                "interval": _HEALTH_INTERVAL,
                "no_traffic_interval": _HEALTH_INTERVAL,
                "unhealthy_threshold": 2,
                "healthy_threshold": 1,
                # The server's own service, not "": it says SERVING only once that service's
                # dependencies are ready (the prediction server after its model loaded).
                "grpc_health_check": {"service_name": SERVER_SERVICES[server][0]},
            }
        ],
    }


OPENAPI_PATH = "/openapi.json"
# What the browser UI needs to know at run time (where traces are viewed), answered by Envoy.
UI_CONFIG_PATH = "/ui-config.json"
# Envoy caps a direct response body at 4 KiB unless told otherwise; the OpenAPI document is
# ~90 KB, a UI bundle's largest chunk ~1 MB.
_MAX_DIRECT_RESPONSE_BYTES = 4 * 1024 * 1024


def _routes(settings: Settings, openapi: str, ui: list[Json]) -> list[Json]:
    # The REST surface's OpenAPI document, answered by Envoy itself (inline, so the cluster
    # variant needs no extra mount). No google.api.http rule matches it: the transcoder
    # passes it through.
    routes: list[Json] = [
        {
            "match": {"path": OPENAPI_PATH},
            "direct_response": {"status": 200, "body": {"inline_string": openapi}},
            "response_headers_to_add": [
                {"header": {"key": "content-type", "value": "application/json"}}
            ],
        },
        {
            "match": {"path": UI_CONFIG_PATH},
            "direct_response": {"status": 200, "body": {"inline_string": _ui_config(settings)}},
            "response_headers_to_add": [
                {"header": {"key": "content-type", "value": "application/json"}},
                {"header": {"key": "cache-control", "value": "no-cache"}},
            ],
        },
    ]
    # Exact stream paths first: the first matching route wins, and they must not inherit the
    # unary timeout. `idle_timeout: 0s` also lifts the 5-minute stream idle timeout, since a
    # WatchAlerts stream may be quiet for longer.
    for path in STREAMING_METHODS:
        server = next(
            name
            for name, services in SERVER_SERVICES.items()
            if path.startswith(f"/{services[0]}/")
        )
        routes.append(
            {
                "match": {"path": path},
                "route": {"cluster": server, "timeout": "0s", "idle_timeout": "0s"},
            }
        )
    for server, services in SERVER_SERVICES.items():
        for service in services:
            routes.append(
                {
                    "match": {"prefix": f"/{service}/"},
                    "route": {
                        "cluster": server,
                        "timeout": _seconds(settings.gateway.request_timeout_s),
                    },
                }
            )
    if settings.tracing.enabled:
        routes.append(
            {
                "match": {"prefix": TRACE_API_PREFIX},
                "route": {
                    "cluster": TRACE_QUERY_CLUSTER,
                    "timeout": _seconds(settings.gateway.request_timeout_s),
                },
                # Looking at a trace is not itself traced.
                "tracing": {"overall_sampling": {"numerator": 0, "denominator": "HUNDRED"}},
            }
        )
    # The UI last: its paths never shadow an API route.
    return routes + ui


def _cors_policy(settings: Settings) -> Json:
    return {
        "@type": f"{_TYPE}filters.http.cors.v3.CorsPolicy",
        "allow_origin_string_match": [
            {"exact": origin} for origin in settings.gateway.cors_origins
        ],
        "allow_methods": "GET,POST,PUT,PATCH,DELETE,OPTIONS",
        "allow_headers": _GRPC_HEADERS,
        "expose_headers": _EXPOSED_HEADERS,
        "max_age": "86400",
    }


def _http_filters(settings: Settings, descriptor: Path) -> list[Json]:
    gateway = settings.gateway
    return [
        {
            "name": "envoy.filters.http.local_ratelimit",
            "typed_config": {
                "@type": f"{_TYPE}filters.http.local_ratelimit.v3.LocalRateLimit",
                "stat_prefix": "gateway_rate_limit",
                "token_bucket": {
                    "max_tokens": gateway.rate_limit_burst,
                    "tokens_per_fill": gateway.rate_limit_per_s,
                    "fill_interval": "1s",
                },
                # Both at 100%: the limit is on (the defaults leave it off).
                "filter_enabled": {
                    "runtime_key": "gateway_rate_limit_enabled",
                    "default_value": {"numerator": 100, "denominator": "HUNDRED"},
                },
                "filter_enforced": {
                    "runtime_key": "gateway_rate_limit_enforced",
                    "default_value": {"numerator": 100, "denominator": "HUNDRED"},
                },
                # DESIGN: overload is RESOURCE_EXHAUSTED for gRPC callers (REST gets 429).
                "rate_limited_as_resource_exhausted": True,
            },
        },
        {
            "name": "envoy.filters.http.cors",
            "typed_config": {"@type": f"{_TYPE}filters.http.cors.v3.Cors"},
        },
        {
            "name": "envoy.filters.http.compressor",
            "typed_config": {
                "@type": f"{_TYPE}filters.http.compressor.v3.Compressor",
                "response_direction_config": {
                    "common_config": {"content_type": list(_COMPRESSED_TYPES)}
                },
                "compressor_library": {
                    "name": "gzip",
                    "typed_config": {
                        "@type": f"{_TYPE}compression.gzip.compressor.v3.Gzip",
                        # zlib's own defaults (Envoy's are a 4 KiB window): a bundle is text
                        # with repeats far apart, and browsers cache it for good.
                        "window_bits": 15,
                        "memory_level": 8,
                    },
                },
            },
        },
        {
            "name": "envoy.filters.http.grpc_web",
            "typed_config": {"@type": f"{_TYPE}filters.http.grpc_web.v3.GrpcWeb"},
        },
        {
            "name": "envoy.filters.http.grpc_json_transcoder",
            "typed_config": {
                "@type": f"{_TYPE}filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder",
                "proto_descriptor": str(descriptor),
                "services": list(TRANSCODED_SERVICES),
                # Proto field names (snake_case) both ways, the names in the .proto files, the
                # Iceberg columns and the Python code; zero values are printed so a client
                # never has to know proto3 defaults.
                "print_options": {
                    "add_whitespace": False,
                    "always_print_primitive_fields": True,
                    "always_print_enums_as_ints": False,
                    "preserve_proto_field_names": True,
                    # Server streams as one JSON object per line, not one JSON array.
                    "stream_newline_delimited": True,
                },
                # A gRPC error becomes its HTTP status with the google.rpc.Status as JSON.
                "convert_grpc_status": True,
                # Unknown query parameters are a client's mistake: 400, not silently dropped.
                "ignore_unknown_query_parameters": False,
            },
        },
        {
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": f"{_TYPE}filters.http.router.v3.Router"},
        },
    ]


def _listener(
    settings: Settings, target: Target, descriptor: Path, openapi: str, ui: list[Json]
) -> Json:
    host = "0.0.0.0" if target is Target.CLUSTER else settings.gateway.host
    manager = {
        "@type": f"{_TYPE}filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "gateway",
        "codec_type": "AUTO",
        "generate_request_id": True,
        "always_set_request_id_in_response": True,
        "access_log": [
            {
                "name": "envoy.access_loggers.stdout",
                "typed_config": {
                    "@type": f"{_TYPE}access_loggers.stream.v3.StdoutAccessLog",
                    "log_format": {"json_format": _ACCESS_LOG_FORMAT},
                },
            }
        ],
        "route_config": {
            "name": "financelake",
            "max_direct_response_body_size_bytes": _MAX_DIRECT_RESPONSE_BYTES,
            "virtual_hosts": [
                {
                    "name": "financelake",
                    "domains": ["*"],
                    "routes": _routes(settings, openapi, ui),
                    "typed_per_filter_config": {"envoy.filters.http.cors": _cors_policy(settings)},
                    "response_headers_to_add": _trace_id_header(settings),
                }
            ],
        },
        "http_filters": _http_filters(settings, descriptor),
    }
    if settings.tracing.enabled:
        manager["tracing"] = _tracing(settings)
    return {
        "name": "gateway",
        "address": _socket(host, settings.gateway.port),
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": manager,
                    }
                ]
            }
        ],
    }


def _url_address(url: str, default_port: int) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def _plain_cluster(name: str, host: str, port: int, http2: bool) -> Json:
    """An upstream without health checks: the trace exporter's and the trace store's."""
    protocol: Json = {"http2_protocol_options": {}} if http2 else {"http_protocol_options": {}}
    return {
        "name": name,
        "connect_timeout": _CONNECT_TIMEOUT,
        "type": "STRICT_DNS",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": f"{_TYPE}upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": protocol,
            }
        },
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _socket(host, port)}}]}],
        },
    }


def _tracing_clusters(settings: Settings, target: Target) -> list[Json]:
    """Where Envoy exports its spans (OTLP/gRPC), and Jaeger's query API the UI reads."""
    otlp_host, otlp_port = _url_address(settings.tracing.otlp_endpoint, 4317)
    if target is Target.CLUSTER:
        query_host, query_port = CLUSTER_JAEGER_QUERY
    else:
        query_host, query_port = _url_address(settings.tracing.jaeger_query_url, 16686)
    return [
        _plain_cluster(OTLP_CLUSTER, otlp_host, otlp_port, http2=True),
        _plain_cluster(TRACE_QUERY_CLUSTER, query_host, query_port, http2=False),
    ]


def _tracing(settings: Settings) -> Json:
    return {
        "provider": {
            "name": "envoy.tracers.opentelemetry",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
                "grpc_service": {"envoy_grpc": {"cluster_name": OTLP_CLUSTER}, "timeout": "1s"},
                "service_name": "financelake-gateway",
            },
        },
        # New traces at the servers' ratio; a request arriving with a sampled traceparent
        # is traced whatever this says.
        "random_sampling": {"value": settings.tracing.sample_ratio * 100},
    }


def _ui_config(settings: Settings) -> str:
    """`{"trace_url": "/traces/{trace_id}"}` (the UI's trace view) with tracing on,
    `{"trace_url": null}` off."""
    trace_url = f"{UI_TRACE_PAGE}{{trace_id}}" if settings.tracing.enabled else None
    return json.dumps({"trace_url": trace_url})


def _trace_id_header(settings: Settings) -> list[Json]:
    if not settings.tracing.enabled:
        return []
    return [{"header": {"key": TRACE_ID_HEADER, "value": "%TRACE_ID%"}}]


def build_config(
    settings: Settings, target: Target, descriptor: Path, openapi: str, ui: list[Json]
) -> Json:
    """Envoy's bootstrap for `target`, its transcoder loading the descriptor set at
    `descriptor` (as `gateway.descriptor` writes it, an absolute path where Envoy runs),
    serving `openapi` (the document's text) at `/openapi.json` and the UI by the `ui` routes
    (`gateway.ui.ui_routes`)."""
    clusters = [_cluster(settings, target, server) for server in SERVER_SERVICES]
    if settings.tracing.enabled:
        clusters += _tracing_clusters(settings, target)
    return {
        "admin": {"address": _socket("127.0.0.1", settings.gateway.admin_port)},
        "static_resources": {
            "listeners": [_listener(settings, target, descriptor, openapi, ui)],
            "clusters": clusters,
        },
    }
