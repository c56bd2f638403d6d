"""Exchange sessions as flat int64 arrays, loaded once per calendar name.

The synthetic market moves only in trading time, so it needs every session's open, close
and lunch break (XTKS, XHKG...) as nanoseconds, plus which sessions share a week. Pandas
objects from `exchange_calendars` are converted once here so the hot paths index numpy
arrays instead of calling into the calendar per session.

The loaded range is fixed (`CALENDAR_FIRST_DAY` .. `CALENDAR_LAST_DAY`): session positions
in it key the simulator's random streams, so moving the start would change every price.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from financelake.services import errors
from financelake.services.ingestion.records import Float64s, Int64s

if TYPE_CHECKING:
    import pandas as pd

CALENDAR_FIRST_DAY = "2000-01-01"
"""First day simulated; never change it (session positions seed the random streams)."""
CALENDAR_LAST_DAY = "2040-12-31"
"""Last day simulated; extending it leaves every earlier price unchanged."""
CONTINUOUS = "24x7"
"""Our name for round-the-clock trading (crypto-like), one session per UTC day."""

NANOS_PER_MINUTE = 60_000_000_000
_NANOS_PER_DAY = 86_400 * 1_000_000_000
_ALIASES = {CONTINUOUS: "24/7"}
_FIRST_NS = int(np.datetime64(CALENDAR_FIRST_DAY, "ns").astype(np.int64))
# The day after the last one, plus a day for sessions that close after midnight UTC.
_LAST_NS = int((np.datetime64(CALENDAR_LAST_DAY, "ns") + np.timedelta64(2, "D")).astype(np.int64))


class UnknownCalendar(errors.InvalidInput):
    """The calendar name is neither `24x7` nor an `exchange_calendars` code (XNYS, XLON...)."""

    default_reason = "UNKNOWN_CALENDAR"


class OutsideCalendar(errors.OutOfRange):
    """The requested time range leaves the simulated years."""

    default_reason = "OUTSIDE_SIMULATED_RANGE"


@dataclass(frozen=True, eq=False)
class TradingCalendar:
    """Every session of one calendar between the fixed first and last day, as arrays."""

    name: str
    open_ns: Int64s
    """Session open, UTC nanoseconds (first trading minute starts here)."""
    close_ns: Int64s
    """Session close, UTC nanoseconds (exclusive)."""
    break_start_ns: Int64s
    """Lunch break start, equal to `close_ns` when the session has no break."""
    break_end_ns: Int64s
    """Lunch break end, equal to `close_ns` when the session has no break."""
    minutes: Int64s
    """Trading minutes in each session (breaks excluded)."""
    day: Int64s
    """Session label as days since 1970-01-01 (the exchange's local date)."""
    week_first: Int64s
    """Position of the first session of the same Monday-to-Sunday week."""
    nominal_minutes: float
    """Length of a regular session (the median); early closes are shorter."""
    sessions_per_year: float
    continuous: bool
    """True when each session opens where the previous one closed (no overnight gap)."""

    def __len__(self) -> int:
        return len(self.open_ns)

    def sessions_overlapping(self, start_ns: int, end_ns: int) -> range:
        """Positions of the sessions with at least one trading minute in [start_ns, end_ns)."""
        self.check_covers(start_ns, end_ns)
        first = int(np.searchsorted(self.close_ns, start_ns, side="right"))
        stop = int(np.searchsorted(self.open_ns, end_ns, side="left"))
        return range(first, max(first, stop))

    def check_covers(self, start_ns: int, end_ns: int) -> None:
        """Raise `OutsideCalendar` unless [start_ns, end_ns) lies in the simulated years."""
        if start_ns < _FIRST_NS or end_ns > _LAST_NS:
            raise OutsideCalendar(
                f"synthetic data covers {CALENDAR_FIRST_DAY} to {CALENDAR_LAST_DAY}",
                metadata={"start_ns": str(start_ns), "end_ns": str(end_ns)},
            )

    def minute_starts(self, session: int) -> Int64s:
        """Start of every trading minute of one session, UTC nanoseconds, ascending."""
        before = np.arange(
            self.open_ns[session], self.break_start_ns[session], NANOS_PER_MINUTE, dtype=np.int64
        )
        after = np.arange(
            self.break_end_ns[session], self.close_ns[session], NANOS_PER_MINUTE, dtype=np.int64
        )
        return np.concatenate((before, after)) if len(after) else before

    def session_fraction(self, session: int) -> Float64s:
        """Midpoint of each trading minute as a fraction of the session (0 open, 1 close)."""
        count = int(self.minutes[session])
        return (np.arange(count, dtype=np.float64) + 0.5) / count


@functools.lru_cache(maxsize=16)
def trading_calendar(name: str) -> TradingCalendar:
    """The sessions of `name` (`24x7` or an exchange MIC such as XNYS), loaded once."""
    # Imported on first use: with pandas it costs a second, which every `financelake`
    # command would otherwise pay.
    import exchange_calendars

    try:
        with warnings.catch_warnings():
            # exchange_calendars 4.13 reads tz-aware Series.values, deprecated in pandas 3.1;
            # the warning is theirs, not actionable here.
            warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
            raw = exchange_calendars.get_calendar(
                _ALIASES.get(name, name), start=CALENDAR_FIRST_DAY, end=CALENDAR_LAST_DAY
            )
    except exchange_calendars.errors.InvalidCalendarName as exc:
        raise UnknownCalendar(
            f"unknown calendar {name!r}: use {CONTINUOUS!r} or an exchange code such as XNYS",
            violations=[errors.FieldViolation("calendar", f"unknown calendar {name!r}")],
        ) from exc
    return _from_schedule(name, raw.schedule)


def _from_schedule(name: str, schedule: pd.DataFrame) -> TradingCalendar:
    open_ns = _nanos(schedule["open"])
    close_ns = _nanos(schedule["close"])
    has_break = schedule["break_start"].notna().to_numpy()
    # Sessions without a break get a zero-length one at the close, so minute arithmetic
    # needs no branch.
    break_start = np.where(has_break, _nanos(schedule["break_start"]), close_ns)
    break_end = np.where(has_break, _nanos(schedule["break_end"]), close_ns)
    minutes = ((close_ns - open_ns) - (break_end - break_start)) // NANOS_PER_MINUTE
    day = schedule.index.to_numpy().astype("datetime64[D]").astype(np.int64)
    years = (day[-1] - day[0] + 1) / 365.25
    return TradingCalendar(
        name=name,
        open_ns=open_ns,
        close_ns=close_ns,
        break_start_ns=break_start.astype(np.int64),
        break_end_ns=break_end.astype(np.int64),
        minutes=minutes.astype(np.int64),
        day=day,
        week_first=_week_first(day),
        nominal_minutes=float(np.median(minutes)),
        sessions_per_year=len(day) / years,
        continuous=bool(np.all(open_ns[1:] == close_ns[:-1])),
    )


def _nanos(column: pd.Series[pd.Timestamp]) -> Int64s:
    # NaT (no break) becomes int64 min here; callers replace those rows.
    nanos: Int64s = column.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    return nanos


def _week_first(day: Int64s) -> Int64s:
    # 1970-01-01 was a Thursday (weekday 3 with Monday = 0).
    monday = day - (day + 3) % 7
    _, first, inverse = np.unique(monday, return_index=True, return_inverse=True)
    week_first: Int64s = first[inverse].astype(np.int64)
    return week_first
