"""alerts: bars on the bars topic -> z-score and anomaly-model alerts on the alerts topic and
in `gold.alerts`.

One `AlertEngine` per partition holds each (symbol, interval)'s recent returns and volumes
and is checkpointed with each commit. Alerts are produced as `Alert` messages keyed by
symbol as soon as the step that found them ends; their ids are stable, so the repeats a
restart may produce are recognisable downstream.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import pyarrow as pa

from financelake.gen.common.v1 import alert_pb2
from financelake.services.ingestion.convert import INTERVAL_PROTOS, timestamp
from financelake.services.ingestion.records import Interval
from financelake.stream.agents.core import Emit, LakeSink, Record, State, StatefulAgent
from financelake.stream.alert_rules import (
    AlertConfig,
    AlertEngine,
    AnomalyScorer,
    DetectedAlert,
    alerts_table,
)
from financelake.stream.convert import bar_columns

_KINDS = {
    "price_move": alert_pb2.ALERT_KIND_PRICE_MOVE,
    "volume_spike": alert_pb2.ALERT_KIND_VOLUME_SPIKE,
    "anomaly": alert_pb2.ALERT_KIND_ANOMALY,
}
_SEVERITIES = {
    "warning": alert_pb2.ALERT_SEVERITY_WARNING,
    "critical": alert_pb2.ALERT_SEVERITY_CRITICAL,
}


def alert_message(alert: DetectedAlert) -> alert_pb2.Alert:
    """An alert as the alerts topic's payload."""
    return alert_pb2.Alert(
        alert_id=alert.alert_id,
        symbol=alert.symbol,
        interval=INTERVAL_PROTOS[Interval(alert.interval)],
        kind=_KINDS[alert.kind],
        severity=_SEVERITIES[alert.severity],
        event_time=timestamp(alert.event_time_ns),
        detected_time=timestamp(alert.detected_time_ns),
        value=alert.value,
        score=alert.score,
        threshold=alert.threshold,
        message=alert.message,
    )


class AlertsAgent(StatefulAgent[AlertEngine]):
    """Price-move and volume-spike detection on every closed bar."""

    name = "alerts"

    def __init__(
        self, sink: LakeSink, *, config: AlertConfig, anomaly: AnomalyScorer | None = None
    ) -> None:
        super().__init__(sink)
        self.config = config
        self.anomaly = anomaly

    def new_state(self) -> AlertEngine:
        return AlertEngine(self.config, self.anomaly)

    def restore_state(self, data: State) -> AlertEngine:
        return AlertEngine.from_dict(data, self.config, self.anomaly)

    def handle(
        self, partition: int, records: Sequence[Record]
    ) -> tuple[pa.Table | None, list[Emit]]:
        bars = bar_columns([r.value for r in records])
        alerts = self.states[partition].apply(
            bars.symbol,
            bars.interval,
            bars.start_time_ns,
            bars.close,
            bars.volume,
            bars.revision,
            now_ns=time.time_ns(),
        )
        if not alerts:
            return None, []
        emits = [
            Emit(key=a.symbol.encode(), value=alert_message(a).SerializeToString()) for a in alerts
        ]
        return alerts_table(alerts), emits
