"""Page tokens of the market-data RPCs (`services.page_tokens`): a GetBars token is bound to
its symbol, interval and range, a ListSymbols token to its query."""

from __future__ import annotations

from dataclasses import dataclass

from financelake.services.page_tokens import decode_token, encode_token, invalid_token

_BARS = "bars"
_SYMBOLS = "symbols"


@dataclass(frozen=True)
class BarsQuery:
    """The request fields a GetBars token is bound to.

    Attributes:
        symbol: The instrument.
        interval: Bar width, as stored (`1m` ... `1wk`).
        start_ns: Start of the requested range, ns since the epoch.
        end_ns: End of the requested range (exclusive), ns since the epoch.
    """

    symbol: str
    interval: str
    start_ns: int
    end_ns: int


@dataclass(frozen=True)
class SymbolsCursor:
    """Where a ListSymbols page ended: the last symbol's search rank and name.

    Attributes:
        rank: 0 when the last symbol was a prefix match of the query, else 1.
        symbol: The last symbol of the page.
    """

    rank: int
    symbol: str


def bars_token(query: BarsQuery, next_start_ns: int) -> str:
    """The token of the GetBars page starting at `next_start_ns`."""
    return encode_token(
        [_BARS, query.symbol, query.interval, query.start_ns, query.end_ns, next_start_ns]
    )


def bars_cursor(token: str, query: BarsQuery) -> int | None:
    """Where the page `token` asks for starts (ns); None for "" (the first page)."""
    if not token:
        return None
    items = decode_token(token)
    if len(items) != 6 or items[0] != _BARS or not isinstance(items[5], int):
        raise invalid_token("is not a token from a previous GetBars page")
    if items[1:5] != [query.symbol, query.interval, query.start_ns, query.end_ns]:
        raise invalid_token("belongs to another request (symbol, interval or time range differ)")
    next_start = items[5]
    if not query.start_ns <= next_start < query.end_ns:
        raise invalid_token("points outside the requested time range")
    return next_start


def symbols_token(query: str, cursor: SymbolsCursor) -> str:
    """The token of the ListSymbols page after `cursor`."""
    return encode_token([_SYMBOLS, query, cursor.rank, cursor.symbol])


def symbols_cursor(token: str, query: str) -> SymbolsCursor | None:
    """Where the page `token` asks for continues; None for "" (the first page)."""
    if not token:
        return None
    items = decode_token(token)
    if (
        len(items) != 4
        or items[0] != _SYMBOLS
        or not isinstance(items[2], int)
        or not isinstance(items[3], str)
    ):
        raise invalid_token("is not a token from a previous ListSymbols page")
    if items[1] != query:
        raise invalid_token("belongs to another request (the query differs)")
    return SymbolsCursor(items[2], items[3])
