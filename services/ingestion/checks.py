"""Semantic checks of trade batches beyond the contract's protovalidate rules.

The contract already refuses non-finite or non-positive prices, negative sizes, bad symbols,
duplicate trade ids and oversized batches. What a rule cannot know is the clock: a trade
stamped well after now is a unit or clock error at the source. Plain functions over plain
sequences, so the hot path costs one C-level max() per batch when all is well, or nothing
when the caller already knows each batch's latest time (read off the wire).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from financelake.services.errors import FieldViolation


class BatchColumns(Protocol):
    """The columns of one batch the checks need (a TickBatch has them)."""

    @property
    def event_time_unix_nanos(self) -> Sequence[int]:
        """Trade times, nanoseconds since the epoch."""
        ...


def future_trade_violations(
    batches: Sequence[BatchColumns],
    now_ns: int,
    max_future_skew_ns: int,
    *,
    prefix: str,
    latest_ns: Sequence[int | None] | None = None,
) -> list[FieldViolation]:
    """One violation per trade stamped later than now + skew, with its field path.
    `latest_ns`: each batch's latest trade time where known (None: read from the batch)."""
    limit = now_ns + max_future_skew_ns
    violations: list[FieldViolation] = []
    for index, batch in enumerate(batches):
        known = None if latest_ns is None else latest_ns[index]
        if known is not None and known <= limit:
            continue
        times = batch.event_time_unix_nanos
        if not times or max(times) <= limit:
            continue
        violations.extend(
            FieldViolation(
                field=f"{prefix}[{index}].event_time_unix_nanos[{row}]",
                description=(
                    f"must not be later than now + {max_future_skew_ns / 1e9:.0f}s "
                    "(is the source's clock or unit right?)"
                ),
                reason="EVENT_TIME_IN_FUTURE",
            )
            for row, time_ns in enumerate(times)
            if time_ns > limit
        )
    return violations
