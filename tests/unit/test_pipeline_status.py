"""GetPipelineStatus's arithmetic: lag per partition, last commit per table, agent throughput."""

from __future__ import annotations

import pytest

from financelake.services.stream.pipeline import (
    NEVER_COMMITTED,
    PartitionOffsets,
    TableCommit,
    agent_throughput,
    table_commit,
)
from financelake.stream.lake.describe import SnapshotInfo

pytestmark = pytest.mark.unit

NOW = 1_800_000_000_000
KEY = "financelake.offsets.financelake-stream.bronze"
OTHER = "financelake.offsets.financelake-stream.bars"


def _summary(rows: int | None, key: str = KEY) -> dict[str, str]:
    summary = {key: '{"ticks":{"0":1}}'}
    if rows is not None:
        summary["added-records"] = str(rows)
    return summary


@pytest.mark.parametrize(
    ("end", "committed", "lag"),
    [(10, 4, 6), (10, 10, 0), (10, NEVER_COMMITTED, 10), (0, NEVER_COMMITTED, 0), (3, 7, 0)],
    ids=["behind", "caught-up", "never-committed", "empty", "committed-past-end"],
)
def test_lag_counts_the_records_not_committed(end: int, committed: int, lag: int) -> None:
    assert PartitionOffsets("ticks", 0, end, committed).lag == lag


def test_throughput_sums_the_agents_rows_and_rates_the_last_minute() -> None:
    commits = [
        (NOW - 5_000, _summary(300)),
        (NOW - 30_000, _summary(600)),
        (NOW - 59_999, _summary(300)),
        (NOW - 60_000, _summary(1_000)),  # exactly a minute ago: outside the window
        (NOW - 3_600_000, _summary(5_000)),
        (NOW - 1_000, _summary(7_000, key=OTHER)),  # another agent's commit
        (NOW - 2_000, {"added-records": "50"}),  # no offsets key: not an agent's commit
        (NOW - 3_000, _summary(None)),  # offsets advanced, no rows
    ]

    throughput = agent_throughput("bronze", KEY, commits, NOW)

    assert throughput.agent == "bronze"
    assert throughput.records_total == 300 + 600 + 300 + 1_000 + 5_000
    assert throughput.records_per_second == pytest.approx(1_200 / 60)


def test_throughput_of_an_agent_that_never_committed_is_zero() -> None:
    throughput = agent_throughput("alerts", KEY, [(NOW, _summary(10, key=OTHER))], NOW)

    assert (throughput.records_per_second, throughput.records_total) == (0.0, 0)


def test_throughput_window_is_a_parameter() -> None:
    commits = [(NOW - 5_000, _summary(100)), (NOW - 15_000, _summary(100))]

    assert agent_throughput("bronze", KEY, commits, NOW, window_ms=10_000).records_per_second == 10


def _snapshot(snapshot_id: int, at: int, rows: int | None) -> SnapshotInfo:
    return SnapshotInfo(snapshot_id, snapshot_id - 1, at, "append", _summary(rows))


def test_table_commit_reports_the_current_snapshot_and_freshness_of_the_newest_data() -> None:
    lineage = [
        _snapshot(3, NOW - 1_000, 0),  # offsets only: the data is older
        _snapshot(2, NOW - 7_500, 42),
        _snapshot(1, NOW - 60_000, 10),
    ]

    assert table_commit("bronze.ticks", lineage, NOW) == TableCommit(
        "bronze.ticks", 3, NOW - 1_000, 0, 7_500
    )


def test_a_table_never_committed_has_no_commit_and_no_freshness() -> None:
    assert table_commit("gold.alerts", [], NOW) == TableCommit("gold.alerts", 0, None, 0, None)


def test_a_table_without_rows_has_a_commit_but_no_freshness() -> None:
    commit = table_commit("silver.bars", [_snapshot(1, NOW - 10, None)], NOW)

    assert (commit.snapshot_id, commit.commit_time_ms, commit.freshness_ms) == (1, NOW - 10, None)
