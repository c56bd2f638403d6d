import datetime

from financelake.gen.common.v1 import bar_pb2 as _bar_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CorporateAction(_message.Message):
    __slots__ = ("symbol", "ex_date", "dividend", "split_ratio", "source")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    EX_DATE_FIELD_NUMBER: _ClassVar[int]
    DIVIDEND_FIELD_NUMBER: _ClassVar[int]
    SPLIT_RATIO_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    ex_date: _timestamp_pb2.Timestamp
    dividend: float
    split_ratio: float
    source: _bar_pb2.BarSource
    def __init__(self, symbol: _Optional[str] = ..., ex_date: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., dividend: _Optional[float] = ..., split_ratio: _Optional[float] = ..., source: _Optional[_Union[_bar_pb2.BarSource, str]] = ...) -> None: ...
