"""Training data from `gold.features`: the newest computation of each bar, scale-free
features, and next-bar labels.

`read_features` scans the table at one snapshot (recorded with every model trained on it) and
keeps, per (symbol, interval, start_time), the row with the latest `computed_time` (an amended
bar adds a row). `direction_dataset` and `anomaly_dataset` turn those rows into arrays.

Direction and return models take `DIRECTION_FEATURES`, in this order, each computed from ONE
row (the bar and the indicators the stream computed up to it), so serving needs only a
symbol's latest row and no feature can see a later bar. Ratios rather than prices make one
model serve symbols of any price:

    return            close / previous close - 1 (the table's `return`)
    close_to_sma_20   close / sma_20 - 1
    close_to_sma_50   close / sma_50 - 1
    ema_12_to_ema_26  ema_12 / ema_26 - 1
    rsi_14            rsi_14 / 100
    macd_to_close     macd / close
    macd_signal_to_close  macd_signal / close
    macd_hist_to_close    macd_hist / close
    bb_position       (close - bb_lower) / (bb_upper - bb_lower); 0.5 when the bands meet
    bb_width          (bb_upper - bb_lower) / bb_middle
    atr_14_to_close   atr_14 / close
    stoch_k           stoch_k / 100
    stoch_d           stoch_d / 100
    volatility_20     volatility_20 (already a std of log returns)

`obv` and `vwap` are left out: both accumulate from the stream's first bar of a symbol, so
their level says when the stream started, not what the market did.

Labels, per series in time order: `up` = the next bar closes above this bar's close, and
`next_return` = next close / close - 1. A series' last bar has no label. Rows whose features are
not all finite (indicators warming up) are dropped.

The anomaly model takes `ANOMALY_FEATURES`: |z| of the bar's log return and z of its
log1p(volume), each against the previous `window` bars of the series, exactly the scores of
the stream's price_move and volume_spike rules (`financelake.stream.alert_rules`), so the
alerts agent already has the model's input at hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import And, BooleanExpression, EqualTo, In, Reference
from pyiceberg.expressions.literals import literal

# The indicators' own chunked rolling reductions, so the anomaly scores are computed the
# way every other windowed value of the lake is.
from financelake.stream.indicators._window import rolling_max, rolling_min, rolling_std, rolling_sum
from financelake.stream.lake.tables import FEATURES

__all__ = [
    "ANOMALY_FEATURES",
    "DIRECTION_FEATURES",
    "AnomalyDataset",
    "Dataset",
    "FeatureRows",
    "anomaly_dataset",
    "anomaly_features",
    "direction_dataset",
    "direction_features",
    "latest_rows",
    "read_features",
]

Float32s = npt.NDArray[np.float32]
Float64s = npt.NDArray[np.float64]
Int8s = npt.NDArray[np.int8]
Int64s = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
Times = npt.NDArray[np.datetime64]
Strings = npt.NDArray[np.object_]

DIRECTION_FEATURES: tuple[str, ...] = (
    "return",
    "close_to_sma_20",
    "close_to_sma_50",
    "ema_12_to_ema_26",
    "rsi_14",
    "macd_to_close",
    "macd_signal_to_close",
    "macd_hist_to_close",
    "bb_position",
    "bb_width",
    "atr_14_to_close",
    "stoch_k",
    "stoch_d",
    "volatility_20",
)
ANOMALY_FEATURES: tuple[str, ...] = ("abs_return_z", "volume_z")

# The gold.features columns the direction features are computed from.
_DIRECTION_INPUTS = (
    "close",
    "return",
    "sma_20",
    "sma_50",
    "ema_12",
    "ema_26",
    "rsi_14",
    "macd",
    "macd_signal",
    "macd_hist",
    "bb_upper",
    "bb_middle",
    "bb_lower",
    "atr_14",
    "stoch_k",
    "stoch_d",
    "volatility_20",
)
_SERIES_KEY = ("symbol", "interval")
_BAR_KEY = (*_SERIES_KEY, "start_time")
_READ_COLUMNS = tuple(FEATURES.schema.as_arrow().names)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, eq=False)
class FeatureRows:
    """gold.features rows as one snapshot holds them, newest computation of each bar only."""

    rows: pa.Table
    """Sorted by (symbol, interval, start_time)."""
    interval: str
    snapshot_id: int | None
    """The snapshot read; None when the table had none (it is empty)."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """Labelled rows for the direction and return models, in time order (then symbol)."""

    features: Float32s
    """(rows, len(feature_names)), all finite."""
    up: Int8s
    """1 when the next bar closes above this bar's close, else 0."""
    next_return: Float64s
    """Next close / close - 1."""
    last_return: Float64s
    """The bar's own return (close / previous close - 1): what the last-direction baseline sees."""
    start_time: Times
    """Start of the bar (datetime64[us], UTC)."""
    label_time: Times
    """Start of the next bar, whose close the label needs."""
    symbol: Strings
    feature_names: tuple[str, ...]
    interval: str
    snapshot_id: int | None

    def __len__(self) -> int:
        return int(self.features.shape[0])

    @property
    def window(self) -> tuple[datetime, datetime]:
        """First and last bar start of the rows."""
        return _window(self.start_time)


@dataclass(frozen=True, eq=False)
class AnomalyDataset:
    """Rows for the anomaly model, in time order (then symbol); there is no label."""

    features: Float32s
    """(rows, len(feature_names)), all finite."""
    start_time: Times
    symbol: Strings
    feature_names: tuple[str, ...]
    interval: str
    snapshot_id: int | None
    window_bars: int
    """Bars of history each score is taken against."""

    def __len__(self) -> int:
        return int(self.features.shape[0])

    @property
    def window(self) -> tuple[datetime, datetime]:
        """First and last bar start of the rows."""
        return _window(self.start_time)


def read_features(
    catalog: Catalog, interval: str, symbols: Sequence[str] | None = None
) -> FeatureRows:
    """Scan gold.features for one interval (and optionally some symbols) at its current
    snapshot, and keep the newest computation of each bar."""
    table = catalog.load_table(FEATURES.identifier)
    snapshot = table.current_snapshot()
    row_filter: BooleanExpression = EqualTo(term=Reference("interval"), value=literal(interval))
    if symbols:
        chosen = {literal(symbol) for symbol in symbols}
        row_filter = And(row_filter, In(term=Reference("symbol"), values=chosen))
    snapshot_id = None if snapshot is None else snapshot.snapshot_id
    rows = table.scan(
        row_filter=row_filter, selected_fields=_READ_COLUMNS, snapshot_id=snapshot_id
    ).to_arrow()
    return FeatureRows(latest_rows(rows), interval, snapshot_id)


def latest_rows(rows: pa.Table) -> pa.Table:
    """One row per (symbol, interval, start_time), the one with the latest computed_time,
    sorted by (symbol, interval, start_time)."""
    ordered = rows.sort_by([(name, "ascending") for name in (*_BAR_KEY, "computed_time")])
    n = ordered.num_rows
    if n < 2:
        return ordered
    # Sorted, so a row is its bar's newest when the next row is another bar.
    next_differs = np.zeros(n - 1, dtype=np.bool_)
    for name in _BAR_KEY:
        column = ordered.column(name)
        next_differs |= pc.not_equal(column.slice(1), column.slice(0, n - 1)).to_numpy()
    return ordered.filter(pa.array(np.append(next_differs, True)))


def direction_features(rows: pa.Table) -> Float32s:
    """`DIRECTION_FEATURES` of every row, (rows, 14) float32; NaN or inf where an indicator is
    still warming up. Each row's values come from that row alone."""
    c = {name: _floats(rows, name) for name in _DIRECTION_INPUTS}
    close = c["close"]
    band = c["bb_upper"] - c["bb_lower"]
    with np.errstate(divide="ignore", invalid="ignore"):
        position = np.where(band > 0, (close - c["bb_lower"]) / band, np.nan)
        columns = {
            "return": c["return"],
            "close_to_sma_20": close / c["sma_20"] - 1.0,
            "close_to_sma_50": close / c["sma_50"] - 1.0,
            "ema_12_to_ema_26": c["ema_12"] / c["ema_26"] - 1.0,
            "rsi_14": c["rsi_14"] / 100.0,
            "macd_to_close": c["macd"] / close,
            "macd_signal_to_close": c["macd_signal"] / close,
            "macd_hist_to_close": c["macd_hist"] / close,
            # Bands that meet (a flat window) put the close in the middle, not nowhere.
            "bb_position": np.where(band == 0, 0.5, position),
            "bb_width": band / c["bb_middle"],
            "atr_14_to_close": c["atr_14"] / close,
            "stoch_k": c["stoch_k"] / 100.0,
            "stoch_d": c["stoch_d"] / 100.0,
            "volatility_20": c["volatility_20"],
        }
    return np.column_stack([columns[name] for name in DIRECTION_FEATURES]).astype(np.float32)


def direction_dataset(source: FeatureRows) -> Dataset:
    """Labelled rows with finite features, from rows `latest_rows` ordered."""
    rows = source.rows
    n = rows.num_rows
    close = _floats(rows, "close")
    start = _times(rows, "start_time")
    same_series_next = ~_series_starts(rows)[1:]
    next_close = np.full(n, np.nan)
    next_close[:-1] = np.where(same_series_next, close[1:], np.nan)
    label_time = np.full(n, np.datetime64("NaT"), dtype=start.dtype)
    label_time[:-1] = np.where(same_series_next, start[1:], np.datetime64("NaT"))

    features = direction_features(rows)
    with np.errstate(invalid="ignore"):
        usable = np.isfinite(features).all(axis=1) & np.isfinite(next_close) & (close > 0)
    keep = _time_order(start, rows, usable)
    return Dataset(
        features=features[keep],
        up=(next_close[keep] > close[keep]).astype(np.int8),
        next_return=next_close[keep] / close[keep] - 1.0,
        last_return=_floats(rows, "return")[keep],
        start_time=start[keep],
        label_time=label_time[keep],
        symbol=_strings(rows, "symbol")[keep],
        feature_names=DIRECTION_FEATURES,
        interval=source.interval,
        snapshot_id=source.snapshot_id,
    )


def anomaly_features(rows: pa.Table, window: int) -> Float32s:
    """`ANOMALY_FEATURES` of every row of rows `latest_rows` ordered, (rows, 2) float32; NaN
    where the stream's rules would not score the bar (history shorter than `window`, a flat
    baseline)."""
    if window < 2:
        raise ValueError(f"window must be >= 2 for a sample std, got {window}")
    position = _position_in_series(rows)
    log_return = _floats(rows, "log_return")
    log_volume = np.log1p(_floats(rows, "volume"))
    return np.column_stack(
        [
            np.abs(_trailing_z(log_return, position, window)),
            _trailing_z(log_volume, position, window),
        ]
    ).astype(np.float32)


def anomaly_dataset(source: FeatureRows, window: int) -> AnomalyDataset:
    """Rows with finite anomaly features, from rows `latest_rows` ordered."""
    rows = source.rows
    features = anomaly_features(rows, window)
    start = _times(rows, "start_time")
    finite = np.asarray(np.isfinite(features).all(axis=1), dtype=np.bool_)
    keep = _time_order(start, rows, finite)
    return AnomalyDataset(
        features=features[keep],
        start_time=start[keep],
        symbol=_strings(rows, "symbol")[keep],
        feature_names=ANOMALY_FEATURES,
        interval=source.interval,
        snapshot_id=source.snapshot_id,
        window_bars=window,
    )


def _trailing_z(x: Float64s, position: Int64s, window: int) -> Float64s:
    """z of each value against the `window` values before it in its series (sample std);
    NaN without a full window or against a flat one, as `alert_rules` scores."""
    n = x.shape[0]
    mean = np.full(n, np.nan)
    std = np.full(n, np.nan)
    flat = np.ones(n, dtype=np.bool_)
    if n > window:
        # The rolling value at i - 1 covers rows i - window .. i - 1: the baseline of row i.
        mean[1:] = rolling_sum(x, window)[:-1] / window
        std[1:] = rolling_std(x, window, ddof=1)[:-1]
        # Compared exactly, like alert_rules: the std of equal floats can be an ulp above 0.
        flat[1:] = rolling_max(x, window)[:-1] == rolling_min(x, window)[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        z: Float64s = (x - mean) / std
    z[(position < window) | flat] = np.nan
    return z


def _series_starts(rows: pa.Table) -> Bools:
    """True on the first row of each (symbol, interval) series of sorted rows."""
    n = rows.num_rows
    starts = np.ones(n, dtype=np.bool_)
    if n < 2:
        return starts
    changed = np.zeros(n - 1, dtype=np.bool_)
    for name in _SERIES_KEY:
        column = rows.column(name)
        changed |= pc.not_equal(column.slice(1), column.slice(0, n - 1)).to_numpy()
    starts[1:] = changed
    return starts


def _position_in_series(rows: pa.Table) -> Int64s:
    """0 for the first row of each series, then 1, 2, ..."""
    index = np.arange(rows.num_rows, dtype=np.int64)
    first = np.maximum.accumulate(np.where(_series_starts(rows), index, 0))
    position: Int64s = index - first
    return position


def _time_order(start: Times, rows: pa.Table, keep: Bools) -> Int64s:
    """Indices of the kept rows ordered by start time, then series (which `rows` is sorted by)."""
    series = np.cumsum(_series_starts(rows))
    chosen = np.flatnonzero(keep)
    order: Int64s = chosen[np.lexsort((series[chosen], start[chosen]))]
    return order


def _floats(rows: pa.Table, name: str) -> Float64s:
    # Nulls (indicators warming up) become NaN.
    column = pc.fill_null(rows.column(name).cast(pa.float64()), np.nan)
    return np.asarray(column.to_numpy(), dtype=np.float64)


def _times(rows: pa.Table, name: str) -> Times:
    # timestamptz in µs: numpy drops the zone; the values are UTC.
    column = rows.column(name).cast(pa.timestamp("us", tz="UTC"))
    return np.asarray(column.to_numpy(), dtype="datetime64[us]")


def _strings(rows: pa.Table, name: str) -> Strings:
    return np.asarray(rows.column(name).to_numpy(zero_copy_only=False), dtype=np.object_)


def _window(start_time: Times) -> tuple[datetime, datetime]:
    if start_time.shape[0] == 0:
        raise ValueError("no rows")
    first, last = start_time.min(), start_time.max()
    return _to_datetime(first), _to_datetime(last)


def _to_datetime(value: np.datetime64) -> datetime:
    micros = int(value.astype("datetime64[us]").astype(np.int64))
    return _EPOCH + timedelta(microseconds=micros)
