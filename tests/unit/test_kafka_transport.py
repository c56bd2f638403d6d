"""The stream app's consumer asks the broker to hold a fetch for at most FETCH_MAX_WAIT_MS."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer

from financelake.services.settings import Settings
from financelake.stream.app import faust_app
from financelake.stream.kafka_transport import FETCH_MAX_WAIT_MS


def test_the_worker_consumer_fetches_with_the_short_wait() -> None:
    app = faust_app(Settings())

    async def build() -> AIOKafkaConsumer:
        return app.consumer._thread._create_worker_consumer(app.transport)  # type: ignore[attr-defined]

    consumer = asyncio.run(build())
    assert consumer._fetch_max_wait_ms == FETCH_MAX_WAIT_MS < 1500


def test_aiokafka_still_keeps_the_fetch_wait_where_the_override_writes_it() -> None:
    async def build() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(fetch_max_wait_ms=123)

    assert asyncio.run(build())._fetch_max_wait_ms == 123
