"""Reading alerts back from `gold.alerts`: filtered, newest first, a page at a time.

Filters go to the Iceberg scan (partition pruning on the event day, symbol and kind pushed
down); alerts are few, so the page is cut after a sort in Arrow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.table import Table


@dataclass(frozen=True)
class AlertCursor:
    """Where a page ended: the last alert's event time (µs) and id; the next page is older."""

    event_time_us: int
    alert_id: str


def read_alerts(
    table: Table,
    *,
    symbols: Sequence[str] = (),
    kinds: Sequence[str] = (),
    start_us: int | None = None,
    end_us: int | None = None,
    limit: int,
    after: AlertCursor | None = None,
) -> tuple[pa.Table, AlertCursor | None]:
    """Up to `limit` alerts, newest first (ties by id), older than `after`; and the cursor
    of the next page, or None on the last."""
    # Iceberg's filter syntax: the values are contract-validated symbols, our own kind
    # names and numbers, so quoting them is safe.
    clauses: list[str] = []
    if symbols:
        clauses.append(f"symbol IN ({_quoted(symbols)})")
    if kinds:
        clauses.append(f"kind IN ({_quoted(kinds)})")
    if start_us is not None:
        clauses.append(f"event_time >= '{_iso(start_us)}'")
    upper = end_us
    if after is not None:
        # A next page only holds alerts at or before the cursor's time.
        cursor_end = after.event_time_us + 1
        upper = cursor_end if upper is None else min(upper, cursor_end)
    if upper is not None:
        clauses.append(f"event_time < '{_iso(upper)}'")
    condition = " AND ".join(clauses) or "true"
    rows = table.scan(row_filter=condition).to_arrow()
    rows = rows.sort_by([("event_time", "descending"), ("alert_id", "descending")])
    if after is not None:
        times = pc.cast(rows["event_time"], pa.int64())
        older = pc.or_(
            pc.less(times, after.event_time_us),
            pc.and_(
                pc.equal(times, after.event_time_us), pc.less(rows["alert_id"], after.alert_id)
            ),
        )
        rows = rows.filter(older)
    page = rows.slice(0, limit)
    if rows.num_rows <= limit:
        return page, None
    last = page.slice(limit - 1, 1).to_pylist()[0]
    return page, AlertCursor(_micros(last["event_time"]), last["alert_id"])


def _micros(moment: object) -> int:
    # Arrow hands timestamps back as datetimes; the cursor keeps exact microseconds.
    return int(pa.scalar(moment, type=pa.timestamp("us", tz="UTC")).cast(pa.int64()).as_py())


def _quoted(values: Sequence[str]) -> str:
    return ", ".join(f"'{value}'" for value in sorted(set(values)))


def _iso(micros: int) -> str:
    seconds, fraction = divmod(micros, 1_000_000)
    return datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=fraction).isoformat()
