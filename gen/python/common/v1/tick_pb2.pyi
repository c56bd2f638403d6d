from financelake.gen.buf.validate import validate_pb2 as _validate_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class TickBatch(_message.Message):
    __slots__ = ("symbol", "event_time_unix_nanos", "prices", "sizes", "exchanges", "trade_ids")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_UNIX_NANOS_FIELD_NUMBER: _ClassVar[int]
    PRICES_FIELD_NUMBER: _ClassVar[int]
    SIZES_FIELD_NUMBER: _ClassVar[int]
    EXCHANGES_FIELD_NUMBER: _ClassVar[int]
    TRADE_IDS_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    event_time_unix_nanos: _containers.RepeatedScalarFieldContainer[int]
    prices: _containers.RepeatedScalarFieldContainer[float]
    sizes: _containers.RepeatedScalarFieldContainer[float]
    exchanges: _containers.RepeatedScalarFieldContainer[str]
    trade_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, symbol: _Optional[str] = ..., event_time_unix_nanos: _Optional[_Iterable[int]] = ..., prices: _Optional[_Iterable[float]] = ..., sizes: _Optional[_Iterable[float]] = ..., exchanges: _Optional[_Iterable[str]] = ..., trade_ids: _Optional[_Iterable[str]] = ...) -> None: ...
