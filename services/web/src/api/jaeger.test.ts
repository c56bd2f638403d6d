import { describe, expect, it } from "vitest";
import { traceView, type JaegerTrace } from "./jaeger";

const span = (spanID: string, parent: string | null, startTime: number, duration: number, processID: string, tags: { key: string; type: string; value: unknown }[] = []) => ({
  traceID: "t",
  spanID,
  operationName: `op-${spanID}`,
  references: parent ? [{ refType: "CHILD_OF", traceID: "t", spanID: parent }] : [],
  startTime,
  duration,
  processID,
  tags,
});

describe("trace waterfall", () => {
  it("nests spans under their parents, orders siblings by start and measures from the trace start", () => {
    const trace: JaegerTrace = {
      traceID: "t",
      processes: { p1: { serviceName: "financelake-gateway" }, p2: { serviceName: "financelake-worker" } },
      spans: [
        span("c", "a", 1_000_600, 100, "p2", [{ key: "otel.status_code", type: "string", value: "ERROR" }]),
        span("a", null, 1_000_000, 2_000, "p1", [{ key: "span.kind", type: "string", value: "server" }]),
        span("b", "a", 1_000_200, 300, "p1"),
        span("orphan", "missing", 1_001_000, 500, "p2"),
      ],
    };
    const view = traceView(trace);
    expect(view.rows.map((row) => [row.spanId, row.depth])).toEqual([
      ["a", 0],
      ["b", 1],
      ["c", 1],
      ["orphan", 0],
    ]);
    expect(view.rows[0]).toMatchObject({ service: "financelake-gateway", kind: "server", startMs: 0, durationMs: 2 });
    expect(view.rows[2]).toMatchObject({ service: "financelake-worker", startMs: 0.6, error: true });
    expect(view.totalMs).toBe(2);
    expect(view.services).toEqual(["financelake-gateway", "financelake-worker"]);
  });
});
