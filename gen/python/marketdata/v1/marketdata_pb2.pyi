import datetime

from financelake.gen.common.v1 import bar_pb2 as _bar_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SymbolSummary(_message.Message):
    __slots__ = ("symbol", "last_price", "previous_close", "change", "change_percent", "volume_today", "first_data_time", "last_data_time")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    LAST_PRICE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_CLOSE_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    CHANGE_PERCENT_FIELD_NUMBER: _ClassVar[int]
    VOLUME_TODAY_FIELD_NUMBER: _ClassVar[int]
    FIRST_DATA_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_DATA_TIME_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    last_price: float
    previous_close: float
    change: float
    change_percent: float
    volume_today: float
    first_data_time: _timestamp_pb2.Timestamp
    last_data_time: _timestamp_pb2.Timestamp
    def __init__(self, symbol: _Optional[str] = ..., last_price: _Optional[float] = ..., previous_close: _Optional[float] = ..., change: _Optional[float] = ..., change_percent: _Optional[float] = ..., volume_today: _Optional[float] = ..., first_data_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_data_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Quote(_message.Message):
    __slots__ = ("symbol", "last_price", "last_size", "last_trade_time", "current_bar", "staleness")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    LAST_PRICE_FIELD_NUMBER: _ClassVar[int]
    LAST_SIZE_FIELD_NUMBER: _ClassVar[int]
    LAST_TRADE_TIME_FIELD_NUMBER: _ClassVar[int]
    CURRENT_BAR_FIELD_NUMBER: _ClassVar[int]
    STALENESS_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    last_price: float
    last_size: float
    last_trade_time: _timestamp_pb2.Timestamp
    current_bar: _bar_pb2.Bar
    staleness: _duration_pb2.Duration
    def __init__(self, symbol: _Optional[str] = ..., last_price: _Optional[float] = ..., last_size: _Optional[float] = ..., last_trade_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., current_bar: _Optional[_Union[_bar_pb2.Bar, _Mapping]] = ..., staleness: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class IndicatorLine(_message.Message):
    __slots__ = ("name", "values")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    name: str
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, name: _Optional[str] = ..., values: _Optional[_Iterable[float]] = ...) -> None: ...

class IndicatorSeries(_message.Message):
    __slots__ = ("indicator", "lines")
    INDICATOR_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    indicator: str
    lines: _containers.RepeatedCompositeFieldContainer[IndicatorLine]
    def __init__(self, indicator: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[IndicatorLine, _Mapping]]] = ...) -> None: ...

class BarUpdate(_message.Message):
    __slots__ = ("bar", "closed", "dropped_updates")
    BAR_FIELD_NUMBER: _ClassVar[int]
    CLOSED_FIELD_NUMBER: _ClassVar[int]
    DROPPED_UPDATES_FIELD_NUMBER: _ClassVar[int]
    bar: _bar_pb2.Bar
    closed: bool
    dropped_updates: bool
    def __init__(self, bar: _Optional[_Union[_bar_pb2.Bar, _Mapping]] = ..., closed: _Optional[bool] = ..., dropped_updates: _Optional[bool] = ...) -> None: ...
