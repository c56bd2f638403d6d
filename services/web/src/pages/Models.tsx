// Models: every registered version, its walk-forward metrics beside the baselines, and which
// version serves (a name's latest; `name@version` pins another per request).
import type { Model } from "@gen/financelake/prediction/v1/model_pb.js";
import { prediction } from "../api/clients";
import { formatTime, intervalLabel, toDate } from "../api/convert";
import { useAsync } from "../api/hooks";
import { MetricsTable } from "../components/MetricsTable";
import { Empty, ErrorView, Loading } from "../components/StatusViews";

const REFRESH_MS = 10_000;

async function listAllModels(signal: AbortSignal): Promise<Model[]> {
  const models: Model[] = [];
  let pageToken = "";
  do {
    const page = await prediction.listModels({ pageSize: 100, pageToken }, { signal });
    models.push(...page.models);
    pageToken = page.nextPageToken;
  } while (pageToken);
  return models;
}

export function ModelsPage() {
  const models = useAsync(listAllModels, [], REFRESH_MS);
  return (
    <section aria-labelledby="models-title">
      <header className="page-header">
        <h1 id="models-title">Models</h1>
      </header>
      {models.status === "loading" && <Loading what="the model registry" />}
      {models.status === "error" && <ErrorView error={models.error} what="the model registry" onRetry={models.reload} />}
      {models.status === "ready" && models.data.length === 0 && (
        <Empty title="No model registered">
          Train one from the lake's features with <code>financelake models train</code>; <code>make up</code> trains a first one once the demo
          market has enough history.
        </Empty>
      )}
      {models.status === "ready" &&
        models.data.map((model) => (
          <details className="card model" key={`${model.name}@${model.version}`} open={model.latest} data-testid="model-version">
            <summary>
              <strong>
                {model.name}@{model.version.toString()}
              </strong>{" "}
              {model.latest ? <span className="badge serving">serving</span> : <span className="badge">pinned use only</span>} ·{" "}
              {intervalLabel(model.interval)} bars · predicts {model.label} · created {formatTime(toDate(model.createTime))} UTC
            </summary>
            <p className="muted">
              Trained on {formatTime(toDate(model.trainStartTime))} – {formatTime(toDate(model.trainEndTime))} UTC (gold.features snapshot{" "}
              <code>{model.trainSnapshotId.toString()}</code>) · {model.featureNames.length} features: {model.featureNames.join(", ")}
            </p>
            <MetricsTable metrics={model.metrics} baselineMetrics={model.baselineMetrics} caption="Walk-forward validation against the naive baselines" />
            <p className="muted">
              ONNX <code>{model.onnxSha256.slice(0, 12)}</code> ·{" "}
              {Object.entries(model.libraryVersions)
                .map(([library, version]) => `${library} ${version}`)
                .join(" · ")}
            </p>
          </details>
        ))}
    </section>
  );
}
