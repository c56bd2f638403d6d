import datetime

from financelake.gen.common.v1 import bar_pb2 as _bar_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Prediction(_message.Message):
    __slots__ = ("symbol", "interval", "probability_up", "expected_return", "model_version", "feature_time", "predicted_time")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_UP_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_RETURN_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    FEATURE_TIME_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_TIME_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    interval: _bar_pb2.Interval
    probability_up: float
    expected_return: float
    model_version: str
    feature_time: _timestamp_pb2.Timestamp
    predicted_time: _timestamp_pb2.Timestamp
    def __init__(self, symbol: _Optional[str] = ..., interval: _Optional[_Union[_bar_pb2.Interval, str]] = ..., probability_up: _Optional[float] = ..., expected_return: _Optional[float] = ..., model_version: _Optional[str] = ..., feature_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., predicted_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Model(_message.Message):
    __slots__ = ("name", "version", "latest", "create_time", "label", "interval", "feature_names", "train_start_time", "train_end_time", "train_snapshot_id", "metrics", "baseline_metrics", "onnx_sha256", "library_versions")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class BaselineMetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class LibraryVersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LATEST_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    FEATURE_NAMES_FIELD_NUMBER: _ClassVar[int]
    TRAIN_START_TIME_FIELD_NUMBER: _ClassVar[int]
    TRAIN_END_TIME_FIELD_NUMBER: _ClassVar[int]
    TRAIN_SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    BASELINE_METRICS_FIELD_NUMBER: _ClassVar[int]
    ONNX_SHA256_FIELD_NUMBER: _ClassVar[int]
    LIBRARY_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    latest: bool
    create_time: _timestamp_pb2.Timestamp
    label: str
    interval: _bar_pb2.Interval
    feature_names: _containers.RepeatedScalarFieldContainer[str]
    train_start_time: _timestamp_pb2.Timestamp
    train_end_time: _timestamp_pb2.Timestamp
    train_snapshot_id: int
    metrics: _containers.ScalarMap[str, float]
    baseline_metrics: _containers.ScalarMap[str, float]
    onnx_sha256: str
    library_versions: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., latest: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., label: _Optional[str] = ..., interval: _Optional[_Union[_bar_pb2.Interval, str]] = ..., feature_names: _Optional[_Iterable[str]] = ..., train_start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., train_end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., train_snapshot_id: _Optional[int] = ..., metrics: _Optional[_Mapping[str, float]] = ..., baseline_metrics: _Optional[_Mapping[str, float]] = ..., onnx_sha256: _Optional[str] = ..., library_versions: _Optional[_Mapping[str, str]] = ...) -> None: ...
