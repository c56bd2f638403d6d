// One symbol: candles and volume at a chosen interval with indicator overlays and panes, live
// from WatchBars, and the latest prediction with its model's walk-forward metrics.
import { Code, ConnectError } from "@connectrpc/connect";
import { Interval, type Bar } from "@gen/financelake/common/v1/bar_pb.js";
import { useMemo, useState } from "react";
import { marketData, prediction } from "../api/clients";
import {
  INTERVALS,
  changePercent,
  formatPercent,
  formatPrice,
  formatTime,
  fromSeconds,
  indicatorLines,
  intervalFromLabel,
  toCandle,
  toDate,
  toSeconds,
  type Candle,
  type IntervalOption,
} from "../api/convert";
import { useAsync, useServerStream } from "../api/hooks";
import { CandleChart, type ChartLine, type ChartPane } from "../components/CandleChart";
import { MetricsTable } from "../components/MetricsTable";
import { Empty, ErrorView, LiveBadge, Loading } from "../components/StatusViews";
import { Link, navigate, symbolPath, useLocation } from "../router";

const OVERLAYS = [
  { spec: "sma(20)", label: "SMA 20", colors: ["#f2cc60"] },
  { spec: "ema(50)", label: "EMA 50", colors: ["#d2a8ff"] },
  { spec: "bbands(20,2)", label: "Bollinger 20, 2", colors: ["#58a6ff", "#58a6ff88", "#58a6ff"] },
] as const;
const PANES = [
  { spec: "rsi(14)", label: "RSI 14", colors: ["#f778ba"] },
  { spec: "macd(12,26,9)", label: "MACD 12, 26, 9", colors: ["#58a6ff", "#f0883e", "#8b949e"] },
] as const;
const PREDICTION_REFRESH_MS = 30_000;
const MAX_PAGES = 20;

interface History {
  candles: Candle[];
  start: number;
  end: number;
  /** The close of the day before the newest bar's, for the change shown beside the price. */
  previousClose: number;
}

/** The bars of the chart's window: `lookback` before the symbol's newest data, every page. */
async function loadHistory(symbol: string, option: IntervalOption, signal: AbortSignal): Promise<History | null> {
  const { symbols } = await marketData.listSymbols({ query: symbol, pageSize: 50 }, { signal });
  const summary = symbols.find((candidate) => candidate.symbol === symbol);
  const newest = toSeconds(summary?.lastDataTime);
  if (newest === null) return null;
  const end = Math.max(newest, Date.now() / 1000) + option.seconds;
  const start = newest - option.lookbackSeconds;
  const bars: Bar[] = [];
  let pageToken = "";
  for (let page = 0; page < MAX_PAGES; page += 1) {
    const response = await marketData.getBars(
      { symbol, interval: option.interval, startTime: fromSeconds(start), endTime: fromSeconds(end), pageSize: 10_000, pageToken },
      { signal },
    );
    bars.push(...response.bars);
    pageToken = response.nextPageToken;
    if (!pageToken) break;
  }
  return { candles: bars.map(toCandle), start, end, previousClose: summary?.previousClose ?? 0 };
}

function linesOf(specs: readonly { spec: string; colors: readonly string[] }[], lines: ReturnType<typeof indicatorLines>): ChartLine[] {
  return lines.flatMap((line) => {
    const index = specs.findIndex((item) => item.spec === line.indicator);
    if (index < 0) return [];
    const spec = specs[index]!;
    const lineIndex = lines.filter((other) => other.indicator === line.indicator).indexOf(line);
    return [{ name: line.name, points: line.points, color: spec.colors[lineIndex] ?? spec.colors[0]!, histogram: line.line === "histogram" }];
  });
}

export function SymbolPage({ symbol }: { symbol: string }) {
  const { search } = useLocation();
  const option = intervalFromLabel(search.get("interval")) ?? INTERVALS[0]!;
  const [overlays, setOverlays] = useState<ReadonlySet<string>>(new Set(["sma(20)"]));
  const [panes, setPanes] = useState<ReadonlySet<string>>(new Set(["rsi(14)"]));
  const [live, setLive] = useState<Candle | null>(null);
  const [closedBars, setClosedBars] = useState(0);

  const history = useAsync((signal) => loadHistory(symbol, option, signal), [symbol, option.label]);
  const quote = useAsync((signal) => marketData.getQuote({ symbol }, { signal }), [symbol], 5_000);
  const specs = [...overlays, ...panes];
  const chartWindow = history.status === "ready" ? history.data : null;
  const indicators = useAsync(
    async (signal) => {
      if (!chartWindow || specs.length === 0) return [];
      const response = await marketData.getIndicators(
        { symbol, interval: option.interval, startTime: fromSeconds(chartWindow.start), endTime: fromSeconds(Date.now() / 1000 + option.seconds), indicators: specs },
        { signal },
      );
      return indicatorLines(response.times, response.series);
    },
    [chartWindow, specs.join(","), closedBars],
  );
  const stream = useServerStream(
    (options) => marketData.watchBars({ symbols: [symbol], interval: option.interval }, options),
    (response) => {
      const update = response.update;
      if (!update?.bar) return;
      setLive(toCandle(update.bar));
      if (update.closed) setClosedBars((count) => count + 1);
    },
    [symbol, option.label],
  );

  const lines = indicators.status === "ready" ? indicators.data : [];
  const overlayLines = useMemo(() => linesOf(OVERLAYS, lines), [lines]);
  const paneLines = useMemo<ChartPane[]>(
    () => PANES.filter((pane) => panes.has(pane.spec)).map((pane) => ({ title: pane.label, lines: linesOf([pane], lines) })),
    [lines, panes],
  );
  const lastCandle = live ?? (chartWindow?.candles[chartWindow.candles.length - 1] ?? null);

  const toggle = (set: ReadonlySet<string>, spec: string, update: (next: Set<string>) => void): void => {
    const next = new Set(set);
    if (next.has(spec)) next.delete(spec);
    else next.add(spec);
    update(next);
  };

  return (
    <section aria-labelledby="symbol-title">
      <header className="page-header">
        <h1 id="symbol-title">{symbol}</h1>
        {quote.status === "ready" && quote.data.quote && (
          <QuoteLine price={live?.close ?? quote.data.quote.lastPrice} previousClose={chartWindow?.previousClose ?? 0} />
        )}
        <LiveBadge status={stream.status} />
      </header>
      <div className="toolbar" role="toolbar" aria-label="Chart settings">
        <div className="segmented" role="group" aria-label="Interval">
          {INTERVALS.map((candidate) => (
            <button
              type="button"
              key={candidate.label}
              aria-pressed={candidate.label === option.label}
              onClick={() => {
                setLive(null);
                navigate(`${symbolPath(symbol)}?interval=${candidate.label}`, { replace: true });
              }}
            >
              {candidate.label}
            </button>
          ))}
        </div>
        <fieldset className="checks">
          <legend>Overlays</legend>
          {OVERLAYS.map((item) => (
            <label key={item.spec}>
              <input type="checkbox" checked={overlays.has(item.spec)} onChange={() => toggle(overlays, item.spec, setOverlays)} /> {item.label}
            </label>
          ))}
        </fieldset>
        <fieldset className="checks">
          <legend>Panes</legend>
          {PANES.map((item) => (
            <label key={item.spec}>
              <input type="checkbox" checked={panes.has(item.spec)} onChange={() => toggle(panes, item.spec, setPanes)} /> {item.label}
            </label>
          ))}
        </fieldset>
      </div>
      {history.status === "loading" && <Loading what={`${symbol} bars`} />}
      {history.status === "error" && <ErrorView error={history.error} what={`${symbol} bars`} onRetry={history.reload} />}
      {history.status === "ready" && history.data === null && (
        <Empty title={`No data for ${symbol}`}>
          The lake has no bars of {symbol}. Import its history on the <Link href="/import">Import</Link> page, or pick a symbol on{" "}
          <Link href="/markets">Markets</Link>.
        </Empty>
      )}
      {chartWindow && (
        <>
          {chartWindow.candles.length === 0 && !live && (
            <Empty title={`No ${option.label} bars in this window`}>Try a wider interval; live bars appear here as trades arrive.</Empty>
          )}
          <CandleChart candles={chartWindow.candles} live={live} overlays={overlayLines} panes={paneLines} label={`${symbol} ${option.label} candles`} />
          {indicators.status === "error" && <ErrorView error={indicators.error} what="the indicators" onRetry={indicators.reload} />}
          <p className="muted" data-testid="last-bar">
            {lastCandle ? (
              <>
                Last {option.label} bar {formatTime(new Date(lastCandle.time * 1000))} UTC · open {formatPrice(lastCandle.open)} · close{" "}
                <span data-testid="last-close">{formatPrice(lastCandle.close)}</span> · {live ? "live" : "from the lake"}
              </>
            ) : (
              "No bar yet."
            )}
          </p>
        </>
      )}
      <PredictionPanel symbol={symbol} />
    </section>
  );
}

function QuoteLine({ price, previousClose }: { price: number; previousClose: number }) {
  const change = changePercent(price, previousClose);
  return (
    <span className="quote" data-testid="quote">
      <strong>{formatPrice(price)}</strong>{" "}
      <span className={change === null ? "" : change >= 0 ? "up" : "down"} title="Change since the previous close">
        {formatPercent(change)}
      </span>
    </span>
  );
}

function PredictionPanel({ symbol }: { symbol: string }) {
  const forecast = useAsync(
    async (signal) => {
      try {
        const { prediction: result } = await prediction.predict({ symbol, interval: Interval.INTERVAL_1M }, { signal });
        if (!result) return null;
        const { modelInfo } = await prediction.getModel({ model: result.modelVersion }, { signal });
        return { result, model: modelInfo ?? null };
      } catch (error) {
        // No model yet, or no fresh features for this symbol: an empty state, not a failure.
        const code = ConnectError.from(error).code;
        if (code === Code.FailedPrecondition || code === Code.NotFound) return null;
        throw error;
      }
    },
    [symbol],
    PREDICTION_REFRESH_MS,
  );
  return (
    <section className="card" aria-labelledby="prediction-title">
      <h2 id="prediction-title">Next 1m bar forecast</h2>
      {forecast.status === "loading" && <Loading what="the prediction" />}
      {forecast.status === "error" && <ErrorView error={forecast.error} what="the prediction" onRetry={forecast.reload} />}
      {forecast.status === "ready" && forecast.data === null && (
        <Empty title="No prediction for this symbol">
          No model serves it yet, or its features are not fresh. Train one with <code>financelake models train</code>; see{" "}
          <Link href="/models">Models</Link>.
        </Empty>
      )}
      {forecast.status === "ready" && forecast.data && (
        <>
          <p data-testid="prediction">
            Up with probability <strong>{(forecast.data.result.probabilityUp * 100).toFixed(1)}%</strong>, expected return{" "}
            <strong>{formatPercent(forecast.data.result.expectedReturn * 100)}</strong> · model <code>{forecast.data.result.modelVersion}</code> ·
            features of {formatTime(toDate(forecast.data.result.featureTime))} UTC
          </p>
          {forecast.data.model && (
            <MetricsTable metrics={forecast.data.model.metrics} baselineMetrics={forecast.data.model.baselineMetrics} caption="Walk-forward validation against the naive baselines" />
          )}
        </>
      )}
    </section>
  );
}
