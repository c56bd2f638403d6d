// Alerts: the newest past alerts from gold.alerts, then new ones live from WatchAlerts.
import type { Alert } from "@gen/financelake/common/v1/alert_pb.js";
import { useState, type FormEvent } from "react";
import { stream } from "../api/clients";
import { ALERT_KIND_LABELS, ALERT_SEVERITY_LABELS, formatPrice, formatTime, parseSymbols, toDate, toSeconds } from "../api/convert";
import { useAsync, useServerStream } from "../api/hooks";
import { Empty, ErrorView, LiveBadge, Loading } from "../components/StatusViews";
import { Link, symbolPath } from "../router";

const PAST_ALERTS = 100;
const KEPT_ALERTS = 500;

/** Alerts newest first, without repeats (a live alert may also be in the first page). */
export function mergeAlerts(current: readonly Alert[], incoming: readonly Alert[]): Alert[] {
  const byId = new Map(current.map((alert) => [alert.alertId, alert]));
  for (const alert of incoming) byId.set(alert.alertId, alert);
  return [...byId.values()]
    .sort((a, b) => (toSeconds(b.detectedTime) ?? 0) - (toSeconds(a.detectedTime) ?? 0))
    .slice(0, KEPT_ALERTS);
}

export function AlertsPage() {
  const [filterText, setFilterText] = useState("");
  const [symbols, setSymbols] = useState<string[]>([]);
  const [liveAlerts, setLiveAlerts] = useState<Alert[]>([]);
  const key = symbols.join(",");
  const past = useAsync((signal) => stream.listAlerts({ symbols, pageSize: PAST_ALERTS }, { signal }), [key]);
  const live = useServerStream(
    (options) => stream.watchAlerts({ symbols }, options),
    (response) => {
      if (response.alert) setLiveAlerts((alerts) => mergeAlerts(alerts, [response.alert!]));
    },
    [key],
  );
  const applyFilter = (event: FormEvent): void => {
    event.preventDefault();
    setLiveAlerts([]);
    setSymbols(parseSymbols(filterText));
  };
  const alerts = past.status === "ready" ? mergeAlerts(past.data.alerts, liveAlerts) : liveAlerts;

  return (
    <section aria-labelledby="alerts-title">
      <header className="page-header">
        <h1 id="alerts-title">Alerts</h1>
        <LiveBadge status={live.status} />
        <form className="search" onSubmit={applyFilter} role="search">
          <label>
            <span className="visually-hidden">Filter by symbols</span>
            <input type="search" placeholder="Symbols, e.g. AAPL, MSFT" value={filterText} onChange={(event) => setFilterText(event.target.value)} />
          </label>
          <button type="submit">Filter</button>
        </form>
      </header>
      {symbols.length > 0 && <p className="muted">Showing alerts of {symbols.join(", ")}.</p>}
      {past.status === "loading" && <Loading what="alerts" />}
      {past.status === "error" && <ErrorView error={past.error} what="past alerts" onRetry={past.reload} />}
      {past.status === "ready" && alerts.length === 0 && (
        <Empty title="No alerts yet">
          Alerts appear here the moment the stream worker raises one: a price move or volume spike beyond its z-score threshold, or a
          bar the anomaly model finds unusual. The demo market raises some within minutes of <code>make up</code>.
        </Empty>
      )}
      {alerts.length > 0 && (
        <div className="table-scroll">
          <table className="alerts" aria-live="polite">
            <thead>
              <tr>
                <th scope="col">Detected (UTC)</th>
                <th scope="col">Symbol</th>
                <th scope="col">Kind</th>
                <th scope="col">Severity</th>
                <th scope="col" className="num">Value</th>
                <th scope="col" className="num">Score / threshold</th>
                <th scope="col">What happened</th>
              </tr>
            </thead>
            <tbody>
              {alerts.map((alert) => (
                <tr key={alert.alertId} className={`severity-${ALERT_SEVERITY_LABELS[alert.severity]}`} data-testid="alert-row">
                  <td>{formatTime(toDate(alert.detectedTime))}</td>
                  <th scope="row">
                    <Link href={symbolPath(alert.symbol)}>{alert.symbol}</Link>
                  </th>
                  <td>{ALERT_KIND_LABELS[alert.kind]}</td>
                  <td>
                    <span className={`badge severity-${ALERT_SEVERITY_LABELS[alert.severity]}`}>{ALERT_SEVERITY_LABELS[alert.severity]}</span>
                  </td>
                  <td className="num">{formatPrice(alert.value)}</td>
                  <td className="num">
                    {alert.score.toFixed(2)} / {alert.threshold.toFixed(2)}
                  </td>
                  <td>{alert.message}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
