"""Page tokens of the market-data RPCs: opaque to clients, bound to the request they page.

A token is the urlsafe base64 of a small JSON array: what kind of list it continues, the
request fields that define that list, and where the next page starts. A token presented
with a different request (another symbol, interval, range or query) is refused as
INVALID_ARGUMENT on `page_token`, never silently applied to the wrong list. Tokens are not
signed: a client forging one can only ask for a page it could ask for directly.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from financelake.services.errors import FieldViolation, InvalidInput

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


def _invalid(why: str) -> InvalidInput:
    return InvalidInput(
        f"page_token {why}",
        violations=[FieldViolation("page_token", why)],
        reason="INVALID_PAGE_TOKEN",
    )


def _encode(items: list[object]) -> str:
    text = json.dumps(items, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode()


def _decode(token: str) -> list[object]:
    try:
        items = json.loads(base64.b64decode(token.encode(), altchars=b"-_", validate=True))
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise _invalid("is not a token from a previous page") from exc
    if not isinstance(items, list) or not items:
        raise _invalid("is not a token from a previous page")
    return items


def bars_token(query: BarsQuery, next_start_ns: int) -> str:
    """The token of the GetBars page starting at `next_start_ns`."""
    return _encode(
        [_BARS, query.symbol, query.interval, query.start_ns, query.end_ns, next_start_ns]
    )


def bars_cursor(token: str, query: BarsQuery) -> int | None:
    """Where the page `token` asks for starts (ns); None for "" (the first page)."""
    if not token:
        return None
    items = _decode(token)
    if len(items) != 6 or items[0] != _BARS or not isinstance(items[5], int):
        raise _invalid("is not a token from a previous GetBars page")
    if items[1:5] != [query.symbol, query.interval, query.start_ns, query.end_ns]:
        raise _invalid("belongs to another request (symbol, interval or time range differ)")
    next_start = items[5]
    if not query.start_ns <= next_start < query.end_ns:
        raise _invalid("points outside the requested time range")
    return next_start


def symbols_token(query: str, cursor: SymbolsCursor) -> str:
    """The token of the ListSymbols page after `cursor`."""
    return _encode([_SYMBOLS, query, cursor.rank, cursor.symbol])


def symbols_cursor(token: str, query: str) -> SymbolsCursor | None:
    """Where the page `token` asks for continues; None for "" (the first page)."""
    if not token:
        return None
    items = _decode(token)
    if (
        len(items) != 4
        or items[0] != _SYMBOLS
        or not isinstance(items[2], int)
        or not isinstance(items[3], str)
    ):
        raise _invalid("is not a token from a previous ListSymbols page")
    if items[1] != query:
        raise _invalid("belongs to another request (the query differs)")
    return SymbolsCursor(items[2], items[3])
