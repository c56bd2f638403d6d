import datetime

from financelake.gen.common.v1 import bar_pb2 as _bar_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AlertKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALERT_KIND_UNSPECIFIED: _ClassVar[AlertKind]
    ALERT_KIND_PRICE_MOVE: _ClassVar[AlertKind]
    ALERT_KIND_VOLUME_SPIKE: _ClassVar[AlertKind]
    ALERT_KIND_ANOMALY: _ClassVar[AlertKind]

class AlertSeverity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALERT_SEVERITY_UNSPECIFIED: _ClassVar[AlertSeverity]
    ALERT_SEVERITY_INFO: _ClassVar[AlertSeverity]
    ALERT_SEVERITY_WARNING: _ClassVar[AlertSeverity]
    ALERT_SEVERITY_CRITICAL: _ClassVar[AlertSeverity]
ALERT_KIND_UNSPECIFIED: AlertKind
ALERT_KIND_PRICE_MOVE: AlertKind
ALERT_KIND_VOLUME_SPIKE: AlertKind
ALERT_KIND_ANOMALY: AlertKind
ALERT_SEVERITY_UNSPECIFIED: AlertSeverity
ALERT_SEVERITY_INFO: AlertSeverity
ALERT_SEVERITY_WARNING: AlertSeverity
ALERT_SEVERITY_CRITICAL: AlertSeverity

class Alert(_message.Message):
    __slots__ = ("alert_id", "symbol", "interval", "kind", "severity", "event_time", "detected_time", "value", "score", "threshold", "message")
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    DETECTED_TIME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    alert_id: str
    symbol: str
    interval: _bar_pb2.Interval
    kind: AlertKind
    severity: AlertSeverity
    event_time: _timestamp_pb2.Timestamp
    detected_time: _timestamp_pb2.Timestamp
    value: float
    score: float
    threshold: float
    message: str
    def __init__(self, alert_id: _Optional[str] = ..., symbol: _Optional[str] = ..., interval: _Optional[_Union[_bar_pb2.Interval, str]] = ..., kind: _Optional[_Union[AlertKind, str]] = ..., severity: _Optional[_Union[AlertSeverity, str]] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., detected_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., value: _Optional[float] = ..., score: _Optional[float] = ..., threshold: _Optional[float] = ..., message: _Optional[str] = ...) -> None: ...
