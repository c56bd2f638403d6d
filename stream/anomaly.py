"""The alerts agent's anomaly model: the newest registered `anomaly` version of each interval,
from the model registry, re-checked every `reload_interval_s`, so a newly trained model is
used within that time without restarting the worker. Until one is registered the agent runs
its z-score rules alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from financelake.models.model_set import ModelSet
from financelake.models.training import Task

logger = logging.getLogger(__name__)

ANOMALY_MODEL = "anomaly"
DEFAULT_RELOAD_INTERVAL_S = 30.0


class AnomalyModels:
    """An `alert_rules.AnomalyScorer` over the registry's anomaly models."""

    def __init__(
        self,
        models: ModelSet,
        *,
        reload_interval_s: float = DEFAULT_RELOAD_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._models = models
        self._reload_interval_s = reload_interval_s
        self._clock = clock
        self._next_reload = clock()

    def __call__(
        self, interval: str, features: npt.NDArray[np.float32]
    ) -> tuple[str, npt.NDArray[np.float64]] | None:
        """(model reference, decision scores: below 0 is anomalous) of the rows; None when no
        anomaly model is registered for `interval`."""
        now = self._clock()
        if now >= self._next_reload:
            self._next_reload = now + self._reload_interval_s
            try:
                if self._models.reload():
                    logger.info("anomaly models: %s", self._references())
            except Exception:  # the registry may be away; keep what is loaded
                logger.exception("the model registry cannot be read; keeping the loaded models")
        candidates = self._models.current.for_interval(Task.ANOMALY, interval)
        if not candidates:
            return None
        model = max(candidates, key=lambda m: m.metadata.version)
        scores = model.run(features)["scores"][:, 0].astype(np.float64)
        return model.reference, scores

    def _references(self) -> list[str]:
        return sorted(model.reference for model in self._models.current.newest.values())
