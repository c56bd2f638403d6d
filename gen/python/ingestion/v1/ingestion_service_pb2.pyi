import datetime

from financelake.gen.buf.validate import validate_pb2 as _validate_pb2
from financelake.gen.common.v1 import bar_pb2 as _bar_pb2
from financelake.gen.common.v1 import tick_pb2 as _tick_pb2
from financelake.gen.ingestion.v1 import import_pb2 as _import_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IngestTicksRequest(_message.Message):
    __slots__ = ("batches",)
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    batches: _containers.RepeatedCompositeFieldContainer[_tick_pb2.TickBatch]
    def __init__(self, batches: _Optional[_Iterable[_Union[_tick_pb2.TickBatch, _Mapping]]] = ...) -> None: ...

class IngestTicksResponse(_message.Message):
    __slots__ = ("accepted_trades", "rejected_trades", "accepted_batches", "rejected_batches", "offsets")
    ACCEPTED_TRADES_FIELD_NUMBER: _ClassVar[int]
    REJECTED_TRADES_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_BATCHES_FIELD_NUMBER: _ClassVar[int]
    REJECTED_BATCHES_FIELD_NUMBER: _ClassVar[int]
    OFFSETS_FIELD_NUMBER: _ClassVar[int]
    accepted_trades: int
    rejected_trades: int
    accepted_batches: int
    rejected_batches: int
    offsets: _containers.RepeatedCompositeFieldContainer[OffsetRange]
    def __init__(self, accepted_trades: _Optional[int] = ..., rejected_trades: _Optional[int] = ..., accepted_batches: _Optional[int] = ..., rejected_batches: _Optional[int] = ..., offsets: _Optional[_Iterable[_Union[OffsetRange, _Mapping]]] = ...) -> None: ...

class PublishTicksRequest(_message.Message):
    __slots__ = ("batches",)
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    batches: _containers.RepeatedCompositeFieldContainer[_tick_pb2.TickBatch]
    def __init__(self, batches: _Optional[_Iterable[_Union[_tick_pb2.TickBatch, _Mapping]]] = ...) -> None: ...

class PublishTicksResponse(_message.Message):
    __slots__ = ("accepted_trades", "accepted_batches", "offsets")
    ACCEPTED_TRADES_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_BATCHES_FIELD_NUMBER: _ClassVar[int]
    OFFSETS_FIELD_NUMBER: _ClassVar[int]
    accepted_trades: int
    accepted_batches: int
    offsets: _containers.RepeatedCompositeFieldContainer[OffsetRange]
    def __init__(self, accepted_trades: _Optional[int] = ..., accepted_batches: _Optional[int] = ..., offsets: _Optional[_Iterable[_Union[OffsetRange, _Mapping]]] = ...) -> None: ...

class OffsetRange(_message.Message):
    __slots__ = ("topic", "partition", "first_offset", "last_offset")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    FIRST_OFFSET_FIELD_NUMBER: _ClassVar[int]
    LAST_OFFSET_FIELD_NUMBER: _ClassVar[int]
    topic: str
    partition: int
    first_offset: int
    last_offset: int
    def __init__(self, topic: _Optional[str] = ..., partition: _Optional[int] = ..., first_offset: _Optional[int] = ..., last_offset: _Optional[int] = ...) -> None: ...

class ImportHistoryRequest(_message.Message):
    __slots__ = ("source", "symbols", "interval", "start_time", "end_time", "adjusted", "csv", "synthetic")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    ADJUSTED_FIELD_NUMBER: _ClassVar[int]
    CSV_FIELD_NUMBER: _ClassVar[int]
    SYNTHETIC_FIELD_NUMBER: _ClassVar[int]
    source: _import_pb2.ImportSource
    symbols: _containers.RepeatedScalarFieldContainer[str]
    interval: _bar_pb2.Interval
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    adjusted: bool
    csv: _import_pb2.CsvOptions
    synthetic: _import_pb2.SyntheticOptions
    def __init__(self, source: _Optional[_Union[_import_pb2.ImportSource, str]] = ..., symbols: _Optional[_Iterable[str]] = ..., interval: _Optional[_Union[_bar_pb2.Interval, str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., adjusted: _Optional[bool] = ..., csv: _Optional[_Union[_import_pb2.CsvOptions, _Mapping]] = ..., synthetic: _Optional[_Union[_import_pb2.SyntheticOptions, _Mapping]] = ...) -> None: ...

class ImportHistoryResponse(_message.Message):
    __slots__ = ("state", "current_symbol", "rows_fetched", "rows_published", "message", "row_errors", "actions_published")
    STATE_FIELD_NUMBER: _ClassVar[int]
    CURRENT_SYMBOL_FIELD_NUMBER: _ClassVar[int]
    ROWS_FETCHED_FIELD_NUMBER: _ClassVar[int]
    ROWS_PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ROW_ERRORS_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    state: _import_pb2.ImportState
    current_symbol: str
    rows_fetched: int
    rows_published: int
    message: str
    row_errors: _containers.RepeatedCompositeFieldContainer[_import_pb2.RowError]
    actions_published: int
    def __init__(self, state: _Optional[_Union[_import_pb2.ImportState, str]] = ..., current_symbol: _Optional[str] = ..., rows_fetched: _Optional[int] = ..., rows_published: _Optional[int] = ..., message: _Optional[str] = ..., row_errors: _Optional[_Iterable[_Union[_import_pb2.RowError, _Mapping]]] = ..., actions_published: _Optional[int] = ...) -> None: ...
