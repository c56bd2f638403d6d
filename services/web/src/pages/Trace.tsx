// One trace as a waterfall: every span of every process (gateway, servers, worker), nested
// under its parent, placed on the trace's timeline.
import { loadTrace, traceView } from "../api/jaeger";
import { useAsync } from "../api/hooks";
import { Empty, ErrorView, Loading } from "../components/StatusViews";

const REFRESH_MS = 3_000;

export function TracePage({ traceId }: { traceId: string }) {
  // Refreshed: the worker's spans arrive seconds after the request's.
  const trace = useAsync((signal) => loadTrace(traceId, signal), [traceId], REFRESH_MS);
  return (
    <section aria-labelledby="trace-title">
      <header className="page-header">
        <h1 id="trace-title">Trace</h1>
        <code>{traceId}</code>
      </header>
      {trace.status === "loading" && <Loading what="the trace" />}
      {trace.status === "error" && (
        <ErrorView error={trace.error} what="the trace" onRetry={trace.reload} />
      )}
      {trace.status === "ready" && trace.data === null && (
        <Empty title="This trace is not in the store (yet)">
          Spans reach Jaeger a few seconds after they end, and only while tracing is on
          (<code>FINANCELAKE_TRACING__ENABLED=true make up</code>). This page looks again every few seconds.
        </Empty>
      )}
      {trace.status === "ready" && trace.data !== null && <Waterfall view={traceView(trace.data)} />}
    </section>
  );
}

function Waterfall({ view }: { view: ReturnType<typeof traceView> }) {
  const total = view.totalMs || 1;
  return (
    <>
      <p className="muted" data-testid="trace-summary">
        {view.rows.length} spans · {view.totalMs.toFixed(2)} ms · {view.services.join(", ")}
      </p>
      <div className="table-scroll">
        <table className="waterfall">
          <thead>
            <tr>
              <th scope="col">Service</th>
              <th scope="col">Operation</th>
              <th scope="col" className="timeline">Timeline</th>
              <th scope="col" className="num">Duration</th>
            </tr>
          </thead>
          <tbody>
            {view.rows.map((row) => (
              <tr key={row.spanId} data-testid="trace-span" className={row.error ? "down" : ""}>
                <td>{row.service}</td>
                <td style={{ paddingLeft: `${0.6 + row.depth * 1.1}rem` }}>
                  {row.operation} {row.kind && <span className="muted">({row.kind})</span>}
                </td>
                <td className="timeline">
                  <span
                    className="bar"
                    style={{ marginLeft: `${(row.startMs / total) * 100}%`, width: `${Math.max((row.durationMs / total) * 100, 0.5)}%` }}
                    title={`starts at ${row.startMs.toFixed(2)} ms`}
                  />
                </td>
                <td className="num">{row.durationMs.toFixed(2)} ms</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}
