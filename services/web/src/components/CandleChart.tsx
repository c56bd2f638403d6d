// Candles and volume in the main pane, indicator overlays on them, and indicator panes below,
// drawn by TradingView's lightweight-charts. History is set whole; the live bar is updated
// in place, which is what the library is fast at.
import {
  CandlestickSeries,
  ColorType,
  HistogramSeries,
  LineSeries,
  createChart,
  type IChartApi,
  type ISeriesApi,
  type SeriesType,
  type UTCTimestamp,
} from "lightweight-charts";
import { useEffect, useRef } from "react";
import type { Candle, LinePoint } from "../api/convert";

export interface ChartLine {
  name: string;
  points: LinePoint[];
  color: string;
  /** Histogram bars instead of a line (MACD's histogram). */
  histogram?: boolean;
}

export interface ChartPane {
  title: string;
  lines: ChartLine[];
}

const UP = "#26a69a";
const DOWN = "#ef5350";

const asTime = (seconds: number) => seconds as UTCTimestamp;

function volumePoint(candle: Candle) {
  return { time: asTime(candle.time), value: candle.volume, color: candle.close >= candle.open ? `${UP}66` : `${DOWN}66` };
}

function addLine(chart: IChartApi, line: ChartLine, pane: number): ISeriesApi<SeriesType> {
  const data = line.points.map((point) => ({ time: asTime(point.time), value: point.value }));
  if (line.histogram) {
    const series = chart.addSeries(HistogramSeries, { color: line.color, title: line.name, priceLineVisible: false }, pane);
    series.setData(data);
    return series;
  }
  const series = chart.addSeries(
    LineSeries,
    { color: line.color, lineWidth: 1, title: line.name, priceLineVisible: false, lastValueVisible: false },
    pane,
  );
  series.setData(data);
  return series;
}

export function CandleChart({
  candles,
  live,
  overlays,
  panes,
  label,
}: {
  candles: readonly Candle[];
  live: Candle | null;
  overlays: readonly ChartLine[];
  panes: readonly ChartPane[];
  label: string;
}) {
  const container = useRef<HTMLDivElement>(null);
  const chart = useRef<IChartApi | null>(null);
  const candleSeries = useRef<ISeriesApi<"Candlestick"> | null>(null);
  const volumeSeries = useRef<ISeriesApi<"Histogram"> | null>(null);
  const lastTime = useRef<number>(-Infinity);

  useEffect(() => {
    const created = createChart(container.current!, {
      autoSize: true,
      layout: { background: { type: ColorType.Solid, color: "transparent" }, textColor: "#c9d1d9", panes: { separatorColor: "#30363d" } },
      grid: { vertLines: { color: "#21262d" }, horzLines: { color: "#21262d" } },
      timeScale: { timeVisible: true, secondsVisible: false },
      rightPriceScale: { borderColor: "#30363d" },
    });
    candleSeries.current = created.addSeries(CandlestickSeries, {
      upColor: UP,
      downColor: DOWN,
      wickUpColor: UP,
      wickDownColor: DOWN,
      borderVisible: false,
    });
    volumeSeries.current = created.addSeries(HistogramSeries, { priceScaleId: "volume", priceFormat: { type: "volume" }, priceLineVisible: false, lastValueVisible: false });
    volumeSeries.current.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    chart.current = created;
    return () => {
      created.remove();
      chart.current = null;
    };
  }, []);

  useEffect(() => {
    candleSeries.current?.setData(candles.map((candle) => ({ ...candle, time: asTime(candle.time) })));
    volumeSeries.current?.setData(candles.map(volumePoint));
    lastTime.current = candles.length ? candles[candles.length - 1]!.time : -Infinity;
    chart.current?.timeScale().fitContent();
  }, [candles]);

  useEffect(() => {
    // The library only updates the newest bar or appends; an older one is already in history.
    if (!live || live.time < lastTime.current) return;
    candleSeries.current?.update({ ...live, time: asTime(live.time) });
    volumeSeries.current?.update(volumePoint(live));
    lastTime.current = live.time;
  }, [live]);

  useEffect(() => {
    const current = chart.current;
    if (!current) return;
    const added = [
      ...overlays.map((line) => addLine(current, line, 0)),
      ...panes.flatMap((pane, index) => pane.lines.map((line) => addLine(current, line, index + 1))),
    ];
    current.panes().forEach((pane, index) => {
      if (index > 0) pane.setStretchFactor(0.35);
    });
    return () => {
      // On unmount the chart is already gone (its effect is cleaned up first), series and all.
      if (chart.current === current) added.forEach((series) => current.removeSeries(series));
    };
  }, [overlays, panes]);

  return <div className="candle-chart" ref={container} role="img" aria-label={label} data-testid="candle-chart" data-candles={candles.length} />;
}
