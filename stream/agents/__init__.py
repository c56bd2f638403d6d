"""The stream's agents, one module each; `core` holds what they share, `driver` the Faust glue.

This package module stays free of Faust imports: the StreamService reads the names below.
"""

from __future__ import annotations

#: The worker's agents, in pipeline order; each writes the lake as `<app_id>.<agent>`.
AGENTS = ("bronze", "bars", "imports", "features", "alerts")


def agent_group(app_id: str, agent: str) -> str:
    """The offsets group (snapshot-summary key suffix) an agent writes the lake as."""
    return f"{app_id}.{agent}"


def consumed_topics(ticks: str, bars: str) -> tuple[str, ...]:
    """The topics the worker's consumer group reads (lag is only meaningful for these)."""
    return (ticks, bars)
