"""The model versions a process serves, picked up from the registry while it runs (the
prediction server's models, the stream's anomaly model).

`ModelSet.reload` (called every few seconds from a worker thread) lists the registry's
versions (of the `names` asked for, else all), reads the metadata of versions it has not seen,
and loads into ONNX Runtime the newest version of every (name, interval). The result is an
immutable `ServedModels` swapped in whole: a call resolves its model once, from the view
current when it starts, and keeps that session to the end, so a new version never fails a
call in flight. Older versions asked for
by `name@version` are loaded on demand and kept in a small most-recently-used cache.

Which model answers Predict: the direction model named in the request, else the newest
direction model of the interval with the lowest walk-forward log loss (metadata `metrics`);
the expected return comes from the newest return model of the interval.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from financelake.models.errors import ModelNotFound
from financelake.models.inference import OnnxModel
from financelake.models.registry import ModelMetadata, ModelRegistry
from financelake.models.training import Task
from financelake.observability.metrics import MODEL_SERVED_VERSION, MODELS_LOADED

logger = logging.getLogger(__name__)

DEFAULT_PINNED_CACHE = 16
"""Versions older than the newest kept loaded after a call asked for them."""


@dataclass(frozen=True)
class ServedModels:
    """What is registered and what is loaded, at one moment."""

    registered: tuple[ModelMetadata, ...] = ()
    """Every complete version, newest registration first."""
    newest: dict[tuple[str, str], OnnxModel] = field(default_factory=dict)
    """The newest version of each (name, interval), loaded."""

    @property
    def any_loaded(self) -> bool:
        """Whether at least one model can answer."""
        return bool(self.newest)

    def newest_of(self, name: str) -> OnnxModel | None:
        """The newest loaded version of `name`, whatever its interval."""
        candidates = [model for (of, _), model in self.newest.items() if of == name]
        return max(candidates, key=lambda m: m.metadata.version, default=None)

    def for_interval(self, task: Task, interval: str) -> list[OnnxModel]:
        """The newest version of each model of `task` trained on `interval`."""
        return [
            model
            for (_, of), model in self.newest.items()
            if of == interval and model.metadata.label == task.value
        ]

    def default_direction(self, interval: str) -> OnnxModel | None:
        """The direction model Predict uses when the request names none."""
        return min(
            self.for_interval(Task.DIRECTION, interval),
            key=lambda m: (m.metadata.metrics.get("log_loss", math.inf), m.metadata.name),
            default=None,
        )

    def newest_return(self, interval: str) -> OnnxModel | None:
        """The return model of `interval` registered last."""
        return max(
            self.for_interval(Task.RETURN, interval),
            key=lambda m: m.metadata.created_time,
            default=None,
        )


class ModelSet:
    """The registry's models as the server sees them; thread-safe."""

    def __init__(
        self,
        registry: ModelRegistry,
        *,
        names: tuple[str, ...] = (),
        pinned_cache: int = DEFAULT_PINNED_CACHE,
    ) -> None:
        self._registry = registry
        self._names = names
        self._pinned_cache = pinned_cache
        self._lock = threading.Lock()
        self._metadata: dict[tuple[str, int], ModelMetadata] = {}
        self._pinned: OrderedDict[tuple[str, int], OnnxModel] = OrderedDict()
        self.current = ServedModels()

    def reload(self) -> bool:
        """Pick up new versions; True when the served models changed."""
        with self._lock:
            listed = [
                (name, version)
                for name in self._names or self._registry.names()
                for version in self._registry.versions(name)
            ]
            for listed_key in listed:
                if listed_key not in self._metadata:
                    self._metadata[listed_key] = self._registry.metadata(*listed_key)
            registered = tuple(
                sorted(
                    (self._metadata[listed_key] for listed_key in listed),
                    key=lambda m: (m.created_time, m.name, m.version),
                    reverse=True,
                )
            )
            newest: dict[tuple[str, str], OnnxModel] = {}
            for metadata in _newest_per_series(registered):
                key = (metadata.name, metadata.interval)
                held = self.current.newest.get(key)
                if held is not None and held.metadata.version == metadata.version:
                    newest[key] = held
                    continue
                try:
                    newest[key] = OnnxModel(self._registry.load(metadata.name, metadata.version))
                except Exception:  # a broken artifact must not take the others down
                    logger.exception("cannot load %s; serving the others", metadata.reference)
                    if held is not None:
                        newest[key] = held
                    continue
                logger.info("loaded %s (%s)", metadata.reference, metadata.interval)
            changed = registered != self.current.registered or newest != self.current.newest
            self.current = ServedModels(registered, newest)
            if changed:
                _publish_served(newest)
            return changed

    def version(self, name: str, version: int) -> OnnxModel:
        """A pinned version, loaded if need be; ModelNotFound when it is not registered."""
        for model in self.current.newest.values():
            if model.metadata.name == name and model.metadata.version == version:
                return model
        with self._lock:
            key = (name, version)
            pinned = self._pinned.get(key)
            if pinned is None:
                pinned = OnnxModel(self._registry.load(name, version))
                self._pinned[key] = pinned
                while len(self._pinned) > self._pinned_cache:
                    self._pinned.popitem(last=False)
            self._pinned.move_to_end(key)
            return pinned

    def named(self, name: str, version: int | None) -> OnnxModel:
        """`name@version`, or the newest loaded version of `name` when `version` is None."""
        if version is not None:
            return self.version(name, version)
        model = self.current.newest_of(name)
        if model is None:
            raise ModelNotFound(
                f"no model named {name!r} is loaded; train one with `financelake models train`",
                metadata={"model": name},
            )
        return model


def _publish_served(newest: dict[tuple[str, str], OnnxModel]) -> None:
    """The served versions as the metrics endpoint shows them."""
    MODEL_SERVED_VERSION.clear()
    for (name, interval), model in newest.items():
        MODEL_SERVED_VERSION.labels(name, interval).set(model.metadata.version)
    MODELS_LOADED.set(len(newest))


def _newest_per_series(registered: Iterable[ModelMetadata]) -> list[ModelMetadata]:
    newest: dict[tuple[str, str], ModelMetadata] = {}
    for metadata in registered:
        key = (metadata.name, metadata.interval)
        if key not in newest or metadata.version > newest[key].version:
            newest[key] = metadata
    return list(newest.values())
