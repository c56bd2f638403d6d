"""Where ImportHistory reads market data from: each source yields `Bars` or `Trades` chunks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RowProblem:
    """One source row that was refused, and why (reported to the caller, never dropped)."""

    line: int
    """1-based line in the source file (the header is line 1); 0 when not file-based."""
    field: str
    """The offending column, by our name (symbol, time, open, ...)."""
    reason: str
    time_ns: int | None = None
    """The row's time when it could be read."""


class SourceError(Exception):
    """A source could not deliver (unreachable, refused, rate limited, malformed)."""
