import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { AlertSchema } from "@gen/financelake/common/v1/alert_pb.js";
import { cleanup, fireEvent, render, screen, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { mergeAlerts } from "../pages/Alerts";
import { parseColumnMapping } from "../pages/Import";
import { MetricsTable } from "./MetricsTable";
import { Sparkline, sparklinePoints } from "./Sparkline";
import { ErrorView, LiveBadge } from "./StatusViews";

afterEach(cleanup);

describe("ErrorView", () => {
  it("tells a person to start the stack when the gateway's upstream is unavailable, and retries", () => {
    const retry = vi.fn();
    render(<ErrorView error={new ConnectError("upstream connect error", Code.Unavailable)} what="the symbol list" onRetry={retry} />);
    const alert = screen.getByRole("alert");
    expect(alert.textContent).toContain("Could not load the symbol list: the service is not answering");
    expect(alert.textContent).toContain("make up");
    fireEvent.click(within(alert).getByRole("button", { name: "Retry" }));
    expect(retry).toHaveBeenCalledOnce();
  });

  it("shows the server's reason for a refused request", () => {
    render(<ErrorView error={new ConnectError("symbols[0]: value does not match regex pattern", Code.InvalidArgument)} what="the import" />);
    expect(screen.getByRole("alert").textContent).toContain("symbols[0]: value does not match regex pattern");
  });
});

describe("LiveBadge", () => {
  it("announces the stream's state", () => {
    render(<LiveBadge status="reconnecting" />);
    expect(screen.getByRole("status").textContent).toContain("reconnecting");
  });
});

describe("Sparkline", () => {
  it("spans the box from the lowest to the highest value", () => {
    expect(sparklinePoints([1, 3, 2], 100, 10)).toBe("0.0,10.0 50.0,0.0 100.0,5.0");
  });

  it("is green when the last value is above the first, and says so when there is no trend", () => {
    const { container } = render(<Sparkline values={[1, 2]} label="AAPL over the last day" />);
    expect(container.querySelector("svg")?.getAttribute("class")).toContain("up");
    cleanup();
    render(<Sparkline values={[1]} label="x" />);
    expect(screen.getByText("no trend yet")).toBeTruthy();
  });
});

describe("MetricsTable", () => {
  it("shows the model beside each baseline", () => {
    render(<MetricsTable metrics={{ accuracy: 0.55 }} baselineMetrics={{ "always_up.accuracy": 0.5, "last_direction.accuracy": 0.6 }} caption="Walk-forward" />);
    const headers = screen.getAllByRole("columnheader").map((cell) => cell.textContent);
    expect(headers).toEqual(["Metric", "Model", "always up", "last direction"]);
    const row = screen.getByRole("row", { name: /accuracy/ });
    expect(within(row).getAllByRole("cell").map((cell) => cell.textContent)).toEqual(["0.5500", "0.5000", "0.6000"]);
  });
});

describe("page helpers", () => {
  it("keeps alerts newest first without repeating one seen both in the list and live", () => {
    const alert = (id: string, ms: number) => create(AlertSchema, { alertId: id, detectedTime: timestampFromMs(ms) });
    const merged = mergeAlerts([alert("a", 1000), alert("b", 3000)], [alert("c", 2000), alert("b", 3000)]);
    expect(merged.map((item) => item.alertId)).toEqual(["b", "c", "a"]);
  });

  it("reads a CSV header mapping", () => {
    expect(parseColumnMapping("Date=time, Ticker = symbol\nbad")).toEqual({ Date: "time", Ticker: "symbol" });
  });
});

describe("ErrorView traces", () => {
  it("links the failed call's trace to the viewer the gateway names", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(async () => new Response(JSON.stringify({ trace_url: "http://jaeger:16686/trace/{trace_id}" }))),
    );
    const error = new ConnectError("boom", Code.Internal, new Headers({ "x-trace-id": "4bf92f3577b34da6a3ce929d0e0e4736" }));
    render(<ErrorView error={error} what="the quote" />);
    const link = await screen.findByRole("link", { name: "4bf92f3577b34da6a3ce929d0e0e4736" });
    expect(link.getAttribute("href")).toBe("http://jaeger:16686/trace/4bf92f3577b34da6a3ce929d0e0e4736");
    vi.unstubAllGlobals();
  });
});
