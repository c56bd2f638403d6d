import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PartitionLag(_message.Message):
    __slots__ = ("topic", "partition", "consumer_group", "committed_offset", "end_offset", "lag")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_GROUP_FIELD_NUMBER: _ClassVar[int]
    COMMITTED_OFFSET_FIELD_NUMBER: _ClassVar[int]
    END_OFFSET_FIELD_NUMBER: _ClassVar[int]
    LAG_FIELD_NUMBER: _ClassVar[int]
    topic: str
    partition: int
    consumer_group: str
    committed_offset: int
    end_offset: int
    lag: int
    def __init__(self, topic: _Optional[str] = ..., partition: _Optional[int] = ..., consumer_group: _Optional[str] = ..., committed_offset: _Optional[int] = ..., end_offset: _Optional[int] = ..., lag: _Optional[int] = ...) -> None: ...

class AgentThroughput(_message.Message):
    __slots__ = ("agent", "records_per_second", "records_total")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    RECORDS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    RECORDS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    agent: str
    records_per_second: float
    records_total: int
    def __init__(self, agent: _Optional[str] = ..., records_per_second: _Optional[float] = ..., records_total: _Optional[int] = ...) -> None: ...

class TableCommit(_message.Message):
    __slots__ = ("table", "snapshot_id", "commit_time", "added_rows", "freshness")
    TABLE_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    COMMIT_TIME_FIELD_NUMBER: _ClassVar[int]
    ADDED_ROWS_FIELD_NUMBER: _ClassVar[int]
    FRESHNESS_FIELD_NUMBER: _ClassVar[int]
    table: str
    snapshot_id: int
    commit_time: _timestamp_pb2.Timestamp
    added_rows: int
    freshness: _duration_pb2.Duration
    def __init__(self, table: _Optional[str] = ..., snapshot_id: _Optional[int] = ..., commit_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., added_rows: _Optional[int] = ..., freshness: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class TableField(_message.Message):
    __slots__ = ("field_id", "name", "type", "required", "doc")
    FIELD_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    DOC_FIELD_NUMBER: _ClassVar[int]
    field_id: int
    name: str
    type: str
    required: bool
    doc: str
    def __init__(self, field_id: _Optional[int] = ..., name: _Optional[str] = ..., type: _Optional[str] = ..., required: _Optional[bool] = ..., doc: _Optional[str] = ...) -> None: ...

class Snapshot(_message.Message):
    __slots__ = ("snapshot_id", "parent_snapshot_id", "commit_time", "operation", "summary")
    class SummaryEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    COMMIT_TIME_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    snapshot_id: int
    parent_snapshot_id: int
    commit_time: _timestamp_pb2.Timestamp
    operation: str
    summary: _containers.ScalarMap[str, str]
    def __init__(self, snapshot_id: _Optional[int] = ..., parent_snapshot_id: _Optional[int] = ..., commit_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., operation: _Optional[str] = ..., summary: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Table(_message.Message):
    __slots__ = ("table", "location", "fields", "partition_fields", "total_rows", "total_files", "total_bytes", "snapshots")
    TABLE_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELDS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_ROWS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FILES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOTS_FIELD_NUMBER: _ClassVar[int]
    table: str
    location: str
    fields: _containers.RepeatedCompositeFieldContainer[TableField]
    partition_fields: _containers.RepeatedScalarFieldContainer[str]
    total_rows: int
    total_files: int
    total_bytes: int
    snapshots: _containers.RepeatedCompositeFieldContainer[Snapshot]
    def __init__(self, table: _Optional[str] = ..., location: _Optional[str] = ..., fields: _Optional[_Iterable[_Union[TableField, _Mapping]]] = ..., partition_fields: _Optional[_Iterable[str]] = ..., total_rows: _Optional[int] = ..., total_files: _Optional[int] = ..., total_bytes: _Optional[int] = ..., snapshots: _Optional[_Iterable[_Union[Snapshot, _Mapping]]] = ...) -> None: ...
