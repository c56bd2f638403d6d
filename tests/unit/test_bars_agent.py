"""The bars agent's step logic: however records are grouped into steps, the bars are those of
applying them one record at a time (what makes a restarted worker rebuild the same bars),
up to float rounding of the sums."""

from __future__ import annotations

import numpy as np
import pytest

from financelake.stream.agents.bars import apply_records
from financelake.stream.bars import BarBuilder, BarFrame
from financelake.stream.tick_columns import TickColumns

S = 1_000_000_000
START = 1_767_000_000 * S


def records(seed: int, late_every: int) -> list[TickColumns]:
    """Records of 50 trades for 3 symbols moving forward in time; every `late_every`-th
    record carries trades 40-200 s in the past (amendments and too-late ones)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(240):
        times = START + i * 2 * S + np.sort(rng.integers(0, 2 * S, 50))
        if late_every and i % late_every == late_every - 1:
            times = times - rng.integers(40, 200) * S
        out.append(
            TickColumns(
                symbol=("AAPL", "MSFT", "SPY")[i % 3],
                event_time_ns=times.astype(np.int64),
                price=rng.uniform(99, 101, 50),
                size=rng.integers(1, 100, 50).astype(np.float64),
                exchanges=[],
                trade_ids=[f"{i}-{k}" for k in range(50)],
            )
        )
    return out


def final_bars(frames: list[BarFrame]) -> dict[tuple[str, int], tuple[float, ...]]:
    """The last version of each bar, as (symbol, start) -> values."""
    out: dict[tuple[str, int], tuple[float, ...]] = {}
    for frame in frames:
        for i in range(len(frame)):
            key = (str(frame.symbol[i]), int(frame.start_time_ns[i]))
            out[key] = tuple(
                float(getattr(frame, c)[i])
                for c in ("open", "high", "low", "close", "volume", "vwap", "trade_count")
            )
    return out


@pytest.mark.parametrize("late_every", [0, 7, 23])
def test_any_grouping_of_records_gives_the_bars_of_one_record_at_a_time(late_every: int) -> None:
    feed = records(seed=late_every, late_every=late_every)
    one_by_one = BarBuilder(grace_ns=10 * S, retention_ns=60 * S)
    expected = [f for r in feed for f in apply_records(one_by_one, [r])]
    for seed in range(3):
        rng = np.random.default_rng(seed)
        grouped = BarBuilder(grace_ns=10 * S, retention_ns=60 * S)
        actual: list[BarFrame] = []
        position = 0
        while position < len(feed):
            size = int(rng.integers(1, 60))
            actual += apply_records(grouped, feed[position : position + size])
            position += size
        got, want = final_bars(actual), final_bars(expected)
        assert got.keys() == want.keys()
        for key, values in want.items():
            # Float sums (volume, price x size) differ in the last bit with summation order.
            assert got[key] == pytest.approx(values, rel=1e-12), key
        assert grouped.too_late_total == one_by_one.too_late_total
        assert grouped.watermark_ns == one_by_one.watermark_ns
    if late_every:
        assert one_by_one.too_late_total > 0
