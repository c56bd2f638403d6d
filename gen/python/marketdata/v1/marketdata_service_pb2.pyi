import datetime

from financelake.gen.buf.validate import validate_pb2 as _validate_pb2
from financelake.gen.common.v1 import bar_pb2 as _bar_pb2
from financelake.gen.marketdata.v1 import marketdata_pb2 as _marketdata_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BarsFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BARS_FORMAT_UNSPECIFIED: _ClassVar[BarsFormat]
    BARS_FORMAT_MESSAGES: _ClassVar[BarsFormat]
    BARS_FORMAT_ARROW: _ClassVar[BarsFormat]
BARS_FORMAT_UNSPECIFIED: BarsFormat
BARS_FORMAT_MESSAGES: BarsFormat
BARS_FORMAT_ARROW: BarsFormat

class ListSymbolsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "query")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    query: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., query: _Optional[str] = ...) -> None: ...

class ListSymbolsResponse(_message.Message):
    __slots__ = ("symbols", "next_page_token")
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    symbols: _containers.RepeatedCompositeFieldContainer[_marketdata_pb2.SymbolSummary]
    next_page_token: str
    def __init__(self, symbols: _Optional[_Iterable[_Union[_marketdata_pb2.SymbolSummary, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetBarsRequest(_message.Message):
    __slots__ = ("symbol", "interval", "start_time", "end_time", "page_size", "page_token", "format")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    interval: _bar_pb2.Interval
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    page_size: int
    page_token: str
    format: BarsFormat
    def __init__(self, symbol: _Optional[str] = ..., interval: _Optional[_Union[_bar_pb2.Interval, str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., format: _Optional[_Union[BarsFormat, str]] = ...) -> None: ...

class GetBarsResponse(_message.Message):
    __slots__ = ("bars", "next_page_token", "arrow_stream")
    BARS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ARROW_STREAM_FIELD_NUMBER: _ClassVar[int]
    bars: _containers.RepeatedCompositeFieldContainer[_bar_pb2.Bar]
    next_page_token: str
    arrow_stream: bytes
    def __init__(self, bars: _Optional[_Iterable[_Union[_bar_pb2.Bar, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., arrow_stream: _Optional[bytes] = ...) -> None: ...

class GetQuoteRequest(_message.Message):
    __slots__ = ("symbol",)
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    def __init__(self, symbol: _Optional[str] = ...) -> None: ...

class GetQuoteResponse(_message.Message):
    __slots__ = ("quote",)
    QUOTE_FIELD_NUMBER: _ClassVar[int]
    quote: _marketdata_pb2.Quote
    def __init__(self, quote: _Optional[_Union[_marketdata_pb2.Quote, _Mapping]] = ...) -> None: ...

class GetIndicatorsRequest(_message.Message):
    __slots__ = ("symbol", "interval", "start_time", "end_time", "indicators")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    INDICATORS_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    interval: _bar_pb2.Interval
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    indicators: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, symbol: _Optional[str] = ..., interval: _Optional[_Union[_bar_pb2.Interval, str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., indicators: _Optional[_Iterable[str]] = ...) -> None: ...

class GetIndicatorsResponse(_message.Message):
    __slots__ = ("times", "series")
    TIMES_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    times: _containers.RepeatedCompositeFieldContainer[_timestamp_pb2.Timestamp]
    series: _containers.RepeatedCompositeFieldContainer[_marketdata_pb2.IndicatorSeries]
    def __init__(self, times: _Optional[_Iterable[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]]] = ..., series: _Optional[_Iterable[_Union[_marketdata_pb2.IndicatorSeries, _Mapping]]] = ...) -> None: ...

class WatchBarsRequest(_message.Message):
    __slots__ = ("symbols", "interval")
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    symbols: _containers.RepeatedScalarFieldContainer[str]
    interval: _bar_pb2.Interval
    def __init__(self, symbols: _Optional[_Iterable[str]] = ..., interval: _Optional[_Union[_bar_pb2.Interval, str]] = ...) -> None: ...

class WatchBarsResponse(_message.Message):
    __slots__ = ("update",)
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    update: _marketdata_pb2.BarUpdate
    def __init__(self, update: _Optional[_Union[_marketdata_pb2.BarUpdate, _Mapping]] = ...) -> None: ...
