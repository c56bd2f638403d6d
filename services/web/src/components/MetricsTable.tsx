// A model's walk-forward metrics beside the naive baselines it must beat.
import { compareMetrics } from "../api/convert";

export function MetricsTable({ metrics, baselineMetrics, caption }: { metrics: Record<string, number>; baselineMetrics: Record<string, number>; caption: string }) {
  const rows = compareMetrics(metrics, baselineMetrics);
  if (rows.length === 0) return <p className="muted">This model version recorded no metrics to compare.</p>;
  const baselineNames = Object.keys(rows[0]!.baselines);
  return (
    <div className="table-scroll">
      <table className="metrics">
        <caption>{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Metric</th>
            <th scope="col" className="num">Model</th>
            {baselineNames.map((name) => (
              <th scope="col" className="num" key={name}>
                {name.replace(/_/g, " ")}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={row.metric}>
              <th scope="row">
                {row.metric.replace(/_/g, " ")} <span className="muted">({row.lowerIsBetter ? "lower" : "higher"} is better)</span>
              </th>
              <td className={`num ${row.beatsBaselines ? "up" : "down"}`}>{row.model.toFixed(4)}</td>
              {baselineNames.map((name) => (
                <td className="num" key={name}>
                  {row.baselines[name]?.toFixed(4) ?? "—"}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
