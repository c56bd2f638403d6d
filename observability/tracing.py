"""OpenTelemetry traces of every FinanceLake process, set up once per process from settings.

`configure_tracing` installs a TracerProvider that exports over OTLP/gRPC in batches; new
traces are sampled at `sample_ratio` where they start (`services.server.tracing`, Envoy),
and a span whose caller was sampled is always recorded.
When tracing is off nothing is installed: the API's no-op tracer answers, no span records,
and the helpers below return at their first check.

Our own spans only ever continue a trace: traces start at the gRPC server interceptor (or at
Envoy, for a browser's request), so code that finds no recording span creates none.

Kafka carries a trace in each record's headers (W3C `traceparent` and `tracestate`):
`kafka_headers` writes the current context, `context_from_headers` reads it back.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable, Mapping
from typing import Any

import grpc
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased
from opentelemetry.trace import Link, NonRecordingSpan, Span, SpanContext, SpanKind, StatusCode

from financelake.services.settings import TracingSettings

logger = logging.getLogger(__name__)
_TRACER = trace.get_tracer(__name__)
_ENDING: set[asyncio.Future[None]] = set()

# How Kafka clients hand record headers over: pairs, or a mapping.
RecordHeaders = Iterable[tuple[str, bytes]] | Mapping[str, bytes] | None
_TRACE_HEADERS = ("traceparent", "tracestate")
# Links a batch span keeps to the traces of its other records (a span's links are bounded).
MAX_LINKS = 32


def configure_tracing(settings: TracingSettings, service: str) -> TracerProvider | None:
    """Install this process's TracerProvider for `service` (`ingestion`, `worker`, ...),
    exporting over OTLP to `settings.otlp_endpoint`; None when tracing is off."""
    if not settings.enabled:
        return None
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": f"financelake-{service}", "service.namespace": "financelake"}
        ),
        # Roots are sampled where traces start (the gRPC server interceptor, Envoy), which
        # then skip untraced calls entirely; everything else follows its parent.
        sampler=ParentBased(ALWAYS_ON),
    )
    provider.add_span_processor(
        BatchSpanProcessor(
            OTLPSpanExporter(endpoint=settings.otlp_endpoint, insecure=True),
            schedule_delay_millis=settings.export_delay_ms,
        )
    )
    trace.set_tracer_provider(provider)
    logger.info(
        "tracing on",
        extra={"otlp_endpoint": settings.otlp_endpoint, "sample_ratio": settings.sample_ratio},
    )
    return provider


def recording() -> bool:
    """Whether the current span records: the cheap test every tracing helper starts with."""
    return trace.get_current_span().is_recording()


def kafka_headers(context: Context | None = None) -> list[tuple[str, bytes]] | None:
    """`context` (default: the current one) as Kafka record headers; None when its span
    does not record."""
    if not trace.get_current_span(context).is_recording():
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=context)
    return [(key, value.encode()) for key, value in carrier.items() if key in _TRACE_HEADERS]


def producer_span(topic: str, count: int | None = None) -> tuple[Span, list[tuple[str, bytes]]]:
    """A PRODUCER span for records sent to `topic` (`count` of them in one batch, if given),
    a child of the current span, and the Kafka headers carrying it; the caller ends it."""
    attributes: dict[str, str | int] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "publish",
        "messaging.destination.name": topic,
    }
    if count is not None:
        attributes["messaging.batch.message_count"] = count
    span = _TRACER.start_span(f"publish {topic}", kind=SpanKind.PRODUCER, attributes=attributes)
    return span, kafka_headers(trace.set_span_in_context(span)) or []


def context_from_headers(headers: RecordHeaders) -> Context | None:
    """The trace context a record's headers carry, or None."""
    if not headers:
        return None
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    carrier = {key: value.decode() for key, value in pairs if key in _TRACE_HEADERS}
    if "traceparent" not in carrier:
        return None
    return propagate.extract(carrier)


def batch_parent(headers: Iterable[RecordHeaders]) -> tuple[Context | None, list[Link]]:
    """Where a batch's span belongs: the trace of its first traced record (None when no
    record is traced), linked to the spans of up to MAX_LINKS of the others."""
    parent: Context | None = None
    links: list[Link] = []
    for record_headers in headers:
        context = context_from_headers(record_headers)
        if context is None:
            continue
        if parent is None:
            parent = context
        elif len(links) < MAX_LINKS:
            links.append(Link(trace.get_current_span(context).get_span_context()))
    return parent, links


def continued(spans: list[SpanContext]) -> tuple[Context | None, list[Link]]:
    """The parent and links of work that covers several earlier spans (a commit of many
    batches): the first one's trace, linked to the others."""
    if not spans:
        return None, []
    parent = trace.set_span_in_context(NonRecordingSpan(spans[0]))
    return parent, [Link(span) for span in spans[1 : MAX_LINKS + 1]]


class _ClientTracing(
    grpc.aio.UnaryUnaryClientInterceptor,  # type: ignore[misc]
    grpc.aio.UnaryStreamClientInterceptor,  # type: ignore[misc]
):
    """A CLIENT span per bounded call (unary, or a server stream) of our own clients, sampled
    at `sample_ratio` unless a span is already current, its context sent in the metadata
    (`traceparent`), where the server continues it. Untraced calls go through untouched."""

    def __init__(self, sample_ratio: float) -> None:
        self._sample_ratio = sample_ratio

    def _start(self, details: grpc.aio.ClientCallDetails) -> tuple[Any, Any]:
        if not recording() and random.random() >= self._sample_ratio:
            return None, details
        method = details.method.decode() if isinstance(details.method, bytes) else details.method
        service, _, name = method.lstrip("/").rpartition("/")
        span = _TRACER.start_span(
            method,
            kind=SpanKind.CLIENT,
            attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name},
        )
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        metadata = grpc.aio.Metadata(*(tuple(details.metadata or ())), *carrier.items())
        traced = grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )
        return span, traced

    @staticmethod
    def _end_with(span: Any, call: Any) -> Any:
        async def end(finished: Any) -> None:
            code = await finished.code()  # a coroutine in grpc.aio, instant once done
            span.set_attribute("rpc.grpc.status_code", code.name)
            if code is not grpc.StatusCode.OK:
                span.set_status(StatusCode.ERROR, code.name)
            span.end()

        def on_done(finished: Any) -> None:
            task = asyncio.ensure_future(end(finished))
            _ENDING.add(task)  # the loop holds tasks weakly
            task.add_done_callback(_ENDING.discard)

        call.add_done_callback(on_done)
        return call

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        """Unary calls."""
        span, details = self._start(details)
        call = await continuation(details, request)
        return call if span is None else self._end_with(span, call)

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        """Server streams (an import's progress)."""
        span, details = self._start(details)
        call = await continuation(details, request)
        return call if span is None else self._end_with(span, call)


def client_interceptors(settings: TracingSettings) -> list[grpc.aio.ClientInterceptor]:
    """What our own gRPC clients (the CLI, the demo feed) add to their channels."""
    return [_ClientTracing(settings.sample_ratio)] if settings.enabled else []
