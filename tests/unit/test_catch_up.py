"""When a drained backlog is committed at once: `CatchUp`."""

from __future__ import annotations

from financelake.stream.agents.core import CatchUp


def test_a_drained_backlog_commits_once_when_the_lag_reaches_zero() -> None:
    catch_up = CatchUp(backlog_records=500)
    lags = [9_000, 4_000, 600, 120, 0, 0, 3, 0]
    assert [catch_up.drained(lag) for lag in lags] == [
        False,
        False,
        False,
        False,
        True,  # the step that read the last record of the backlog
        False,
        False,
        False,
    ]


def test_a_live_feed_never_that_far_behind_adds_no_commits() -> None:
    catch_up = CatchUp(backlog_records=500)
    assert not any(catch_up.drained(lag) for lag in [0, 40, 0, 499, 12, 0, 0, 160, 0])


def test_each_new_backlog_is_committed_when_drained() -> None:
    catch_up = CatchUp(backlog_records=500)
    assert [catch_up.drained(lag) for lag in [700, 0, 10, 0, 2_000, 1, 0]] == [
        False,
        True,
        False,
        False,
        False,
        False,
        True,
    ]
