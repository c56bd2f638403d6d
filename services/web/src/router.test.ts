import { describe, expect, it } from "vitest";
import { parseRoute, symbolPath } from "./router";

describe("routes", () => {
  it("maps each page's path, the symbol page's symbol included", () => {
    expect(parseRoute("/")).toEqual({ page: "markets" });
    expect(parseRoute("/markets")).toEqual({ page: "markets" });
    expect(parseRoute(symbolPath("BTC-USD"))).toEqual({ page: "symbol", symbol: "BTC-USD" });
    expect(parseRoute("/symbols/%5EGSPC")).toEqual({ page: "symbol", symbol: "^GSPC" });
    expect(parseRoute("/symbols/aapl/")).toEqual({ page: "symbol", symbol: "AAPL" });
    expect(parseRoute("/traces/4bf92f35")).toEqual({ page: "trace", traceId: "4bf92f35" });
    for (const page of ["alerts", "pipeline", "import", "models"]) expect(parseRoute(`/${page}`)).toEqual({ page });
  });

  it("says not found for anything else", () => {
    expect(parseRoute("/symbols")).toEqual({ page: "not-found", path: "/symbols" });
    expect(parseRoute("/markets/extra")).toEqual({ page: "not-found", path: "/markets/extra" });
  });
});
