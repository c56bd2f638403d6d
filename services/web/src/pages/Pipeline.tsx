// Pipeline: Kafka lag per partition, agent throughput, and each Iceberg table's last commit,
// freshness and details (schema, partitioning, files, snapshots).
import type { Table } from "@gen/financelake/stream/v1/pipeline_pb.js";
import { stream } from "../api/clients";
import { durationSeconds, formatAge, formatBytes, formatInteger, formatTime, int64, toDate } from "../api/convert";
import { useAsync } from "../api/hooks";
import { Empty, ErrorView, Loading } from "../components/StatusViews";

const STATUS_REFRESH_MS = 2_000;
const TABLES_REFRESH_MS = 10_000;
const SHOWN_SNAPSHOTS = 10;

export function PipelinePage() {
  const status = useAsync((signal) => stream.getPipelineStatus({}, { signal }), [], STATUS_REFRESH_MS);
  const tables = useAsync((signal) => stream.listTables({}, { signal }), [], TABLES_REFRESH_MS);
  return (
    <section aria-labelledby="pipeline-title">
      <header className="page-header">
        <h1 id="pipeline-title">Pipeline</h1>
        <span className="muted">refreshes every {STATUS_REFRESH_MS / 1000} s</span>
      </header>
      {status.status === "loading" && <Loading what="the pipeline status" />}
      {status.status === "error" && <ErrorView error={status.error} what="the pipeline status" onRetry={status.reload} />}
      {status.status === "ready" && (
        <div className="grid">
          <section className="card wide" aria-labelledby="lag-title">
            <h2 id="lag-title">Kafka lag</h2>
            {status.data.partitions.length === 0 ? (
              <Empty title="No topic partitions">The stream worker has not consumed yet: is it running (`financelake status`)?</Empty>
            ) : (
              <div className="table-scroll">
                <table>
                  <thead>
                    <tr>
                      <th scope="col">Topic</th>
                      <th scope="col" className="num">Partition</th>
                      <th scope="col">Group</th>
                      <th scope="col" className="num">Committed</th>
                      <th scope="col" className="num">End</th>
                      <th scope="col" className="num">Lag</th>
                    </tr>
                  </thead>
                  <tbody>
                    {status.data.partitions.map((partition) => (
                      <tr key={`${partition.consumerGroup}/${partition.topic}/${partition.partition}`}>
                        <td>{partition.topic}</td>
                        <td className="num">{partition.partition}</td>
                        <td>{partition.consumerGroup}</td>
                        <td className="num">{formatInteger(int64(partition.committedOffset))}</td>
                        <td className="num">{formatInteger(int64(partition.endOffset))}</td>
                        <td className={`num ${partition.lag > 0n ? "warn" : ""}`}>{formatInteger(int64(partition.lag))}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </section>
          <section className="card" aria-labelledby="agents-title">
            <h2 id="agents-title">Agent throughput</h2>
            {status.data.agents.length === 0 ? (
              <Empty title="No agent has reported">The stream worker reports its agents once it runs.</Empty>
            ) : (
              <table>
                <thead>
                  <tr>
                    <th scope="col">Agent</th>
                    <th scope="col" className="num">Records/s</th>
                    <th scope="col" className="num">Total</th>
                  </tr>
                </thead>
                <tbody>
                  {status.data.agents.map((agent) => (
                    <tr key={agent.agent}>
                      <td>{agent.agent}</td>
                      <td className="num">{agent.recordsPerSecond.toFixed(1)}</td>
                      <td className="num">{formatInteger(int64(agent.recordsTotal))}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </section>
          <section className="card wide" aria-labelledby="commits-title">
            <h2 id="commits-title">Last commit per table</h2>
            {status.data.tables.length === 0 ? (
              <Empty title="No table committed yet">Tables get their first commit within seconds of data arriving.</Empty>
            ) : (
              <div className="table-scroll">
                <table>
                  <thead>
                    <tr>
                      <th scope="col">Table</th>
                      <th scope="col">Committed (UTC)</th>
                      <th scope="col" className="num">Rows added</th>
                      <th scope="col" className="num">Freshness</th>
                      <th scope="col">Snapshot</th>
                    </tr>
                  </thead>
                  <tbody>
                    {status.data.tables.map((table) => (
                      <tr key={table.table} data-testid="table-commit">
                        <td>{table.table}</td>
                        <td>{formatTime(toDate(table.commitTime))}</td>
                        <td className="num">{formatInteger(int64(table.addedRows))}</td>
                        <td className="num">{formatAge(durationSeconds(table.freshness))}</td>
                        <td>
                          <code>{table.snapshotId.toString()}</code>
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </section>
        </div>
      )}
      <h2>Tables</h2>
      {tables.status === "loading" && <Loading what="the lake's tables" />}
      {tables.status === "error" && <ErrorView error={tables.error} what="the lake's tables" onRetry={tables.reload} />}
      {tables.status === "ready" && tables.data.tables.length === 0 && (
        <Empty title="The lake has no tables">The stream worker creates them when it starts (`make up`).</Empty>
      )}
      {tables.status === "ready" && tables.data.tables.map((table) => <TableDetails key={table.table} table={table} />)}
    </section>
  );
}

function TableDetails({ table }: { table: Table }) {
  return (
    <details className="card table-details">
      <summary>
        <strong>{table.table}</strong> · {formatInteger(int64(table.totalRows))} rows · {formatInteger(int64(table.totalFiles))} files ·{" "}
        {formatBytes(int64(table.totalBytes))}
      </summary>
      <p className="muted">
        Location <code>{table.location}</code> · partitioned by {table.partitionFields.length ? table.partitionFields.join(", ") : "nothing"}
      </p>
      <div className="grid">
        <div className="table-scroll">
          <table>
            <caption>Schema</caption>
            <thead>
              <tr>
                <th scope="col">#</th>
                <th scope="col">Column</th>
                <th scope="col">Type</th>
                <th scope="col">Required</th>
              </tr>
            </thead>
            <tbody>
              {table.fields.map((field) => (
                <tr key={field.fieldId} title={field.doc}>
                  <td>{field.fieldId}</td>
                  <td>{field.name}</td>
                  <td>
                    <code>{field.type}</code>
                  </td>
                  <td>{field.required ? "yes" : "no"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <div className="table-scroll">
          <table>
            <caption>Snapshots (newest {SHOWN_SNAPSHOTS})</caption>
            <thead>
              <tr>
                <th scope="col">Snapshot</th>
                <th scope="col">Committed (UTC)</th>
                <th scope="col">Operation</th>
                <th scope="col" className="num">Added rows</th>
              </tr>
            </thead>
            <tbody>
              {table.snapshots.slice(0, SHOWN_SNAPSHOTS).map((snapshot) => (
                <tr key={snapshot.snapshotId.toString()}>
                  <td>
                    <code>{snapshot.snapshotId.toString()}</code>
                  </td>
                  <td>{formatTime(toDate(snapshot.commitTime))}</td>
                  <td>{snapshot.operation}</td>
                  <td className="num">{snapshot.summary["added-records"] ?? "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </div>
    </details>
  );
}
