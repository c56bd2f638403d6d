import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Interval(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INTERVAL_UNSPECIFIED: _ClassVar[Interval]
    INTERVAL_1M: _ClassVar[Interval]
    INTERVAL_5M: _ClassVar[Interval]
    INTERVAL_15M: _ClassVar[Interval]
    INTERVAL_30M: _ClassVar[Interval]
    INTERVAL_1H: _ClassVar[Interval]
    INTERVAL_1D: _ClassVar[Interval]
    INTERVAL_1WK: _ClassVar[Interval]

class BarSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BAR_SOURCE_UNSPECIFIED: _ClassVar[BarSource]
    BAR_SOURCE_TRADES: _ClassVar[BarSource]
    BAR_SOURCE_YAHOO: _ClassVar[BarSource]
    BAR_SOURCE_ALPHAVANTAGE: _ClassVar[BarSource]
    BAR_SOURCE_CSV: _ClassVar[BarSource]
    BAR_SOURCE_SYNTHETIC: _ClassVar[BarSource]
INTERVAL_UNSPECIFIED: Interval
INTERVAL_1M: Interval
INTERVAL_5M: Interval
INTERVAL_15M: Interval
INTERVAL_30M: Interval
INTERVAL_1H: Interval
INTERVAL_1D: Interval
INTERVAL_1WK: Interval
BAR_SOURCE_UNSPECIFIED: BarSource
BAR_SOURCE_TRADES: BarSource
BAR_SOURCE_YAHOO: BarSource
BAR_SOURCE_ALPHAVANTAGE: BarSource
BAR_SOURCE_CSV: BarSource
BAR_SOURCE_SYNTHETIC: BarSource

class Bar(_message.Message):
    __slots__ = ("symbol", "interval", "start_time", "open", "high", "low", "close", "volume", "vwap", "trade_count", "source", "adjusted", "revision")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    CLOSE_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    VWAP_FIELD_NUMBER: _ClassVar[int]
    TRADE_COUNT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    ADJUSTED_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    interval: Interval
    start_time: _timestamp_pb2.Timestamp
    open: float
    high: float
    low: float
    close: float
    volume: float
    vwap: float
    trade_count: int
    source: BarSource
    adjusted: bool
    revision: int
    def __init__(self, symbol: _Optional[str] = ..., interval: _Optional[_Union[Interval, str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., open: _Optional[float] = ..., high: _Optional[float] = ..., low: _Optional[float] = ..., close: _Optional[float] = ..., volume: _Optional[float] = ..., vwap: _Optional[float] = ..., trade_count: _Optional[int] = ..., source: _Optional[_Union[BarSource, str]] = ..., adjusted: _Optional[bool] = ..., revision: _Optional[int] = ...) -> None: ...
