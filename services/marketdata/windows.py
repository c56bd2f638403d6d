"""The UTC windows bars are grouped into, without an exchange calendar: intraday widths
aligned to the Unix epoch, days from 00:00 UTC, weeks from Monday 00:00 UTC. GetBars'
resampling (`resample.resample_bars` without a calendar) and the live bars share them."""

from __future__ import annotations

import numpy as np

from financelake.services.ingestion.records import NANOS_PER_SECOND, Int64s, Interval

_DAY_NS = 86_400 * NANOS_PER_SECOND
_WEEK_NS = 7 * _DAY_NS
# 1970-01-01 was a Thursday: Monday-start weeks begin 3 days before the epoch's multiples.
_EPOCH_TO_MONDAY_NS = 3 * _DAY_NS


def window_width_ns(interval: Interval) -> int:
    """Length of an `interval` window in nanoseconds."""
    return interval.seconds * NANOS_PER_SECOND


def window_keys(times_ns: Int64s, interval: Interval) -> Int64s:
    """Start of the window holding each time (vectorised)."""
    if interval is Interval.WK1:
        weeks: Int64s = (
            times_ns + _EPOCH_TO_MONDAY_NS
        ) // _WEEK_NS * _WEEK_NS - _EPOCH_TO_MONDAY_NS
        return weeks
    width = window_width_ns(interval)
    aligned: Int64s = times_ns // width * width
    return aligned


def window_start(time_ns: int, interval: Interval) -> int:
    """Start of the `interval` window holding `time_ns`."""
    return int(window_keys(np.array([time_ns], dtype=np.int64), interval)[0])


def window_end(time_ns: int, interval: Interval) -> int:
    """The first `interval` window boundary at or after `time_ns`."""
    start = window_start(time_ns, interval)
    return start if start == time_ns else start + window_width_ns(interval)
