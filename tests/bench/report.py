"""How every benchmark reports: a table for people, then its figures as one JSON line, also
written to `tests/bench/results/<name>.json` (BENCHMARKS.md)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"

Row = tuple[str, str, str]
"""(key, value as printed, note)."""


def render(rows: Sequence[Row]) -> str:
    """The rows as an aligned table."""
    width = max(len(name) for name, _, _ in rows)
    lines = [f"{'key':<{width}}  {'value':>12}  note", "-" * (width + 50)]
    lines += [f"{name:<{width}}  {value:>12}  {note}" for name, value, note in rows]
    return "\n".join(lines)


def publish(name: str, result: dict[str, Any], rows: Sequence[Row]) -> None:
    """Print the table, then the JSON line last, and write the JSON to the results folder."""
    print(render(rows))
    line = json.dumps(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(line + "\n")
    print(line)
