"""The gRPC adapter of `financelake.marketdata.v1.MarketDataService`.

ListSymbols and GetBars read `silver.bars` through a `BarStore` (the rules of which rows
are served are in `bar_store`), each Iceberg read in a worker thread so the event loop is
never blocked. GetQuote and WatchBars answer from memory: the `LiveFeed` keeps a `LiveMarket`
current from the ticks and bars topics and fans bar updates out to watchers. GetIndicators
reads a range's bars plus each indicator's warm-up bars and computes the indicators in a
worker thread (grammar, warm-up and limits in `indicators`).

Paging: GetBars pages hold `page_size` bars (default 1000), as Bar messages (at most 10000)
or, for analytics clients, one Arrow IPC stream of the columns the store holds (at most
40000: ~84 bytes a bar, so a page stays under gRPC's default 4 MB message limit; no per-bar
work: the fast path for long ranges). ListSymbols pages `page_size`
symbols (default 100, at most 1000). Tokens are bound to their request (`paging`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc

from financelake.gen.marketdata.v1 import marketdata_pb2
from financelake.gen.marketdata.v1 import marketdata_service_pb2 as pb
from financelake.gen.marketdata.v1 import marketdata_service_pb2_grpc as pb_grpc
from financelake.services.errors import Unavailable
from financelake.services.ingestion.records import Interval
from financelake.services.marketdata import convert, indicators, lake_windows, paging
from financelake.services.marketdata.bar_store import BarStore, UnknownSymbol, search, search_key
from financelake.services.marketdata.live import (
    LONG_INTERVALS,
    MINUTE_NS,
    LiveBar,
    LiveMarket,
    WindowTracker,
)
from financelake.services.marketdata.live_feed import LiveFeed
from financelake.services.marketdata.windows import window_start, window_width_ns

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["MarketDataService"].full_name
DEFAULT_BARS_PAGE_SIZE = 1000
DEFAULT_SYMBOLS_PAGE_SIZE = 100


class MarketDataServicer(pb_grpc.MarketDataServiceServicer):
    """Serves MarketDataService over gRPC from `store` (set once the lake is open)."""

    def __init__(self, store: BarStore | None = None, live: LiveFeed | None = None) -> None:
        self._store = store
        self._live = live

    def use_store(self, store: BarStore) -> None:
        """Serve the lake's RPCs from `store`."""
        self._store = store

    def _live_feed(self) -> LiveFeed:
        if self._live is None or not self._live.ready:
            raise Unavailable("the live feed is not reading Kafka yet; retry")
        return self._live

    def _ready(self) -> BarStore:
        if self._store is None:
            raise Unavailable("the lake catalog is not open yet")
        return self._store

    async def ListSymbols(
        self, request: pb.ListSymbolsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListSymbolsResponse:
        """Symbols known to the lake, matching `query`, paged."""
        store = self._ready()
        after = paging.symbols_cursor(request.page_token, request.query)
        summaries = search(await asyncio.to_thread(store.symbols), request.query)
        if after is not None:
            cursor = (after.rank, after.symbol)
            summaries = [s for s in summaries if search_key(s.symbol, request.query) > cursor]
        size = request.page_size or DEFAULT_SYMBOLS_PAGE_SIZE
        page = summaries[:size]
        token = ""
        if len(summaries) > size:
            rank, symbol = search_key(page[-1].symbol, request.query)
            token = paging.symbols_token(request.query, paging.SymbolsCursor(rank, symbol))
        return pb.ListSymbolsResponse(
            symbols=[convert.symbol_summary(s) for s in page], next_page_token=token
        )

    async def GetBars(
        self, request: pb.GetBarsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetBarsResponse:
        """Historical bars of one symbol and interval over a time range, paged."""
        store = self._ready()
        interval = convert.interval(request.interval)
        query = paging.BarsQuery(
            request.symbol,
            interval.value,
            convert.nanos(request.start_time),
            convert.nanos(request.end_time),
        )
        page = await asyncio.to_thread(
            store.page,
            query.symbol,
            interval,
            query.start_ns,
            query.end_ns,
            request.page_size or DEFAULT_BARS_PAGE_SIZE,
            from_ns=paging.bars_cursor(request.page_token, query),
        )
        token = "" if page.next_start_ns is None else paging.bars_token(query, page.next_start_ns)
        if request.format == pb.BARS_FORMAT_ARROW:
            return pb.GetBarsResponse(
                arrow_stream=convert.bars_arrow_stream(page.bars, request.symbol, interval),
                next_page_token=token,
            )
        return pb.GetBarsResponse(
            bars=convert.bar_messages(page.bars, request.symbol, request.interval),
            next_page_token=token,
        )

    async def GetQuote(
        self, request: pb.GetQuoteRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetQuoteResponse:
        """The latest trade and bar in progress of one symbol, from memory; a symbol with no
        live trade since the server started is answered from its latest bar in the lake."""
        live = self._live_feed()
        now = time.time_ns()
        quote = live.market.quote(request.symbol, now)
        if quote is not None:
            return pb.GetQuoteResponse(quote=convert.quote_message(quote))
        summaries = await asyncio.to_thread(self._ready().symbols)
        summary = next((s for s in summaries if s.symbol == request.symbol), None)
        if summary is None:
            raise UnknownSymbol(
                f"no trade or bar of {request.symbol} is known",
                metadata={"symbol": request.symbol},
            )
        return pb.GetQuoteResponse(quote=convert.lake_quote_message(summary, now))

    async def GetIndicators(
        self, request: pb.GetIndicatorsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetIndicatorsResponse:
        """Technical indicators of one symbol over at most `indicators.MAX_BARS` bars of a
        range, each computed with its warm-up bars before the range (`indicators`)."""
        store = self._ready()
        specs = indicators.parse_specs(request.indicators)
        result = await asyncio.to_thread(
            indicators.evaluate,
            store,
            request.symbol,
            convert.interval(request.interval),
            convert.nanos(request.start_time),
            convert.nanos(request.end_time),
            specs,
        )
        return convert.indicators_response(result)

    async def WatchBars(
        self, request: pb.WatchBarsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WatchBarsResponse]:
        """The requested symbols' bars of one interval: first each symbol's last closed
        bar, then every change of the bar in progress and every bar as it closes. A watcher
        that falls behind loses its oldest updates (the next one says so), never slows the
        others. Coarser bars are built from the 1-minute ones; a day or week also from the
        lake's minutes of the window from before the live view's memory (`lake_windows`)."""
        live = self._live_feed()
        wanted = convert.interval(request.interval)
        store = self._ready() if wanted in LONG_INTERVALS else None
        symbols = frozenset(request.symbols)
        subscription = live.updates.add(
            lambda u: u.bar.symbol in symbols and u.bar.interval is Interval.M1
        )
        tracker = None if wanted is Interval.M1 else WindowTracker(live.market, wanted)
        try:
            # Headers now: a client waiting for them knows every later bar will reach it.
            await context.send_initial_metadata(())
            for symbol in request.symbols:
                if store is None:
                    last = self._last_closed(live.market, symbol, wanted)
                else:
                    window = await self._seed(live.market, store, symbol, wanted)
                    last = await asyncio.to_thread(
                        lake_windows.last_closed, store, symbol, wanted, window
                    )
                if last is not None:
                    yield _bar_update(last, closed=True, dropped=False)
            async for delivery in subscription:
                update = delivery.item
                changes = (
                    [(update.bar, update.closed)]
                    if tracker is None
                    else tracker.on_minute(update.bar, update.closed)
                )
                for index, (bar, closed) in enumerate(changes):
                    yield _bar_update(
                        bar, closed=closed, dropped=index == 0 and delivery.skipped > 0
                    )
        finally:
            live.updates.remove(subscription)

    @staticmethod
    async def _seed(market: LiveMarket, store: BarStore, symbol: str, interval: Interval) -> int:
        """Seed the lake's part of the symbol's current long window (the window of its newest
        live minute, else of now) unless it is; its start."""
        while True:
            newest = market.newest_minute(symbol)
            window = window_start(time.time_ns() if newest is None else newest, interval)
            seeded = market.seeded_window(symbol, interval)
            if seeded is not None and seeded >= window:
                return seeded
            held = market.held_since(symbol)
            bar, covered = await asyncio.to_thread(
                lake_windows.settled_part, store, symbol, interval, window, held
            )
            if market.seed(symbol, interval, window, bar, covered):
                return window

    @staticmethod
    def _last_closed(market: LiveMarket, symbol: str, interval: Interval) -> LiveBar | None:
        last = market.last_closed(symbol, Interval.M1)
        if interval is Interval.M1 or last is None:
            return last
        # The window before the one the newest closed minute is in: complete by then.
        width = window_width_ns(interval)
        window = window_start(last.start_time_ns, interval)
        if last.start_time_ns + MINUTE_NS == window + width:
            return market.window_bar(symbol, interval, window, with_current=False)
        return market.window_bar(symbol, interval, window - width, with_current=False)


def _bar_update(bar: LiveBar, *, closed: bool, dropped: bool) -> pb.WatchBarsResponse:
    return pb.WatchBarsResponse(
        update=marketdata_pb2.BarUpdate(
            bar=convert.live_bar_message(bar), closed=closed, dropped_updates=dropped
        )
    )
