"""Trace context in Kafka headers, gRPC metadata and log lines, with no exporter: the
helpers alone."""

from __future__ import annotations

import json
import logging

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from financelake.observability.tracing import (
    MAX_LINKS,
    batch_parent,
    context_from_headers,
    continued,
    kafka_headers,
)
from financelake.services.server.logs import JsonFormatter
from financelake.services.server.tracing import call_trace_parent

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736


def _span(span_id: int) -> SpanContext:
    return SpanContext(
        TRACE_ID, span_id, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED)
    )


def _headers(span_id: int) -> list[tuple[str, bytes]]:
    return [("traceparent", f"00-{TRACE_ID:032x}-{span_id:016x}-01".encode())]


def test_no_recording_span_means_no_headers() -> None:
    assert kafka_headers() is None
    # A sampled context that does not record here (a remote parent) writes none either.
    assert kafka_headers(trace.set_span_in_context(NonRecordingSpan(_span(7)))) is None


def test_headers_of_a_record_give_its_span_back() -> None:
    context = context_from_headers([("other", b"x"), *_headers(0xA1)])
    assert context is not None
    assert trace.get_current_span(context).get_span_context().span_id == 0xA1
    assert context_from_headers({"traceparent": _headers(0xA2)[0][1]}) is not None
    assert context_from_headers([("other", b"x")]) is None
    assert context_from_headers(None) is None


def test_a_batch_belongs_to_its_first_traced_record_and_links_the_others() -> None:
    headers = [None, _headers(1), [("other", b"x")], *(_headers(i) for i in range(2, 50))]
    parent, links = batch_parent(headers)
    assert parent is not None
    assert trace.get_current_span(parent).get_span_context().span_id == 1
    assert [link.context.span_id for link in links] == list(range(2, 2 + MAX_LINKS))
    assert batch_parent([None, [("other", b"x")]]) == (None, [])


def test_a_commit_continues_the_first_batch_it_covers() -> None:
    parent, links = continued([_span(5), _span(6)])
    assert parent is not None
    assert trace.get_current_span(parent).get_span_context().span_id == 5
    assert [link.context.span_id for link in links] == [6]
    assert continued([]) == (None, [])


def test_a_log_line_inside_a_span_names_its_trace_and_span() -> None:
    record = logging.makeLogRecord({"msg": "committed", "levelname": "INFO"})
    assert "trace_id" not in json.loads(JsonFormatter().format(record))
    with trace.use_span(NonRecordingSpan(_span(0xBEEF))):
        line = json.loads(JsonFormatter().format(record))
    assert (line["trace_id"], line["span_id"]) == (f"{TRACE_ID:032x}", f"{0xBEEF:016x}")


def test_a_call_continues_a_sampled_caller_and_samples_only_new_roots() -> None:
    sampled = [("traceparent", f"00-{TRACE_ID:032x}-{0xC1:016x}-01"), ("x-other", "1")]
    unsampled = [("traceparent", f"00-{TRACE_ID:032x}-{0xC2:016x}-00")]

    parent = call_trace_parent(sampled, sample_ratio=0.0)
    assert isinstance(parent, Context)
    assert trace.get_current_span(parent).get_span_context().span_id == 0xC1
    assert call_trace_parent(unsampled, sample_ratio=1.0) is False  # the caller decided
    assert call_trace_parent((), sample_ratio=1.0) is True
    assert call_trace_parent(None, sample_ratio=0.0) is False
    drawn = [call_trace_parent((), sample_ratio=0.25) for _ in range(4000)]
    assert 800 < drawn.count(True) < 1200
