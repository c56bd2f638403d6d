import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { BarSchema } from "@gen/financelake/common/v1/bar_pb.js";
import { IndicatorLineSchema, IndicatorSeriesSchema } from "@gen/financelake/marketdata/v1/marketdata_pb.js";
import { describe, expect, it } from "vitest";
import {
  changePercent,
  compareMetrics,
  formatAge,
  formatBytes,
  formatPercent,
  indicatorLines,
  int64,
  parseSymbols,
  toCandle,
  toSeconds,
} from "./convert";

describe("timestamps and int64", () => {
  it("turns a Timestamp's bigint seconds and nanos into fractional seconds", () => {
    expect(toSeconds({ seconds: 1_767_225_600n, nanos: 500_000_000 } as never)).toBe(1_767_225_600.5);
    expect(toSeconds(undefined)).toBeNull();
  });

  it("turns int64 counts into numbers", () => {
    expect(int64(9_007_199_254_740_991n)).toBe(Number.MAX_SAFE_INTEGER);
  });
});

describe("candles", () => {
  it("keys a bar by its start in whole seconds", () => {
    const bar = create(BarSchema, { startTime: timestampFromMs(1_767_225_660_000), open: 1, high: 3, low: 0.5, close: 2, volume: 10 });
    expect(toCandle(bar)).toEqual({ time: 1_767_225_660, open: 1, high: 3, low: 0.5, close: 2, volume: 10 });
  });
});

describe("indicator lines", () => {
  it("names multi-line indicators by line and drops the warm-up NaNs", () => {
    const times = [0, 60, 120].map((seconds) => timestampFromMs(seconds * 1000));
    const series = [
      create(IndicatorSeriesSchema, { indicator: "sma(2)", lines: [create(IndicatorLineSchema, { name: "sma", values: [Number.NaN, 1.5, 2.5] })] }),
      create(IndicatorSeriesSchema, {
        indicator: "bbands(2,2)",
        lines: [
          create(IndicatorLineSchema, { name: "upper", values: [Number.NaN, 2, 3] }),
          create(IndicatorLineSchema, { name: "lower", values: [Number.NaN, 1, 2] }),
        ],
      }),
    ];
    const lines = indicatorLines(times, series);
    expect(lines.map((line) => line.name)).toEqual(["sma(2)", "bbands(2,2) upper", "bbands(2,2) lower"]);
    expect(lines[0]!.points).toEqual([
      { time: 60, value: 1.5 },
      { time: 120, value: 2.5 },
    ]);
  });
});

describe("model metrics", () => {
  it("puts each metric beside the baselines' and says whether the model beats them", () => {
    const rows = compareMetrics(
      { accuracy: 0.55, log_loss: 0.7, roc_auc_se: 0.01 },
      { "always_up.accuracy": 0.5, "last_direction.accuracy": 0.52, "always_up.log_loss": 0.69, "last_direction.log_loss": 0.72 },
    );
    expect(rows.map((row) => row.metric)).toEqual(["accuracy", "log_loss"]);
    expect(rows[0]).toMatchObject({ baselines: { always_up: 0.5, last_direction: 0.52 }, lowerIsBetter: false, beatsBaselines: true });
    expect(rows[1]).toMatchObject({ lowerIsBetter: true, beatsBaselines: false });
  });
});

describe("formatting and input", () => {
  it("formats changes, sizes and ages for people", () => {
    expect(changePercent(110, 100)).toBeCloseTo(10);
    expect(changePercent(110, 0)).toBeNull();
    expect(formatPercent(1.234)).toBe("+1.23%");
    expect(formatPercent(null)).toBe("—");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatAge(0.25)).toBe("250 ms");
    expect(formatAge(3 * 3600)).toBe("3 h");
  });

  it("reads typed symbols as the contract wants them", () => {
    expect(parseSymbols(" aapl, msft;aapl  btc-usd ")).toEqual(["AAPL", "MSFT", "BTC-USD"]);
    expect(parseSymbols("  ")).toEqual([]);
  });
});
