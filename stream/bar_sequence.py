"""Which arriving bars a per-(symbol, interval) state may apply, shared by the features and
alerts engines.

Kafka delivers at least once, so bars repeat; the bars agent re-emits an amended bar with a
higher revision; an import can publish bars older than the live ones. A state advanced bar by
bar can only take bars after the last one it applied, or a new revision of that last bar
(by restoring the state saved before it). `BarSequence` remembers the start and revision of
the last `memory` bars applied to one key (starts strictly increasing) and classifies each
arriving (start, revision) as an `Arrival`:

* NEW: starts after the last applied bar (gaps are normal: markets close);
* AMENDMENT: the last applied bar with a higher revision;
* DUPLICATE: a remembered bar with a revision at or below the applied one (a redelivery);
* LATE_AMENDMENT: an older remembered bar with a higher revision;
* OUT_OF_ORDER: before the last applied bar but never applied, or older than the memory.

Only NEW and AMENDMENT can be applied: the other three would need every later bar replayed.
The memory therefore decides only how a refused bar is reported (a redelivery is routine, an
out-of-order bar is worth a warning), never what the state becomes, so a short one suffices.
"""

from __future__ import annotations

import bisect
import enum
from collections import deque

import numpy as np
import numpy.typing as npt

from financelake.services.ingestion.records import Interval
from financelake.stream.indicators import StateDict

__all__ = ["DEFAULT_MEMORY", "Arrival", "BarKey", "BarSequence", "arrival_order"]

BarKey = tuple[str, str]
"""(symbol, interval value such as "1m")."""

# Covers a replay of the bars since the last checkpoint for intraday bars; checkpoints hold
# 2 * memory ints per key, so it stays small.
DEFAULT_MEMORY = 32

_INTERVALS = frozenset(interval.value for interval in Interval)


class Arrival(enum.Enum):
    """How an arriving bar relates to the bars already applied to its key."""

    NEW = "new"
    AMENDMENT = "amendment"
    DUPLICATE = "duplicate"
    LATE_AMENDMENT = "late_amendment"
    OUT_OF_ORDER = "out_of_order"


class BarSequence:
    """Starts and revisions of the last `memory` bars applied to one key."""

    __slots__ = ("revisions", "starts")

    def __init__(self, memory: int = DEFAULT_MEMORY) -> None:
        if memory < 1:
            raise ValueError(f"memory must be >= 1, got {memory}")
        self.starts: deque[int] = deque(maxlen=memory)
        self.revisions: deque[int] = deque(maxlen=memory)

    def admit(self, start_ns: int, revision: int) -> Arrival:
        """Classify a bar and, when it is NEW or an AMENDMENT, record it as applied."""
        if not self.starts or start_ns > self.starts[-1]:
            self.starts.append(start_ns)
            self.revisions.append(revision)
            return Arrival.NEW
        index = bisect.bisect_left(self.starts, start_ns)
        if self.starts[index] != start_ns:
            return Arrival.OUT_OF_ORDER
        if revision <= self.revisions[index]:
            return Arrival.DUPLICATE
        if index < len(self.starts) - 1:
            return Arrival.LATE_AMENDMENT
        self.revisions[index] = revision
        return Arrival.AMENDMENT

    def to_dict(self) -> StateDict:
        """A JSON-ready snapshot."""
        return {
            "memory": self.starts.maxlen,
            "starts": list(self.starts),
            "revisions": list(self.revisions),
        }

    @classmethod
    def from_dict(cls, data: StateDict) -> BarSequence:
        """Rebuild the sequence `to_dict` described."""
        sequence = cls(int(data["memory"]))
        sequence.starts.extend(int(s) for s in data["starts"])
        sequence.revisions.extend(int(r) for r in data["revisions"])
        return sequence


def arrival_order(
    symbol: npt.ArrayLike,
    interval: npt.ArrayLike,
    start_time_ns: npt.NDArray[np.int64],
    revision: npt.NDArray[np.int64],
) -> tuple[list[int], list[BarKey]]:
    """The order to apply bars in, (symbol, interval, start, revision), and each row's key.

    Refuses an interval that is not one of `Interval`'s values and columns of unequal length.
    """
    symbols, symbol_codes = np.unique(np.asarray(symbol, dtype=np.str_), return_inverse=True)
    intervals, interval_codes = np.unique(np.asarray(interval, dtype=np.str_), return_inverse=True)
    unknown = set(intervals.tolist()) - _INTERVALS
    if unknown:
        raise ValueError(f"unknown interval(s) {sorted(unknown)}; expected {sorted(_INTERVALS)}")
    n = len(start_time_ns)
    if not (len(symbol_codes) == len(interval_codes) == len(revision) == n):
        raise ValueError("every bar column must have the same length")
    order = np.lexsort((revision, start_time_ns, interval_codes, symbol_codes))
    keys = list(
        zip(symbols[symbol_codes].tolist(), intervals[interval_codes].tolist(), strict=True)
    )
    return order.tolist(), keys
