"""Dividends and splits a history source reported beside its bars, as numpy columns.

Shared by the Yahoo and Alpha Vantage sources so callers record both the same way; it lives
in its own module so importing it does not pull in yfinance or pandas.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from financelake.services.ingestion.records import Float64s, Int64s


@dataclass(frozen=True, eq=False)
class CorporateActions:
    """Dividend and split events of one symbol, row i across every column, ordered by time."""

    symbol: str
    time_ns: Int64s
    """Event day (ex-date) as midnight UTC of that date, nanoseconds since the Unix epoch."""
    dividend: Float64s
    """Cash dividend per share on that day; 0 when the row is a split only."""
    split_ratio: Float64s
    """New shares per old share (2.0 for a 2-for-1 split); 1.0 when the row is a dividend only."""

    def __len__(self) -> int:
        return len(self.time_ns)

    @classmethod
    def empty(cls, symbol: str) -> CorporateActions:
        """No events."""
        return cls(
            symbol=symbol,
            time_ns=np.zeros(0, dtype=np.int64),
            dividend=np.zeros(0, dtype=np.float64),
            split_ratio=np.ones(0, dtype=np.float64),
        )
