// Markets: every symbol in the lake with its last price, change, volume and a day's trend,
// priced live from WatchBars.
import { create } from "@bufbuild/protobuf";
import { Interval } from "@gen/financelake/common/v1/bar_pb.js";
import type { SymbolSummary } from "@gen/financelake/marketdata/v1/marketdata_pb.js";
import { WatchBarsRequestSchema } from "@gen/financelake/marketdata/v1/marketdata_service_pb.js";
import { useMemo, useState } from "react";
import { marketData } from "../api/clients";
import { changePercent, formatCompact, formatPercent, formatPrice, fromSeconds, toSeconds } from "../api/convert";
import { useAsync, useServerStream } from "../api/hooks";
import { Empty, ErrorView, LiveBadge, Loading } from "../components/StatusViews";
import { Sparkline } from "../components/Sparkline";
import { Link, symbolPath } from "../router";

const REFRESH_MS = 15_000;
const TREND_SECONDS = 86_400;
// WatchBars takes at most 100 symbols per call.
const MAX_WATCHED = 100;

async function listAllSymbols(signal: AbortSignal): Promise<SymbolSummary[]> {
  const symbols: SymbolSummary[] = [];
  let pageToken = "";
  do {
    const page = await marketData.listSymbols({ pageSize: 1000, pageToken }, { signal });
    symbols.push(...page.symbols);
    pageToken = page.nextPageToken;
  } while (pageToken);
  return symbols;
}

/** Each symbol's 5-minute closes over the day before its newest data. */
async function loadTrends(symbols: SymbolSummary[], signal: AbortSignal): Promise<Map<string, number[]>> {
  const trends = await Promise.all(
    symbols.map(async (summary) => {
      const end = toSeconds(summary.lastDataTime);
      if (end === null) return [summary.symbol, [] as number[]] as const;
      const response = await marketData.getBars(
        {
          symbol: summary.symbol,
          interval: Interval.INTERVAL_5M,
          startTime: fromSeconds(end - TREND_SECONDS),
          endTime: fromSeconds(end + 60),
        },
        { signal },
      );
      return [summary.symbol, response.bars.map((bar) => bar.close)] as const;
    }),
  );
  return new Map(trends);
}

export function MarketsPage() {
  const [query, setQuery] = useState("");
  const [livePrices, setLivePrices] = useState<ReadonlyMap<string, number>>(new Map());
  const symbols = useAsync(listAllSymbols, [], REFRESH_MS);
  const names = symbols.status === "ready" ? symbols.data.map((summary) => summary.symbol) : [];
  const namesKey = names.join(",");
  const trends = useAsync(
    (signal) => (symbols.status === "ready" ? loadTrends(symbols.data, signal) : Promise.resolve(new Map<string, number[]>())),
    [namesKey],
  );
  const stream = useServerStream(
    (options) => marketData.watchBars(create(WatchBarsRequestSchema, { symbols: names.slice(0, MAX_WATCHED), interval: Interval.INTERVAL_1M }), options),
    (response) => {
      const bar = response.update?.bar;
      if (bar) setLivePrices((prices) => new Map(prices).set(bar.symbol, bar.close));
    },
    [namesKey],
    names.length > 0,
  );

  const shown = useMemo(() => {
    if (symbols.status !== "ready") return [];
    const needle = query.trim().toUpperCase();
    return symbols.data.filter((summary) => summary.symbol.includes(needle));
  }, [symbols, query]);

  return (
    <section aria-labelledby="markets-title">
      <header className="page-header">
        <h1 id="markets-title">Markets</h1>
        {names.length > 0 && <LiveBadge status={stream.status} />}
        <label className="search">
          <span className="visually-hidden">Search symbols</span>
          <input type="search" placeholder="Search symbols" value={query} onChange={(event) => setQuery(event.target.value)} />
        </label>
      </header>
      {symbols.status === "loading" && <Loading what="symbols" />}
      {symbols.status === "error" && <ErrorView error={symbols.error} what="the symbol list" onRetry={symbols.reload} />}
      {symbols.status === "ready" && symbols.data.length === 0 && (
        <Empty title="No market data yet">
          Import some history on the <Link href="/import">Import</Link> page, or start the stack with its demo market
          (<code>make up</code>).
        </Empty>
      )}
      {symbols.status === "ready" && symbols.data.length > 0 && shown.length === 0 && (
        <Empty title={`No symbol matches “${query}”`}>Clear the search to see all {symbols.data.length} symbols.</Empty>
      )}
      {shown.length > 0 && (
        <div className="table-scroll">
          <table className="markets">
            <thead>
              <tr>
                <th scope="col">Symbol</th>
                <th scope="col" className="num">Last</th>
                <th scope="col" className="num">Change</th>
                <th scope="col" className="num">Volume today</th>
                <th scope="col">Last day</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((summary) => {
                const price = livePrices.get(summary.symbol) ?? summary.lastPrice;
                const change = changePercent(price, summary.previousClose);
                const trend = trends.status === "ready" ? (trends.data.get(summary.symbol) ?? []) : [];
                const values = livePrices.has(summary.symbol) ? [...trend, price] : trend;
                return (
                  <tr key={summary.symbol} data-symbol={summary.symbol}>
                    <th scope="row">
                      <Link href={symbolPath(summary.symbol)}>{summary.symbol}</Link>
                    </th>
                    <td className="num" data-testid="last-price">{formatPrice(price)}</td>
                    <td className={`num ${change === null ? "" : change >= 0 ? "up" : "down"}`}>{formatPercent(change)}</td>
                    <td className="num">{formatCompact(summary.volumeToday)}</td>
                    <td>
                      {trends.status === "loading" ? <span className="sparkline-empty">…</span> : <Sparkline values={values} label={`${summary.symbol} over the last day`} />}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
