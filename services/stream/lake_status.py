"""The lake's side of GetPipelineStatus: last commit per table and rows per agent.

Reads table metadata only (the snapshot log with its summaries), never manifests or data
files, so it stays cheap however large the tables grow. Blocking: call it in a thread.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyiceberg.catalog import Catalog

from financelake.services.stream.pipeline import (
    AgentThroughput,
    TableCommit,
    agent_throughput,
    table_commit,
)
from financelake.stream.agents import AGENTS, agent_group
from financelake.stream.lake.describe import lineage
from financelake.stream.lake.tables import TABLES
from financelake.stream.lake.writer import offsets_key


@dataclass(frozen=True)
class LakeStatus:
    """The latest commit of every lake table and the throughput of every agent."""

    tables: list[TableCommit]
    agents: list[AgentThroughput]


def read_lake_status(catalog: Catalog, app_id: str, now_ms: int) -> LakeStatus:
    """The lake's state at `now_ms` (Unix ms) for the stream app `app_id`."""
    tables: list[TableCommit] = []
    commits: list[tuple[int, dict[str, str]]] = []
    for definition in TABLES:
        snapshots = lineage(catalog.load_table(definition.identifier))
        tables.append(table_commit(definition.identifier, snapshots, now_ms))
        # Agents only ever append; a compaction carries their offsets key but no new rows.
        commits.extend((s.commit_time_ms, s.summary) for s in snapshots if s.operation == "append")
    agents = [
        agent_throughput(agent, offsets_key(agent_group(app_id, agent)), commits, now_ms)
        for agent in AGENTS
    ]
    return LakeStatus(tables, agents)
