"""Versioned model artifacts: `<root>/<name>/<version>/model.onnx` beside `metadata.json`.

The root is a local folder (default `<home>/models`) or an S3 URI such as
`s3://bucket/models?region=eu-west-1` (pyarrow's S3 options as query parameters, credentials
from the usual AWS chain, IRSA in the cluster); one pyarrow `FileSystem` serves both.

Versions are the integers 1, 2, 3... of each name, as the contract's `name@version` shows
them. A new version is one above the highest version folder present, complete or not, so the
number of an abandoned registration is never reused. "Latest" is the highest complete one.

A registration writes model.onnx, then metadata.json, each under a temporary name moved into
place; a version exists for readers once its metadata.json does. That move is the one atomic
step both file systems have (a rename locally, a single object on S3, which has no directory
rename), so a reader never sees half a version. The metadata records the ONNX file's sha256,
checked on every load. One registration per name at a time is assumed: two racing for one
number end in RegistryConflict or, at worst, in a checksum error on load, never in a silent
mix of two models.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from financelake.models.errors import ModelChecksumMismatch, ModelNotFound, RegistryConflict
from financelake.services.settings import Settings

__all__ = [
    "LoadedModel",
    "ModelCard",
    "ModelMetadata",
    "ModelRegistry",
    "open_registry",
    "registry_uri",
]

MODEL_FILE = "model.onnx"
METADATA_FILE = "metadata.json"
# Bumped when metadata.json changes incompatibly; readers refuse formats they do not know.
METADATA_FORMAT = 1
# The contract's model name pattern (prediction_service.proto).
_NAME = re.compile(r"[a-z][a-z0-9\-]{0,62}")
_TIME_FIELDS = ("train_start_time", "train_end_time", "created_time")
_TUPLE_FIELDS = ("feature_names", "output_names", "symbols")


@dataclass(frozen=True)
class ModelCard:
    """What training knows about a model; registering adds version, time and checksum."""

    name: str
    label: str
    """What it predicts: next_return_direction, next_return or anomaly."""
    interval: str
    estimator: str
    feature_names: tuple[str, ...]
    """The input's columns, in order."""
    input_name: str
    output_names: tuple[str, ...]
    train_start_time: datetime
    train_end_time: datetime
    train_snapshot_id: int | None
    """The gold.features snapshot the rows were read at."""
    train_rows: int
    symbols: tuple[str, ...]
    metrics: dict[str, float]
    """Walk-forward validation metrics (accuracy, roc_auc, log_loss, mae...)."""
    baseline_metrics: dict[str, float]
    """The naive baselines on the same rows, keyed `<baseline>.<metric>`."""
    skill: bool | None
    verdict: str
    validation_folds: int
    validation_rows: int
    onnx_max_abs_diff: float
    """Largest difference between ONNX Runtime and scikit-learn on the validation rows."""
    params: dict[str, float]
    library_versions: dict[str, str]


@dataclass(frozen=True)
class ModelMetadata(ModelCard):
    """One registered version: its card, number, registration time and ONNX checksum."""

    version: int
    created_time: datetime
    onnx_sha256: str

    @property
    def reference(self) -> str:
        """`name@version`, as the contract names a pinned version."""
        return f"{self.name}@{self.version}"

    def to_json(self) -> bytes:
        """The metadata.json document."""
        data: dict[str, Any] = {"format": METADATA_FORMAT, **dataclasses.asdict(self)}
        for name in _TIME_FIELDS:
            data[name] = data[name].isoformat()
        return json.dumps(data, indent=2, sort_keys=True, allow_nan=False).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> ModelMetadata:
        """Parse a metadata.json document."""
        data = json.loads(raw)
        found = data.pop("format", None)
        if found != METADATA_FORMAT:
            raise ValueError(f"metadata format {found!r}; this release reads {METADATA_FORMAT}")
        for name in _TIME_FIELDS:
            data[name] = datetime.fromisoformat(data[name])
        for name in _TUPLE_FIELDS:
            data[name] = tuple(data[name])
        return cls(**data)


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A version's metadata and its ONNX bytes, checksum verified."""

    metadata: ModelMetadata
    onnx: bytes


class ModelRegistry:
    """Model versions under one root of a pyarrow FileSystem (see the module docstring)."""

    def __init__(self, filesystem: pafs.FileSystem, root: str) -> None:
        self._fs = filesystem
        self._root = root.rstrip("/")

    @classmethod
    def from_uri(cls, uri: str) -> ModelRegistry:
        """A registry at a local path or a URI pyarrow understands (file://, s3://)."""
        if "://" in uri:
            filesystem, root = pafs.FileSystem.from_uri(uri)
            return cls(filesystem, root)
        return cls(pafs.LocalFileSystem(), str(Path(uri).expanduser().resolve()))

    @property
    def location(self) -> str:
        """Where the versions live, for people."""
        return f"{self._fs.type_name}:{self._root}"

    def register(self, card: ModelCard, onnx: bytes) -> ModelMetadata:
        """Store a new version of `card.name` and return its metadata."""
        if not _NAME.fullmatch(card.name):
            raise ValueError(f"model name {card.name!r} must match {_NAME.pattern}")
        folders = self._version_folders(card.name)
        version = max(folders, default=0) + 1
        folder = self._path(card.name, str(version))
        self._fs.create_dir(folder, recursive=True)
        metadata = ModelMetadata(
            **{field.name: getattr(card, field.name) for field in dataclasses.fields(card)},
            version=version,
            created_time=datetime.now(UTC),
            onnx_sha256=hashlib.sha256(onnx).hexdigest(),
        )
        self._write_atomic(f"{folder}/{MODEL_FILE}", onnx)
        if self._exists(f"{folder}/{METADATA_FILE}"):
            raise RegistryConflict(
                f"{metadata.reference} was registered by someone else meanwhile; retry",
                metadata={"model": metadata.reference},
            )
        self._write_atomic(f"{folder}/{METADATA_FILE}", metadata.to_json())
        return metadata

    def names(self) -> list[str]:
        """Names with at least one complete version, sorted."""
        infos = self._fs.get_file_info(pafs.FileSelector(self._root, allow_not_found=True))
        candidates = sorted(
            info.base_name
            for info in infos
            if info.type == pafs.FileType.Directory and _NAME.fullmatch(info.base_name)
        )
        return [name for name in candidates if self.versions(name)]

    def versions(self, name: str) -> list[int]:
        """Complete versions of a name, ascending; empty for an unknown name."""
        folders = sorted(self._version_folders(name))
        markers = self._fs.get_file_info(
            [self._path(name, str(version), METADATA_FILE) for version in folders]
        )
        return [
            version
            for version, info in zip(folders, markers, strict=True)
            if info.type == pafs.FileType.File
        ]

    def metadata(self, name: str, version: int | None = None) -> ModelMetadata:
        """Metadata of a version, the latest when `version` is None; ModelNotFound if absent."""
        chosen = self._resolve(name, version)
        try:
            raw = self._read(self._path(name, str(chosen), METADATA_FILE))
        except FileNotFoundError as exc:
            raise _not_found(name, chosen) from exc
        return ModelMetadata.from_json(raw)

    def load(self, name: str, version: int | None = None) -> LoadedModel:
        """A version's metadata and ONNX bytes (the latest when `version` is None), after
        checking the bytes against the recorded sha256."""
        metadata = self.metadata(name, version)
        onnx = self._read(self._path(name, str(metadata.version), MODEL_FILE))
        digest = hashlib.sha256(onnx).hexdigest()
        if digest != metadata.onnx_sha256:
            raise ModelChecksumMismatch(
                f"{metadata.reference}: {MODEL_FILE} has sha256 {digest}, its metadata "
                f"recorded {metadata.onnx_sha256}",
                metadata={"model": metadata.reference},
            )
        return LoadedModel(metadata, onnx)

    def list_models(self) -> list[ModelMetadata]:
        """Every complete version of every name, newest registration first."""
        found = [
            self.metadata(name, version) for name in self.names() for version in self.versions(name)
        ]
        return sorted(found, key=lambda m: (m.created_time, m.name, m.version), reverse=True)

    def _resolve(self, name: str, version: int | None) -> int:
        versions = self.versions(name)
        if version is None:
            if not versions:
                raise ModelNotFound(
                    f"no model named {name!r} is registered; train one with "
                    "`financelake models train`",
                    metadata={"model": name},
                )
            return versions[-1]
        if version not in versions:
            raise _not_found(name, version)
        return version

    def _version_folders(self, name: str) -> list[int]:
        infos = self._fs.get_file_info(pafs.FileSelector(self._path(name), allow_not_found=True))
        return [
            int(info.base_name)
            for info in infos
            if info.type == pafs.FileType.Directory and info.base_name.isdigit()
        ]

    def _path(self, *parts: str) -> str:
        return "/".join((self._root, *parts))

    def _exists(self, path: str) -> bool:
        return bool(self._fs.get_file_info(path).type != pafs.FileType.NotFound)

    def _read(self, path: str) -> bytes:
        with self._fs.open_input_stream(path) as stream:
            data: bytes = stream.read()
        return data

    def _write_atomic(self, path: str, data: bytes) -> None:
        folder, _, base = path.rpartition("/")
        temporary = f"{folder}/.{base}.{uuid.uuid4().hex}.tmp"
        with self._fs.open_output_stream(temporary) as stream:
            stream.write(data)
        self._fs.move(temporary, path)


def registry_uri(settings: Settings) -> str:
    """Where the settings put the registry: `models.registry_uri`, else `<home>/models`."""
    return settings.models.registry_uri or str(settings.home / "models")


def open_registry(settings: Settings) -> ModelRegistry:
    """The model registry the settings configure."""
    return ModelRegistry.from_uri(registry_uri(settings))


def _not_found(name: str, version: int) -> ModelNotFound:
    return ModelNotFound(
        f"model {name}@{version} is not registered",
        metadata={"model": f"{name}@{version}"},
    )
