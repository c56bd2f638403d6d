"""The first models of a new stack: `financelake up`'s demo trains every model once, as soon as
the stream has turned the demo history into enough 1-minute features, when the registry holds
no version yet. So a fresh stack serves predictions (and the alerts agent its anomaly model)
without a manual step; later versions come from `financelake models train`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from financelake.models.errors import NotEnoughData
from financelake.models.registry import open_registry
from financelake.models.workflow import (
    RegisteredModel,
    TrainingRequest,
    train_and_register,
    training_config,
)
from financelake.services.settings import Settings
from financelake.stream.lake.catalog import open_catalog

logger = logging.getLogger(__name__)

RETRY_DELAY_S = 30.0
"""Between attempts while the stream is still computing the history's features."""


async def train_first_models(
    settings: Settings, stop: asyncio.Event, *, retry_delay_s: float = RETRY_DELAY_S
) -> list[RegisteredModel]:
    """Train and register every model on the 1-minute features once the lake has enough of
    them, unless some version is registered already; [] when stopped first or not needed."""
    registry = open_registry(settings)
    if await asyncio.to_thread(registry.names):
        return []
    request = TrainingRequest(interval="1m", config=training_config(settings))
    while not stop.is_set():
        try:
            catalog = await asyncio.to_thread(open_catalog, settings)
            registered = await asyncio.to_thread(train_and_register, catalog, registry, request)
        except NotEnoughData as exc:
            logger.info("first models: %s; trying again in %.0f s", exc.message, retry_delay_s)
        except Exception:  # the lake or registry may be away for a while
            logger.exception("first models: training failed; trying again in %.0f s", retry_delay_s)
        else:
            references = ", ".join(result.metadata.reference for result in registered)
            logger.info("first models registered: %s", references)
            return registered
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), retry_delay_s)
    return []
