"""The first models of a new stack: trained once the lake has enough features, never when a
version is registered already, and never blocking a stop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from financelake.models.bootstrap import train_first_models
from financelake.models.registry import open_registry
from financelake.services.settings import ModelSettings, Settings
from financelake.stream.lake.catalog import open_catalog
from tests.fixtures.market_features import features_rows, market_bars, write_features

pytestmark = pytest.mark.integration


def settings_in(home: Path) -> Settings:
    # Few folds and rows: the synthetic lake is small.
    return Settings(home=home, models=ModelSettings(validation_folds=2, min_training_rows=500))


async def test_models_are_trained_once_features_arrive_and_only_once(tmp_path: Path) -> None:
    settings = settings_in(tmp_path / "home")
    stop = asyncio.Event()
    waiting = asyncio.create_task(train_first_models(settings, stop, retry_delay_s=0.2))
    await asyncio.sleep(0.5)
    assert not waiting.done()  # no gold.features yet: it waits

    write_features(open_catalog(settings), features_rows(market_bars(("AAA", "BBB"), 800)))
    registered = await asyncio.wait_for(waiting, 120)

    names = {result.metadata.reference for result in registered}
    assert names == {"direction-logistic@1", "direction-gbm@1", "return-ridge@1", "anomaly@1"}
    assert sorted(open_registry(settings).names()) == sorted(n.split("@")[0] for n in names)
    assert await train_first_models(settings, stop) == []  # a version exists: nothing to do


async def test_a_stop_ends_the_wait(tmp_path: Path) -> None:
    stop = asyncio.Event()
    waiting = asyncio.create_task(
        train_first_models(settings_in(tmp_path / "home"), stop, retry_delay_s=60)
    )
    await asyncio.sleep(0.3)
    stop.set()

    assert await asyncio.wait_for(waiting, 10) == []
