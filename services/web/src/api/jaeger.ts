// A trace as Jaeger's query API answers it (`GET /api/traces/<id>`, through the gateway), and
// the rows of its waterfall. Times in the API are microseconds since the epoch.

export interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  references?: { refType: string; traceID: string; spanID: string }[];
  startTime: number;
  duration: number;
  processID: string;
  tags?: { key: string; type: string; value: unknown }[];
}

export interface JaegerTrace {
  traceID: string;
  spans: JaegerSpan[];
  processes: Record<string, { serviceName: string }>;
}

export interface TraceRow {
  spanId: string;
  depth: number;
  service: string;
  operation: string;
  kind: string;
  /** Milliseconds from the trace's first span start. */
  startMs: number;
  durationMs: number;
  error: boolean;
}

export interface TraceView {
  rows: TraceRow[];
  totalMs: number;
  services: string[];
}

function tag(span: JaegerSpan, key: string): unknown {
  return span.tags?.find((candidate) => candidate.key === key)?.value;
}

/**
 * Spans in tree order (each after its parent, siblings by start), with their depth and their
 * offset from the trace's start. A span whose parent is missing (not exported yet, or from a
 * process that does not trace) is a root.
 */
export function traceView(trace: JaegerTrace): TraceView {
  const byId = new Map(trace.spans.map((span) => [span.spanID, span]));
  const children = new Map<string, JaegerSpan[]>();
  const roots: JaegerSpan[] = [];
  for (const span of trace.spans) {
    const parent = span.references?.find((reference) => reference.refType === "CHILD_OF" && byId.has(reference.spanID));
    if (parent) children.set(parent.spanID, [...(children.get(parent.spanID) ?? []), span]);
    else roots.push(span);
  }
  const start = Math.min(...trace.spans.map((span) => span.startTime));
  const end = Math.max(...trace.spans.map((span) => span.startTime + span.duration));
  const rows: TraceRow[] = [];
  const visit = (span: JaegerSpan, depth: number): void => {
    rows.push({
      spanId: span.spanID,
      depth,
      service: trace.processes[span.processID]?.serviceName ?? span.processID,
      operation: span.operationName,
      kind: String(tag(span, "span.kind") ?? ""),
      startMs: (span.startTime - start) / 1000,
      durationMs: span.duration / 1000,
      error: tag(span, "error") === true || tag(span, "otel.status_code") === "ERROR",
    });
    for (const child of [...(children.get(span.spanID) ?? [])].sort((a, b) => a.startTime - b.startTime)) visit(child, depth + 1);
  };
  for (const root of roots.sort((a, b) => a.startTime - b.startTime)) visit(root, 0);
  const services = [...new Set(rows.map((row) => row.service))];
  return { rows, totalMs: trace.spans.length ? (end - start) / 1000 : 0, services };
}

/** The trace with id `traceId`, or null while the store does not have it (yet). */
export async function loadTrace(traceId: string, signal: AbortSignal): Promise<JaegerTrace | null> {
  const base = import.meta.env.VITE_GATEWAY_URL ?? window.location.origin;
  const response = await fetch(new URL(`/api/traces/${encodeURIComponent(traceId)}`, base), { signal });
  if (response.status === 404) return null;
  if (!response.ok) throw new Error(`the trace store answered HTTP ${response.status}`);
  const body = (await response.json()) as { data?: JaegerTrace[] | null };
  return body.data?.[0] ?? null;
}
