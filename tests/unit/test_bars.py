"""Stream bars: OHLCV/VWAP per event-time minute, exact partial merging, lateness policy."""

from __future__ import annotations

import json
import logging

import numpy as np
import pyarrow as pa
import pytest

from financelake.services.ingestion.records import BarSource, Interval
from financelake.stream.bars import (
    BarBuilder,
    BarFrame,
    aggregate_bars,
    aggregate_partials,
    bars_from_partials,
    merge_partials,
    symbols_of_runs,
)

pytestmark = pytest.mark.unit

S = 1_000_000_000
M = 60 * S
T0 = 1_700_000_040 * S  # 2023-11-14 22:14:00 UTC, a minute boundary
SYMBOLS = np.array(["AAPL", "MSFT", "GOOG"])


def _random(rng: np.random.Generator, n: int, span_ns: int = 10 * M):
    sym = SYMBOLS[rng.integers(0, len(SYMBOLS), n)]
    # Coarse times so event-time ties happen and exercise the input-order tie-break.
    t = T0 + rng.integers(0, span_ns // S, n).astype(np.int64) * S
    price = np.round(rng.uniform(10, 20, n), 2)
    size = rng.integers(0, 5, n).astype(np.float64)  # includes zero sizes
    return sym, t, price, size


def _reference(sym, t, price, size) -> dict[tuple[str, int], dict[str, float]]:
    """The straightforward loop the vectorised code must agree with."""
    out: dict[tuple[str, int], dict[str, float]] = {}
    for i in range(len(t)):
        key = (str(sym[i]), int(t[i]) // M * M)
        bar = out.get(key)
        if bar is None:
            out[key] = bar = {
                "open": price[i],
                "high": price[i],
                "low": price[i],
                "ot": t[i],
                "ct": t[i],
                "close": price[i],
                "volume": 0.0,
                "pv": 0.0,
                "ps": 0.0,
                "n": 0,
            }
        if t[i] < bar["ot"]:
            bar["open"], bar["ot"] = price[i], t[i]
        if t[i] >= bar["ct"]:  # >= : a later-arriving tie becomes the close
            bar["close"], bar["ct"] = price[i], t[i]
        bar["high"] = max(bar["high"], price[i])
        bar["low"] = min(bar["low"], price[i])
        bar["volume"] += size[i]
        bar["pv"] += price[i] * size[i]
        bar["ps"] += price[i]
        bar["n"] += 1
    return out


def _as_dict(frame: BarFrame) -> dict[tuple[str, int], tuple[float, ...]]:
    return {
        (str(frame.symbol[i]), int(frame.start_time_ns[i])): (
            float(frame.open[i]),
            float(frame.high[i]),
            float(frame.low[i]),
            float(frame.close[i]),
            float(frame.volume[i]),
            float(frame.vwap[i]),
            int(frame.trade_count[i]),
        )
        for i in range(len(frame))
    }


def test_ohlcv_vwap_match_reference_loop():
    rng = np.random.default_rng(1)
    sym, t, price, size = _random(rng, 5_000)
    bars = aggregate_bars(sym, t, price, size)
    ref = _reference(sym, t, price, size)
    got = _as_dict(bars)
    assert got.keys() == ref.keys()
    for key, r in ref.items():
        o, h, lo, c, v, vwap, n = got[key]
        assert (o, h, lo, c, n) == (r["open"], r["high"], r["low"], r["close"], r["n"])
        assert v == pytest.approx(r["volume"], rel=1e-12)
        expected = r["pv"] / r["volume"] if r["volume"] > 0 else r["ps"] / r["n"]
        assert vwap == pytest.approx(expected, rel=1e-12)
    # sorted by (symbol, start)
    keys = list(zip(bars.symbol.tolist(), bars.start_time_ns.tolist(), strict=True))
    assert keys == sorted(keys)
    assert (bars.revision == 0).all()


def test_slow_sort_paths_agree_with_reference():
    rng = np.random.default_rng(2)
    sym, t, price, size = _random(rng, 500)
    # Arrival numbers not increasing down the rows: ties must follow seq, not row order.
    rev = np.arange(len(t))[::-1]
    part = aggregate_partials(sym[rev], t[rev], price[rev], size[rev], seq=rev)
    assert _as_dict(bars_from_partials(part)) == _as_dict(aggregate_bars(sym, t, price, size))
    # A time span too wide for the packed sort key (and pre-1970 times) uses lexsort.
    wide = np.array([-(2**62), 2**62, -(2**62) + 1, 0, -1], dtype=np.int64)
    bars = aggregate_bars(["A", "B", "A", "B", "B"], wide, [1.0, 2.0, 3.0, 4.0, 5.0], [1.0] * 5)
    ref = _reference(
        np.array(["A", "B", "A", "B", "B"]), wide, [1.0, 2.0, 3.0, 4.0, 5.0], [1.0] * 5
    )
    assert set(_as_dict(bars)) == set(ref)
    assert bars.start_time_ns.tolist() == [-(2**62) // M * M, -M, 0, 2**62 // M * M]
    assert bars.close.tolist() == [3.0, 5.0, 4.0, 2.0]


def test_zero_volume_bar_vwap_is_mean_price():
    bars = aggregate_bars(["X", "X"], [T0, T0 + S], [10.0, 12.0], [0.0, 0.0])
    assert bars.vwap.tolist() == [11.0]
    assert bars.volume.tolist() == [0.0]


def test_trade_exactly_on_minute_boundary_opens_that_minute():
    t = [T0 - 1, T0, T0 + M - 1, T0 + M]
    bars = aggregate_bars(["X"] * 4, t, [1.0, 2.0, 3.0, 4.0], [1.0] * 4)
    assert bars.start_time_ns.tolist() == [T0 - M, T0, T0 + M]
    assert bars.open.tolist() == [1.0, 2.0, 4.0]
    assert bars.close.tolist() == [1.0, 3.0, 4.0]


def test_out_of_order_within_batch_and_ties_by_input_order():
    # Event time decides open/close, not arrival; equal times keep arrival order.
    t = [T0 + 30 * S, T0 + 5 * S, T0 + 50 * S, T0 + 5 * S, T0 + 50 * S]
    price = [3.0, 1.0, 5.0, 2.0, 6.0]
    bars = aggregate_bars(["X"] * 5, t, price, [1.0] * 5)
    assert (bars.open[0], bars.close[0]) == (1.0, 6.0)
    assert (bars.high[0], bars.low[0], bars.trade_count[0]) == (6.0, 1.0, 5)


def test_several_symbols_interleaved():
    sym = ["B", "A", "B", "A", "C"]
    t = [T0, T0 + S, T0 + 2 * S, T0 + M, T0]
    bars = aggregate_bars(sym, t, [1.0, 2.0, 3.0, 4.0, 5.0], [1.0, 1.0, 3.0, 1.0, 1.0])
    assert bars.symbol.tolist() == ["A", "A", "B", "C"]
    assert bars.start_time_ns.tolist() == [T0, T0 + M, T0, T0]
    assert bars.vwap[2] == pytest.approx((1.0 + 9.0) / 4.0)
    per_symbol = bars.by_symbol()
    assert [b.symbol for b in per_symbol] == ["A", "B", "C"]
    assert per_symbol[0].interval is Interval.M1
    assert per_symbol[0].source is BarSource.TRADES
    assert per_symbol[0].close.tolist() == [2.0, 4.0]


def test_merge_of_random_splits_equals_whole():
    rng = np.random.default_rng(7)
    sym, t, price, size = _random(rng, 2_000, span_ns=3 * M)
    seq = np.arange(len(t))
    whole = aggregate_partials(sym, t, price, size, seq=seq)
    for _ in range(50):
        # Any subset split (not only prefix/suffix), as batches arriving in any order would be.
        mask = rng.random(len(t)) < rng.random()
        a = aggregate_partials(sym[mask], t[mask], price[mask], size[mask], seq=seq[mask])
        b = aggregate_partials(sym[~mask], t[~mask], price[~mask], size[~mask], seq=seq[~mask])
        merged, _ = merge_partials(b, a) if rng.random() < 0.5 else merge_partials(a, b)
        for name in (
            "symbol",
            "start_time_ns",
            "open",
            "high",
            "low",
            "close",
            "trade_count",
            "first_seq",
            "last_seq",
        ):
            np.testing.assert_array_equal(getattr(merged, name), getattr(whole, name), name)
        # Integer sizes and cent prices: volume sums are exact; price*size sums to rounding.
        np.testing.assert_array_equal(merged.volume, whole.volume)
        np.testing.assert_allclose(merged.price_volume, whole.price_volume, rtol=1e-12)
        np.testing.assert_allclose(
            bars_from_partials(merged).vwap, bars_from_partials(whole).vwap, rtol=1e-12
        )


def test_builder_across_batches_matches_one_shot():
    rng = np.random.default_rng(3)
    sym, t, price, size = _random(rng, 3_000)
    order = np.argsort(t, kind="stable")
    sym, t, price, size = sym[order], t[order], price[order], size[order]
    builder = BarBuilder(grace_ns=10 * S)
    emitted: list[BarFrame] = []
    for chunk in np.array_split(np.arange(len(t)), 17):
        updates = builder.add(sym[chunk], t[chunk], price[chunk], size[chunk])
        assert updates.too_late == 0
        assert len(updates.amended) == 0
        emitted.append(updates.closed)
    final = {}
    for frame in emitted:
        final.update(_as_dict(frame))
    final.update(_as_dict(updates.in_progress))
    whole = _as_dict(aggregate_bars(sym, t, price, size))
    assert final.keys() == whole.keys()
    for key, row in whole.items():
        assert final[key] == pytest.approx(row, rel=1e-12)


def test_window_closes_only_when_watermark_passes_its_end():
    builder = BarBuilder(grace_ns=10 * S)
    up = builder.add(["X"], [T0 + 5 * S], [1.0], [1.0])
    assert len(up.closed) == 0
    assert up.in_progress.start_time_ns.tolist() == [T0]
    # watermark = T0 + 69s - 10s = T0 + 59s < end (T0 + 60s): still open
    up = builder.add(["X"], [T0 + M + 9 * S], [2.0], [1.0])
    assert len(up.closed) == 0
    assert up.watermark_ns == T0 + 59 * S
    # watermark = T0 + 60s == end: closes, final, revision 0
    up = builder.add(["X"], [T0 + M + 10 * S], [3.0], [1.0])
    assert up.closed.start_time_ns.tolist() == [T0]
    assert up.closed.revision.tolist() == [0]
    assert up.in_progress.start_time_ns.tolist() == [T0 + M]
    # emitted once only
    up = builder.add(["X"], [T0 + M + 11 * S], [3.0], [1.0])
    assert len(up.closed) == 0


def test_late_within_grace_amends_with_revision(caplog: pytest.LogCaptureFixture):
    builder = BarBuilder(grace_ns=10 * S)  # retention defaults to grace
    builder.add(["X"], [T0 + 5 * S], [10.0], [1.0])
    up = builder.add(["X"], [T0 + M + 10 * S], [11.0], [1.0])  # watermark T0+60s: closes T0
    assert up.closed.close.tolist() == [10.0]
    # Late (T0 window closed) but the window is retained until watermark > T0 + 70s.
    up = builder.add(["X", "X"], [T0 + 1 * S, T0 + 59 * S], [9.0, 12.0], [1.0, 2.0])
    assert up.too_late == 0
    assert len(up.closed) == 0
    amended = up.amended
    assert amended.start_time_ns.tolist() == [T0]
    assert amended.revision.tolist() == [1]
    assert (amended.open[0], amended.close[0]) == (9.0, 12.0)
    assert (amended.high[0], amended.low[0], amended.trade_count[0]) == (12.0, 9.0, 3)
    assert amended.volume[0] == 4.0
    up = builder.add(["X"], [T0 + 30 * S], [10.5], [1.0])
    assert up.amended.revision.tolist() == [2]
    assert builder.too_late_total == 0
    assert "too late" not in caplog.text


def test_too_late_is_counted_and_logged_not_applied(caplog: pytest.LogCaptureFixture):
    builder = BarBuilder(grace_ns=10 * S)
    builder.add(["X"], [T0 + 5 * S], [10.0], [1.0])
    builder.add(["X"], [T0 + M + 25 * S], [11.0], [1.0])  # watermark T0+75s: T0 evicted
    with caplog.at_level(logging.WARNING, logger="financelake.stream.bars"):
        up = builder.add(
            ["X", "Y", "X", "X"],
            [T0 + 30 * S, T0 + 1 * S, T0 + M + 1 * S, T0 - 5 * M],
            [1.0, 2.0, 3.0, 4.0],
            [1.0, 1.0, 1.0, 1.0],
        )
    assert up.too_late == 3
    assert up.too_late_by_symbol == {"X": 2, "Y": 1}
    assert builder.too_late_total == 3
    assert "3 trade(s) too late" in caplog.text
    assert len(up.amended) == 0
    assert len(up.closed) == 0
    # The one admissible trade (next minute, still open) was applied.
    assert up.in_progress.trade_count.tolist() == [2]
    assert up.in_progress.low.tolist() == [3.0]
    # A batch of nothing but too-late trades changes no bar and keeps the watermark.
    up = builder.add(["Z"], [T0], [1.0], [1.0])
    assert (up.too_late, builder.too_late_total) == (1, 4)
    assert up.watermark_ns == T0 + 75 * S
    assert up.in_progress.trade_count.tolist() == [2]


def test_late_first_trade_of_a_retained_window_is_emitted_final():
    builder = BarBuilder(grace_ns=10 * S)
    builder.add(["X"], [T0 + M + 12 * S], [1.0], [1.0])  # watermark T0 + 62s
    up = builder.add(["Y"], [T0 + 50 * S], [2.0], [1.0])  # Y's T0 window: closed, not evicted
    assert up.too_late == 0
    assert up.closed.symbol.tolist() == ["Y"]
    assert up.closed.revision.tolist() == [0]


def test_eviction_keeps_memory_bounded():
    builder = BarBuilder(grace_ns=10 * S, retention_ns=30 * S)
    rng = np.random.default_rng(5)
    sizes = []
    total_closed = 0
    for minute in range(300):
        n = 200
        t = T0 + minute * M + np.sort(rng.integers(0, M, n))
        sym = SYMBOLS[rng.integers(0, len(SYMBOLS), n)]
        up = builder.add(sym, t, np.full(n, 10.0), np.ones(n))
        total_closed += len(up.closed)
        sizes.append(builder.window_count)
    # grace + retention (40 s) < one minute: at most the current and the previous window.
    assert max(sizes) <= 2 * len(SYMBOLS)
    assert total_closed >= 299 * len(SYMBOLS) - len(SYMBOLS)


def test_pyarrow_symbols_give_the_same_bars_as_numpy():
    rng = np.random.default_rng(11)
    sym, t, price, size = _random(rng, 1_000)
    expected = _as_dict(aggregate_bars(sym, t, price, size))
    as_array = pa.array(sym.tolist())
    chunked = pa.chunked_array([sym[:400].tolist(), sym[400:].tolist()])
    for column in (as_array, chunked):
        frame = aggregate_bars(column, t, price, size)
        assert _as_dict(frame) == expected
        assert frame.symbol.tolist() == sorted(frame.symbol.tolist())
    with pytest.raises(ValueError, match="nulls"):
        aggregate_bars(pa.array(["X", None]), [T0, T0], [1.0, 1.0], [1.0, 1.0])


def test_symbols_encoded_by_runs_give_the_same_bars_as_strings():
    rng = np.random.default_rng(12)
    runs, lengths = ["MSFT", "AAPL", "MSFT", "BTC-USD"], [300, 200, 450, 50]
    sym = np.repeat(runs, lengths)
    _, t, price, size = _random(rng, len(sym))
    encoded = symbols_of_runs(runs, lengths)
    assert encoded.names.tolist() == ["AAPL", "BTC-USD", "MSFT"]
    assert _as_dict(aggregate_bars(encoded, t, price, size)) == _as_dict(
        aggregate_bars(sym, t, price, size)
    )


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="same length"):
        aggregate_bars(["X"], [T0, T0], [1.0], [1.0])
    with pytest.raises(ValueError, match="intraday"):
        BarBuilder(interval=Interval.D1)
    with pytest.raises(ValueError, match=">= 0"):
        BarBuilder(grace_ns=-1)
    empty = aggregate_bars([], [], [], [])
    assert len(empty) == 0
    assert BarBuilder().add([], [], [], []).watermark_ns is None


def test_a_builder_restored_from_its_checkpoint_continues_identically() -> None:
    rng = np.random.default_rng(7)
    n = 6000
    times = np.sort(rng.integers(0, 600 * S, n)) + 1_700_000_000 * S
    symbols = rng.choice(["AAPL", "ABNB", "BTC-USD"], n)  # same first letters on purpose
    prices = rng.uniform(10, 11, n)
    sizes = rng.integers(1, 100, n).astype(np.float64)
    straight = BarBuilder(grace_ns=5 * S, retention_ns=30 * S)
    restored = BarBuilder(grace_ns=5 * S, retention_ns=30 * S)
    for lo in range(0, n, 500):
        part = slice(lo, lo + 500)
        expected = straight.add(symbols[part], times[part], prices[part], sizes[part])
        restored = BarBuilder.from_dict(json.loads(json.dumps(restored.to_dict())))
        actual = restored.add(symbols[part], times[part], prices[part], sizes[part])
        for name in ("closed", "amended", "in_progress"):
            a, e = getattr(actual, name), getattr(expected, name)
            for column in ("symbol", "start_time_ns", "open", "close", "volume", "vwap"):
                assert np.array_equal(getattr(a, column), getattr(e, column)), (name, column)
    assert restored.watermark_ns == straight.watermark_ns
    assert restored.window_count == straight.window_count
