"""GetBars' whole-series cache follows the lake: new snapshots merge in, amendments win,
a compaction changes nothing, a rewritten history reloads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog

from financelake.services.ingestion.records import Interval
from financelake.services.marketdata.bar_store import BarStore
from financelake.stream.lake import BARS, ensure_tables
from financelake.stream.lake.maintenance import compact
from tests.integration.test_marketdata import _bar

T0 = datetime(2025, 3, 3, 14, 30, tzinfo=UTC)
NS = 1_000_000_000


def _minutes(first: int, count: int, close: float = 100.0) -> list[dict[str, Any]]:
    return [
        _bar("AAPL", "1m", T0 + timedelta(minutes=m), close + m, 100.0)
        for m in range(first, first + count)
    ]


def _append(catalog: SqlCatalog, rows: list[dict[str, Any]]) -> None:
    table = catalog.load_table(BARS.identifier)
    table.append(pa.Table.from_pylist(rows, schema=table.schema().as_arrow()))


def _closes(store: BarStore, interval: Interval = Interval.M1) -> list[float]:
    start = int(T0.timestamp()) * NS
    bars = store.bars("AAPL", interval, start, start + 86_400 * NS)
    closes: list[float] = bars["close"].to_pylist()
    return closes


def test_the_cache_follows_appends_amendments_and_compaction(tmp_path: Path) -> None:
    (tmp_path / "warehouse").mkdir()
    catalog = SqlCatalog(
        "t", uri=f"sqlite:///{tmp_path / 'c.db'}", warehouse=(tmp_path / "warehouse").as_uri()
    )
    ensure_tables(catalog)
    store = BarStore(catalog, refresh_interval_s=0)
    _append(catalog, _minutes(0, 30))
    assert _closes(store) == [100.0 + m for m in range(30)]

    _append(catalog, _minutes(30, 30))  # a later snapshot: merged in, not reloaded
    assert _closes(store) == [100.0 + m for m in range(60)]

    _append(catalog, [_bar("AAPL", "1m", T0 + timedelta(minutes=5), 555.0, 100.0, revision=1)])
    closes = _closes(store)
    assert len(closes) == 60
    assert closes[5] == 555.0
    assert _closes(store, Interval.H1) == [closes[-1]]  # resampled from the cached minutes

    table = catalog.load_table(BARS.identifier)
    assert compact(table).files_after < 3  # rewrites the files as the same rows
    assert _closes(store) == closes
