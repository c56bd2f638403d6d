import datetime

from financelake.gen.buf.validate import validate_pb2 as _validate_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ImportSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IMPORT_SOURCE_UNSPECIFIED: _ClassVar[ImportSource]
    IMPORT_SOURCE_YAHOO: _ClassVar[ImportSource]
    IMPORT_SOURCE_ALPHAVANTAGE: _ClassVar[ImportSource]
    IMPORT_SOURCE_SYNTHETIC: _ClassVar[ImportSource]
    IMPORT_SOURCE_CSV: _ClassVar[ImportSource]

class ImportState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IMPORT_STATE_UNSPECIFIED: _ClassVar[ImportState]
    IMPORT_STATE_RUNNING: _ClassVar[ImportState]
    IMPORT_STATE_DONE: _ClassVar[ImportState]
    IMPORT_STATE_FAILED: _ClassVar[ImportState]

class SyntheticOutput(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SYNTHETIC_OUTPUT_UNSPECIFIED: _ClassVar[SyntheticOutput]
    SYNTHETIC_OUTPUT_BARS: _ClassVar[SyntheticOutput]
    SYNTHETIC_OUTPUT_TRADES: _ClassVar[SyntheticOutput]
IMPORT_SOURCE_UNSPECIFIED: ImportSource
IMPORT_SOURCE_YAHOO: ImportSource
IMPORT_SOURCE_ALPHAVANTAGE: ImportSource
IMPORT_SOURCE_SYNTHETIC: ImportSource
IMPORT_SOURCE_CSV: ImportSource
IMPORT_STATE_UNSPECIFIED: ImportState
IMPORT_STATE_RUNNING: ImportState
IMPORT_STATE_DONE: ImportState
IMPORT_STATE_FAILED: ImportState
SYNTHETIC_OUTPUT_UNSPECIFIED: SyntheticOutput
SYNTHETIC_OUTPUT_BARS: SyntheticOutput
SYNTHETIC_OUTPUT_TRADES: SyntheticOutput

class CsvOptions(_message.Message):
    __slots__ = ("path", "data", "column_mapping", "default_symbol")
    class ColumnMappingEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PATH_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    COLUMN_MAPPING_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_SYMBOL_FIELD_NUMBER: _ClassVar[int]
    path: str
    data: bytes
    column_mapping: _containers.ScalarMap[str, str]
    default_symbol: str
    def __init__(self, path: _Optional[str] = ..., data: _Optional[bytes] = ..., column_mapping: _Optional[_Mapping[str, str]] = ..., default_symbol: _Optional[str] = ...) -> None: ...

class SyntheticOptions(_message.Message):
    __slots__ = ("seed", "output", "start_price", "annual_drift", "annual_volatility", "jumps_per_day", "calendar", "trades_per_minute")
    SEED_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    START_PRICE_FIELD_NUMBER: _ClassVar[int]
    ANNUAL_DRIFT_FIELD_NUMBER: _ClassVar[int]
    ANNUAL_VOLATILITY_FIELD_NUMBER: _ClassVar[int]
    JUMPS_PER_DAY_FIELD_NUMBER: _ClassVar[int]
    CALENDAR_FIELD_NUMBER: _ClassVar[int]
    TRADES_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    seed: int
    output: SyntheticOutput
    start_price: float
    annual_drift: float
    annual_volatility: float
    jumps_per_day: float
    calendar: str
    trades_per_minute: float
    def __init__(self, seed: _Optional[int] = ..., output: _Optional[_Union[SyntheticOutput, str]] = ..., start_price: _Optional[float] = ..., annual_drift: _Optional[float] = ..., annual_volatility: _Optional[float] = ..., jumps_per_day: _Optional[float] = ..., calendar: _Optional[str] = ..., trades_per_minute: _Optional[float] = ...) -> None: ...

class RowError(_message.Message):
    __slots__ = ("line", "field", "reason", "time")
    LINE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    line: int
    field: str
    reason: str
    time: _timestamp_pb2.Timestamp
    def __init__(self, line: _Optional[int] = ..., field: _Optional[str] = ..., reason: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
