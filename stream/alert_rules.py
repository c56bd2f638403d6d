"""Domain logic of the stream's alerts agent: z-score rules over closed bars.

Plain Python/pyarrow, no Faust/Kafka/protobuf. Per (symbol, interval), each NEW bar is scored
against the previous `window` bars of the same key (the bar is not part of its own baseline),
and only once that window is full:

* price_move: r = ln(close / previous close), z = (r - mean) / std over the window's returns
  (sample std, ddof=1); fires when |z| >= threshold. value = r, score = z.
* volume_spike: the same z on log1p(volume), which tames volume's heavy right tail; fires
  only when z >= threshold, because unusually thin trading is not an event. value = the
  bar's volume, score = z.

Severity is "warning" from threshold on and "critical" from twice the threshold. Returns are
bar to bar whatever the time between the bars, so an opening gap scores like any other move.

* anomaly (when an `AnomalyScorer` is given and a model is registered for the interval): the
  two scores of a bar that both rules scored, [|return z|, volume z], go through the anomaly
  model (`financelake models train` trains it on the same scores from gold.features) in one
  batch per call; a decision score below 0 raises a "warning". value = score = the decision
  score, threshold = 0. These alerts follow the rule alerts of the same call.

Arrivals are classified by `bar_sequence.BarSequence`: duplicates and bars older than the last
one are ignored; an amendment of the last bar is counted in `amendments_ignored` but not
re-scored, since an alert on its first version is already out and an alert id has no
revision. The baseline keeps the first version's values.
"""

from __future__ import annotations

import math
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from financelake.stream.bar_sequence import Arrival, BarKey, BarSequence, arrival_order
from financelake.stream.indicators import StateDict
from financelake.stream.lake.tables import ALERTS

__all__ = [
    "AlertConfig",
    "AlertEngine",
    "AlertKind",
    "AnomalyScorer",
    "DetectedAlert",
    "Severity",
    "alert_id",
    "alerts_table",
]

AlertKind = Literal["price_move", "volume_spike", "anomaly"]
Severity = Literal["warning", "critical"]

AnomalyScorer = Callable[[str, npt.NDArray[np.float32]], tuple[str, npt.NDArray[np.float64]] | None]
"""(model reference, decision scores) of bars of one interval from their (rows, 2) float32
[|return z|, volume z]; None when no anomaly model is registered for the interval."""

_SCHEMA = ALERTS.schema.as_arrow()
_NANOS_PER_MICRO = 1_000
# Fixed forever: alert ids are uuid5 in this namespace, so changing it changes every id.
_ALERT_ID_NAMESPACE = uuid.UUID("6f1d5c3e-2b7a-4c1e-9a53-0f8e4d2c7b19")


@dataclass(frozen=True, slots=True)
class AlertConfig:
    """Parameters of the z-score rules (StreamSettings.alert_window / alert_z_threshold)."""

    window: int = 60
    """Bars of history a bar is scored against."""
    z_threshold: float = 4.0
    """|z| at or beyond which a rule fires; twice it is critical."""

    def __post_init__(self) -> None:
        if self.window < 2:
            raise ValueError(f"window must be >= 2 for a sample std, got {self.window}")
        if not self.z_threshold > 0:
            raise ValueError(f"z_threshold must be > 0, got {self.z_threshold}")


@dataclass(frozen=True, slots=True)
class DetectedAlert:
    """One alert, field for field a row of `gold.alerts` (times in nanoseconds here)."""

    alert_id: str
    """Stable: the same (symbol, interval, kind, bar start) always gives the same id."""
    symbol: str
    interval: str
    """Bar width the rule ran on, an `Interval` value such as "1m"."""
    kind: AlertKind
    severity: Severity
    event_time_ns: int
    """Start of the bar that triggered the alert, ns since the Unix epoch (UTC)."""
    detected_time_ns: int
    """When the stream detected it, ns since the Unix epoch (UTC)."""
    value: float
    """The log return (price_move) or the bar's volume (volume_spike)."""
    score: float
    """The z-score."""
    threshold: float
    """The configured |z| threshold."""
    message: str
    """A sentence for people."""


def alert_id(symbol: str, interval: str, kind: AlertKind, event_time_ns: int) -> str:
    """The stable id of an alert, so a replayed detection deduplicates downstream."""
    return str(uuid.uuid5(_ALERT_ID_NAMESPACE, f"{symbol}/{interval}/{kind}/{event_time_ns}"))


@dataclass(slots=True)
class _KeyState:
    """One key's baselines: the last `window` log returns and log1p volumes."""

    sequence: BarSequence
    prev_close: float | None
    returns: deque[float]
    log_volumes: deque[float]


class AlertEngine:
    """Per-(symbol, interval) z-score rules fed closed bars; see the module docstring."""

    def __init__(
        self, config: AlertConfig | None = None, anomaly: AnomalyScorer | None = None
    ) -> None:
        self.config = config or AlertConfig()
        self.anomaly = anomaly
        self._keys: dict[BarKey, _KeyState] = {}
        self._scored: list[tuple[BarKey, int, float, float]] = []
        """Bars both rules scored in this call: (key, start, |return z|, volume z)."""
        self.duplicates = 0
        self.amendments_ignored = 0
        self.out_of_order = 0

    @property
    def key_count(self) -> int:
        """(symbol, interval) keys holding state."""
        return len(self._keys)

    def apply(
        self,
        symbol: npt.ArrayLike,
        interval: npt.ArrayLike,
        start_time_ns: npt.ArrayLike,
        close: npt.ArrayLike,
        volume: npt.ArrayLike,
        revision: npt.ArrayLike,
        now_ns: int,
    ) -> list[DetectedAlert]:
        """Score columnar bars (any mix of keys, any order); return the alerts they raise.

        Alerts come in (symbol, interval, start) order, a bar's price_move before its
        volume_spike; `now_ns` becomes their detected time.
        """
        start = np.asarray(start_time_ns, dtype=np.int64)
        rev = np.asarray(revision, dtype=np.int64)
        order, keys = arrival_order(symbol, interval, start, rev)
        closes = np.asarray(close, dtype=np.float64).tolist()
        volumes = np.asarray(volume, dtype=np.float64).tolist()
        if not (len(closes) == len(volumes) == len(start)):
            raise ValueError("every bar column must have the same length")
        starts = start.tolist()
        revisions = rev.tolist()

        alerts: list[DetectedAlert] = []
        self._scored = []
        for i in order:
            key = keys[i]
            entry = self._keys.get(key)
            if entry is None:
                entry = self._keys[key] = self._new_key_state()
            arrival = entry.sequence.admit(starts[i], revisions[i])
            if arrival is Arrival.NEW:
                alerts.extend(self._score(entry, key, starts[i], closes[i], volumes[i], now_ns))
            elif arrival is Arrival.DUPLICATE:
                self.duplicates += 1
            elif arrival is Arrival.OUT_OF_ORDER:
                self.out_of_order += 1
            else:
                self.amendments_ignored += 1
        if self.anomaly is not None and self._scored:
            alerts.extend(self._anomalies(self.anomaly, now_ns))
        return alerts

    def _anomalies(self, anomaly: AnomalyScorer, now_ns: int) -> list[DetectedAlert]:
        """The anomaly model's alerts on this call's scored bars, one run per interval."""
        found: list[DetectedAlert] = []
        for interval in sorted({key[1] for key, _, _, _ in self._scored}):
            bars = [bar for bar in self._scored if bar[0][1] == interval]
            features = np.array([[zr, zv] for _, _, zr, zv in bars], dtype=np.float32)
            result = anomaly(interval, features)
            if result is None:
                continue
            reference, scores = result
            for (key, start_ns, zr, zv), score in zip(bars, scores.tolist(), strict=True):
                if score < 0:
                    message = (
                        f"{key[0]} {interval} bar is unusual for {reference} "
                        f"(|return z| = {zr:.1f}, volume z = {zv:+.1f}, score = {score:+.3f})"
                    )
                    alert = self._alert("anomaly", key, start_ns, now_ns, score, score, message)
                    found.append(replace(alert, severity="warning", threshold=0.0))
        return found

    def _new_key_state(self) -> _KeyState:
        window = self.config.window
        return _KeyState(BarSequence(), None, deque(maxlen=window), deque(maxlen=window))

    def _score(
        self,
        entry: _KeyState,
        key: BarKey,
        start_ns: int,
        close: float,
        volume: float,
        now_ns: int,
    ) -> list[DetectedAlert]:
        """Score one new bar against its key's baselines, then add it to them."""
        symbol, interval = key
        threshold = self.config.z_threshold
        window = self.config.window
        found: list[DetectedAlert] = []
        return_z = None
        if entry.prev_close is not None:
            r = math.log(close / entry.prev_close)
            z = return_z = _zscore(entry.returns, r) if len(entry.returns) == window else None
            if z is not None and abs(z) >= threshold:
                message = f"{symbol} {interval} close moved {math.expm1(r):+.2%} (z = {z:+.1f})"
                found.append(
                    self._alert("price_move", key, start_ns, now_ns, r, z, message),
                )
            entry.returns.append(r)
        entry.prev_close = close

        x = math.log1p(volume)
        z = _zscore(entry.log_volumes, x) if len(entry.log_volumes) == window else None
        if z is not None and z >= threshold:
            message = f"{symbol} {interval} volume {volume:,.0f} spiked (z = {z:+.1f})"
            found.append(self._alert("volume_spike", key, start_ns, now_ns, volume, z, message))
        entry.log_volumes.append(x)
        if return_z is not None and z is not None:
            self._scored.append((key, start_ns, abs(return_z), z))
        return found

    def _alert(
        self,
        kind: AlertKind,
        key: BarKey,
        start_ns: int,
        now_ns: int,
        value: float,
        z: float,
        message: str,
    ) -> DetectedAlert:
        symbol, interval = key
        threshold = self.config.z_threshold
        return DetectedAlert(
            alert_id=alert_id(symbol, interval, kind, start_ns),
            symbol=symbol,
            interval=interval,
            kind=kind,
            severity="critical" if abs(z) >= 2 * threshold else "warning",
            event_time_ns=start_ns,
            detected_time_ns=now_ns,
            value=value,
            score=z,
            threshold=threshold,
            message=message,
        )

    def to_dict(self) -> StateDict:
        """A JSON-ready snapshot of every key's baselines (no config, no counters)."""
        return {
            "keys": [
                {
                    "symbol": symbol,
                    "interval": interval,
                    "sequence": entry.sequence.to_dict(),
                    "prev_close": entry.prev_close,
                    "returns": list(entry.returns),
                    "log_volumes": list(entry.log_volumes),
                }
                for (symbol, interval), entry in self._keys.items()
            ]
        }

    @classmethod
    def from_dict(
        cls,
        data: StateDict,
        config: AlertConfig | None = None,
        anomaly: AnomalyScorer | None = None,
    ) -> AlertEngine:
        """Rebuild the engine `to_dict` described, under `config` (today's settings).

        A shorter window than the snapshot's keeps the most recent values; a longer one fills
        up with the next bars before the rules fire again.
        """
        engine = cls(config, anomaly)
        for item in data["keys"]:
            entry = engine._new_key_state()
            entry.sequence = BarSequence.from_dict(item["sequence"])
            prev = item["prev_close"]
            entry.prev_close = None if prev is None else float(prev)
            entry.returns.extend(float(r) for r in item["returns"])
            entry.log_volumes.extend(float(v) for v in item["log_volumes"])
            engine._keys[(str(item["symbol"]), str(item["interval"]))] = entry
        return engine


def _zscore(window: deque[float], x: float) -> float | None:
    """z of `x` against a full window (two-pass sample std), or None for a flat window."""
    # A flat window (a halted or stale symbol) has no spread to measure against: every change
    # would score infinite and flag the first print after each halt. Compared exactly rather
    # than by std == 0 because the mean of equal floats can be off by an ulp.
    if max(window) == min(window):
        return None
    n = len(window)
    mean = sum(window) / n
    squares = sum((w - mean) * (w - mean) for w in window)
    return (x - mean) / math.sqrt(squares / (n - 1))


def alerts_table(alerts: Sequence[DetectedAlert]) -> pa.Table:
    """Alerts as rows of `gold.alerts`, in its exact Arrow schema (timestamps in µs)."""

    def column(name: str, values: Sequence[object]) -> pa.Array:
        return pa.array(values, type=_SCHEMA.field(name).type)

    columns = {
        "alert_id": column("alert_id", [a.alert_id for a in alerts]),
        "symbol": column("symbol", [a.symbol for a in alerts]),
        "interval": column("interval", [a.interval for a in alerts]),
        "kind": column("kind", [a.kind for a in alerts]),
        "severity": column("severity", [a.severity for a in alerts]),
        "event_time": column("event_time", [a.event_time_ns // _NANOS_PER_MICRO for a in alerts]),
        "detected_time": column(
            "detected_time", [a.detected_time_ns // _NANOS_PER_MICRO for a in alerts]
        ),
        "value": column("value", [a.value for a in alerts]),
        "score": column("score", [a.score for a in alerts]),
        "threshold": column("threshold", [a.threshold for a in alerts]),
        "message": column("message", [a.message for a in alerts]),
    }
    return pa.Table.from_arrays([columns[name] for name in _SCHEMA.names], schema=_SCHEMA)
