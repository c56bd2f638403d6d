// Import: start ImportHistory from a source and follow its progress and per-row errors.
import { create } from "@bufbuild/protobuf";
import { Interval } from "@gen/financelake/common/v1/bar_pb.js";
import { CsvOptionsSchema, ImportSource, ImportState, SyntheticOptionsSchema, SyntheticOutput } from "@gen/financelake/ingestion/v1/import_pb.js";
import { ImportHistoryRequestSchema } from "@gen/financelake/ingestion/v1/ingestion_service_pb.js";
import { useRef, useState, type FormEvent } from "react";
import { ingestion } from "../api/clients";
import { INTERVALS, formatInteger, fromSeconds, parseSymbols, toDate, formatTime } from "../api/convert";
import { applyProgress, startProgress, type ImportProgress } from "../api/imports";
import { TRACE_ID_HEADER, traceLink, useTraceUrlTemplate } from "../api/traces";
import { ErrorView } from "../components/StatusViews";
import { Link, symbolPath } from "../router";

const SOURCES = [
  { source: ImportSource.SYNTHETIC, label: "Synthetic market (seeded simulator)" },
  { source: ImportSource.CSV, label: "CSV file" },
  { source: ImportSource.YAHOO, label: "Yahoo Finance" },
  { source: ImportSource.ALPHAVANTAGE, label: "Alpha Vantage (API key in the server's settings)" },
] as const;
const DAY_MS = 86_400_000;

function dateInput(date: Date): string {
  return date.toISOString().slice(0, 10);
}

/** "Date=time, Ticker=symbol" as the CSV options' column mapping. */
export function parseColumnMapping(text: string): Record<string, string> {
  const mapping: Record<string, string> = {};
  for (const pair of text.split(/[,\n]/)) {
    const [from, to] = pair.split("=").map((part) => part.trim());
    if (from && to) mapping[from] = to;
  }
  return mapping;
}

export function ImportPage() {
  const [source, setSource] = useState<ImportSource>(ImportSource.SYNTHETIC);
  const [symbolsText, setSymbolsText] = useState("DEMO");
  const [interval, setBarInterval] = useState<Interval>(Interval.INTERVAL_1M);
  const [startDate, setStartDate] = useState(dateInput(new Date(Date.now() - 2 * DAY_MS)));
  const [endDate, setEndDate] = useState(dateInput(new Date()));
  const [adjusted, setAdjusted] = useState(true);
  const [seed, setSeed] = useState("7");
  const [file, setFile] = useState<File | null>(null);
  const [defaultSymbol, setDefaultSymbol] = useState("");
  const [mappingText, setMappingText] = useState("");
  const [progress, setProgress] = useState<ImportProgress | null>(null);
  const [importedSymbols, setImportedSymbols] = useState<string[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [traceId, setTraceId] = useState<string | null>(null);
  const running = useRef<AbortController | null>(null);

  const isCsv = source === ImportSource.CSV;
  const busy = progress?.state === ImportState.RUNNING;

  const start = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    const symbols = isCsv ? [] : parseSymbols(symbolsText);
    // The end date is inclusive for a person: import up to the end of that day (or now).
    const end = Math.min(Date.parse(endDate) + DAY_MS, Date.now());
    const request = create(ImportHistoryRequestSchema, {
      source,
      symbols,
      interval,
      startTime: fromSeconds(Date.parse(startDate) / 1000),
      endTime: fromSeconds(end / 1000),
      adjusted,
    });
    if (isCsv) {
      if (!file) return;
      request.csv = create(CsvOptionsSchema, {
        input: { case: "data", value: new Uint8Array(await file.arrayBuffer()) },
        columnMapping: parseColumnMapping(mappingText),
        defaultSymbol: defaultSymbol.trim().toUpperCase(),
      });
    }
    if (source === ImportSource.SYNTHETIC) {
      // Zero parameters take the simulator's defaults (the server's SyntheticOptions.with_defaults).
      request.synthetic = create(SyntheticOptionsSchema, { seed: BigInt(seed || "0"), output: SyntheticOutput.BARS });
    }
    running.current?.abort();
    const controller = new AbortController();
    running.current = controller;
    setError(null);
    setTraceId(null);
    setImportedSymbols(symbols);
    let current = startProgress();
    setProgress(current);
    try {
      const onHeader = (headers: Headers): void => setTraceId(headers.get(TRACE_ID_HEADER));
      for await (const response of ingestion.importHistory(request, { signal: controller.signal, onHeader })) {
        current = applyProgress(current, response, symbols);
        setProgress(current);
      }
    } catch (caught) {
      if (!controller.signal.aborted) {
        setError(caught);
        setProgress(null);
      }
    }
  };

  return (
    <section aria-labelledby="import-title">
      <header className="page-header">
        <h1 id="import-title">Import history</h1>
      </header>
      <form className="card form" onSubmit={(event) => void start(event)}>
        <label>
          Source
          <select value={source} onChange={(event) => setSource(Number(event.target.value) as ImportSource)}>
            {SOURCES.map((item) => (
              <option key={item.source} value={item.source}>
                {item.label}
              </option>
            ))}
          </select>
        </label>
        {isCsv ? (
          <>
            <label>
              CSV file (columns: symbol, time, open, high, low, close, volume; vwap and trade_count optional)
              <input type="file" accept=".csv,text/csv" required onChange={(event) => setFile(event.target.files?.[0] ?? null)} />
            </label>
            <label>
              Symbol for rows without one
              <input value={defaultSymbol} onChange={(event) => setDefaultSymbol(event.target.value)} placeholder="e.g. AAPL" />
            </label>
            <label>
              Header mapping (your header = our column)
              <input value={mappingText} onChange={(event) => setMappingText(event.target.value)} placeholder="Date=time, Ticker=symbol" />
            </label>
          </>
        ) : (
          <label>
            Symbols
            <input value={symbolsText} onChange={(event) => setSymbolsText(event.target.value)} placeholder="AAPL, MSFT" required />
          </label>
        )}
        <label>
          Interval
          <select value={interval} onChange={(event) => setBarInterval(Number(event.target.value) as Interval)}>
            {INTERVALS.map((option) => (
              <option key={option.label} value={option.interval}>
                {option.label}
              </option>
            ))}
          </select>
        </label>
        <div className="form-row">
          <label>
            From
            <input type="date" value={startDate} onChange={(event) => setStartDate(event.target.value)} required />
          </label>
          <label>
            To (inclusive)
            <input type="date" value={endDate} onChange={(event) => setEndDate(event.target.value)} required />
          </label>
        </div>
        {(source === ImportSource.YAHOO || source === ImportSource.ALPHAVANTAGE) && (
          <label className="inline">
            <input type="checkbox" checked={adjusted} onChange={(event) => setAdjusted(event.target.checked)} /> Adjusted for splits and dividends
          </label>
        )}
        {source === ImportSource.SYNTHETIC && (
          <label>
            Seed (the same seed gives the same market)
            <input type="number" value={seed} onChange={(event) => setSeed(event.target.value)} />
          </label>
        )}
        <div className="form-row">
          <button type="submit" disabled={busy}>
            {busy ? "Importing…" : "Start import"}
          </button>
          {busy && (
            <button
              type="button"
              onClick={() => {
                running.current?.abort();
                setProgress(null);
              }}
            >
              Cancel
            </button>
          )}
        </div>
      </form>
      {error !== null && <ErrorView error={error} what="the import" />}
      {progress && <ImportStatus progress={progress} symbols={importedSymbols} traceId={traceId} />}
    </section>
  );
}

function ImportStatus({ progress, symbols, traceId }: { progress: ImportProgress; symbols: string[]; traceId: string | null }) {
  const template = useTraceUrlTemplate(traceId !== null);
  const link = traceId ? traceLink(template, traceId) : null;
  const stateLabel = { [ImportState.UNSPECIFIED]: "starting", [ImportState.RUNNING]: "running", [ImportState.DONE]: "done", [ImportState.FAILED]: "failed" }[progress.state];
  return (
    <section className="card" aria-labelledby="progress-title" aria-live="polite">
      <h2 id="progress-title">
        Import <span data-testid="import-state" className={`badge state-${stateLabel}`}>{stateLabel}</span>
      </h2>
      <progress max={1} value={progress.fraction ?? undefined} aria-label="Import progress" />
      <p>
        {progress.currentSymbol && progress.state === ImportState.RUNNING && <>Now {progress.currentSymbol} · </>}
        <span data-testid="rows-published">{formatInteger(progress.rowsPublished)}</span> rows published of {formatInteger(progress.rowsFetched)} fetched
        {progress.actionsPublished > 0 && <> · {formatInteger(progress.actionsPublished)} dividends and splits</>}
      </p>
      {progress.state === ImportState.FAILED && <p className="down">Failed: {progress.message}</p>}
      {link && (
        <p>
          <a href={link} data-testid="import-trace">
            See this import's trace
          </a>{" "}
          (the server's spans, the Kafka produce of each chunk, and the stream worker's processing and commits).
        </p>
      )}
      {progress.state === ImportState.DONE && symbols.length > 0 && (
        <p>
          Done. See {symbols.map((symbol, index) => (
            <span key={symbol}>
              {index > 0 && ", "}
              <Link href={symbolPath(symbol)}>{symbol}</Link>
            </span>
          ))}
          .
        </p>
      )}
      {progress.rowErrorCount > 0 && (
        <div className="table-scroll">
          <table>
            <caption>
              {formatInteger(progress.rowErrorCount)} rows were skipped{progress.rowErrorCount > progress.rowErrors.length && ` (the first ${progress.rowErrors.length} shown)`}
            </caption>
            <thead>
              <tr>
                <th scope="col" className="num">Line</th>
                <th scope="col">Time (UTC)</th>
                <th scope="col">Field</th>
                <th scope="col">Reason</th>
              </tr>
            </thead>
            <tbody>
              {progress.rowErrors.map((rowError, index) => (
                <tr key={index}>
                  <td className="num">{rowError.line > 0n ? rowError.line.toString() : "—"}</td>
                  <td>{formatTime(toDate(rowError.time))}</td>
                  <td>{rowError.field}</td>
                  <td>{rowError.reason}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
