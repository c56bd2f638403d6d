// Conversions at the edge between protobuf messages and what the views draw: int64 arrives as
// bigint and Timestamp as {seconds: bigint, nanos}; the views work in numbers and seconds.
import { timestampFromMs, type Duration, type Timestamp } from "@bufbuild/protobuf/wkt";
import { AlertKind, AlertSeverity } from "@gen/financelake/common/v1/alert_pb.js";
import { Interval, type Bar } from "@gen/financelake/common/v1/bar_pb.js";
import type { IndicatorSeries } from "@gen/financelake/marketdata/v1/marketdata_pb.js";

const MINUTE_S = 60;
const DAY_S = 86_400;

/** An int64 as a number; past 2^53 a number loses precision, which counts and offsets never reach. */
export function int64(value: bigint): number {
  return Number(value);
}

/** Seconds since the epoch (fractional), or null for an unset Timestamp. */
export function toSeconds(timestamp: Timestamp | undefined): number | null {
  if (!timestamp) return null;
  return Number(timestamp.seconds) + timestamp.nanos / 1e9;
}

export function toDate(timestamp: Timestamp | undefined): Date | null {
  const seconds = toSeconds(timestamp);
  return seconds === null ? null : new Date(seconds * 1000);
}

export function fromSeconds(seconds: number): Timestamp {
  return timestampFromMs(Math.round(seconds * 1000));
}

export function durationSeconds(duration: Duration | undefined): number | null {
  if (!duration) return null;
  return Number(duration.seconds) + duration.nanos / 1e9;
}

export interface IntervalOption {
  interval: Interval;
  label: string;
  seconds: number;
  /** How far back the chart loads at this width: a few hundred to a few thousand bars. */
  lookbackSeconds: number;
}

export const INTERVALS: readonly IntervalOption[] = [
  { interval: Interval.INTERVAL_1M, label: "1m", seconds: MINUTE_S, lookbackSeconds: 2 * DAY_S },
  { interval: Interval.INTERVAL_5M, label: "5m", seconds: 5 * MINUTE_S, lookbackSeconds: 7 * DAY_S },
  { interval: Interval.INTERVAL_15M, label: "15m", seconds: 15 * MINUTE_S, lookbackSeconds: 20 * DAY_S },
  { interval: Interval.INTERVAL_30M, label: "30m", seconds: 30 * MINUTE_S, lookbackSeconds: 40 * DAY_S },
  { interval: Interval.INTERVAL_1H, label: "1h", seconds: 3600, lookbackSeconds: 90 * DAY_S },
  { interval: Interval.INTERVAL_1D, label: "1d", seconds: DAY_S, lookbackSeconds: 3 * 365 * DAY_S },
  { interval: Interval.INTERVAL_1WK, label: "1wk", seconds: 7 * DAY_S, lookbackSeconds: 10 * 365 * DAY_S },
];

export function intervalLabel(interval: Interval): string {
  return INTERVALS.find((candidate) => candidate.interval === interval)?.label ?? "unknown";
}

export function intervalFromLabel(label: string | null): IntervalOption | undefined {
  return INTERVALS.find((candidate) => candidate.label === label);
}

export interface Candle {
  time: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

/** A bar as the chart draws it, keyed by its start in whole seconds. */
export function toCandle(bar: Bar): Candle {
  return {
    time: Math.floor(toSeconds(bar.startTime) ?? 0),
    open: bar.open,
    high: bar.high,
    low: bar.low,
    close: bar.close,
    volume: bar.volume,
  };
}

export interface LinePoint {
  time: number;
  value: number;
}

export interface IndicatorLineData {
  /** "sma(20)" for one-line indicators, "bbands(20,2) upper" for the others. */
  name: string;
  indicator: string;
  line: string;
  points: LinePoint[];
}

/** GetIndicators' columns as one point list per line, without the warm-up's NaNs. */
export function indicatorLines(
  times: readonly Timestamp[],
  series: readonly IndicatorSeries[],
): IndicatorLineData[] {
  const seconds = times.map((time) => Math.floor(toSeconds(time) ?? 0));
  return series.flatMap((item) =>
    item.lines.map((line) => {
      const points: LinePoint[] = [];
      line.values.forEach((value, index) => {
        if (Number.isFinite(value)) points.push({ time: seconds[index]!, value });
      });
      const name = item.lines.length === 1 ? item.indicator : `${item.indicator} ${line.name}`;
      return { name, indicator: item.indicator, line: line.name, points };
    }),
  );
}

/** Percent change of `price` over `reference`, or null when there is no reference. */
export function changePercent(price: number, reference: number): number | null {
  return reference > 0 ? ((price - reference) / reference) * 100 : null;
}

const priceFormat = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const smallPriceFormat = new Intl.NumberFormat("en-US", { maximumSignificantDigits: 4 });
const compactFormat = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });
const integerFormat = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

export function formatPrice(price: number): string {
  return Math.abs(price) < 1 && price !== 0 ? smallPriceFormat.format(price) : priceFormat.format(price);
}

export function formatPercent(percent: number | null): string {
  if (percent === null || !Number.isFinite(percent)) return "—";
  return `${percent > 0 ? "+" : ""}${percent.toFixed(2)}%`;
}

export function formatCompact(value: number): string {
  return compactFormat.format(value);
}

export function formatInteger(value: number): string {
  return integerFormat.format(value);
}

export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** "4 s", "3 min", "2 h", "5 d": how old something is, for freshness and lags. */
export function formatAge(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return "—";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 2 * DAY_S) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / DAY_S)} d`;
}

/** A UTC time as "2026-03-02 14:30:05" (the lake and the servers keep UTC). */
export function formatTime(date: Date | null): string {
  if (!date) return "—";
  return date.toISOString().replace("T", " ").slice(0, 19);
}

export const ALERT_KIND_LABELS: Record<AlertKind, string> = {
  [AlertKind.UNSPECIFIED]: "unknown",
  [AlertKind.PRICE_MOVE]: "price move",
  [AlertKind.VOLUME_SPIKE]: "volume spike",
  [AlertKind.ANOMALY]: "anomaly",
};

export const ALERT_SEVERITY_LABELS: Record<AlertSeverity, string> = {
  [AlertSeverity.UNSPECIFIED]: "unknown",
  [AlertSeverity.INFO]: "info",
  [AlertSeverity.WARNING]: "warning",
  [AlertSeverity.CRITICAL]: "critical",
};

/** Symbols typed by a person ("aapl, msft") as the contract wants them ("AAPL", "MSFT"). */
export function parseSymbols(text: string): string[] {
  const symbols = text
    .split(/[\s,;]+/)
    .map((symbol) => symbol.trim().toUpperCase())
    .filter((symbol) => symbol.length > 0);
  return [...new Set(symbols)];
}

export interface MetricComparison {
  metric: string;
  model: number;
  /** Baseline name ("always_up") -> its value of the same metric. */
  baselines: Record<string, number>;
  lowerIsBetter: boolean;
  /** The model is at least as good as every baseline on this metric. */
  beatsBaselines: boolean;
}

const LOWER_IS_BETTER = new Set(["log_loss", "brier", "mae", "rmse"]);

/**
 * A model's walk-forward metrics beside its baselines', one row per metric the baselines
 * also have ("accuracy" beside "always_up.accuracy", "last_direction.accuracy").
 */
export function compareMetrics(
  metrics: Readonly<Record<string, number>>,
  baselineMetrics: Readonly<Record<string, number>>,
): MetricComparison[] {
  const rows: MetricComparison[] = [];
  for (const [metric, model] of Object.entries(metrics)) {
    const baselines: Record<string, number> = {};
    for (const [key, value] of Object.entries(baselineMetrics)) {
      const dot = key.lastIndexOf(".");
      if (dot > 0 && key.slice(dot + 1) === metric) baselines[key.slice(0, dot)] = value;
    }
    if (Object.keys(baselines).length === 0) continue;
    const lowerIsBetter = LOWER_IS_BETTER.has(metric);
    const beatsBaselines = Object.values(baselines).every((value) => (lowerIsBetter ? model <= value : model >= value));
    rows.push({ metric, model, baselines, lowerIsBetter, beatsBaselines });
  }
  return rows.sort((a, b) => a.metric.localeCompare(b.metric));
}
