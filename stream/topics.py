"""The product topics (ticks, bars, alerts), created with their configured shape.

Broker-side auto-creation is off, so this is the one place topics come from. `ensure_topics`
is idempotent: existing topics are left as they are (a differing partition count is reported,
not "fixed", because adding partitions silently remaps keys to partitions).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException

# NewTopic is documented here; the package re-exports it without listing it, hence the ignore.
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from financelake.services.kafka_security import describe, librdkafka_options
from financelake.services.settings import Settings

logger = logging.getLogger(__name__)


class TopicError(Exception):
    """A topic could not be listed or created."""


@dataclass(frozen=True)
class TopicState:
    """One product topic after `ensure_topics`."""

    name: str
    partitions: int
    created: bool


def topic_names(settings: Settings) -> list[str]:
    """The product topics, in pipeline order."""
    topics = settings.topics
    return [topics.ticks, topics.bars, topics.alerts, topics.actions]


def ensure_topics(settings: Settings, *, timeout: float = 30.0) -> list[TopicState]:
    """Create whichever product topics are missing; safe to call any number of times."""
    wanted = settings.topics
    admin = AdminClient(
        {"bootstrap.servers": settings.bootstrap_servers, **librdkafka_options(settings.kafka)}
    )
    try:
        existing = admin.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        raise TopicError(
            f"cannot list topics on {settings.bootstrap_servers} over "
            f"{describe(settings.kafka)}: {exc}"
        ) from exc

    states: dict[str, TopicState] = {}
    missing: list[NewTopic] = []
    for name in topic_names(settings):
        if name in existing:
            partitions = len(existing[name].partitions)
            if partitions != wanted.partitions:
                logger.warning(
                    "Topic %s has %d partitions, settings say %d; leaving it as it is",
                    name,
                    partitions,
                    wanted.partitions,
                )
            states[name] = TopicState(name, partitions, created=False)
        else:
            missing.append(NewTopic(name, wanted.partitions, wanted.replication_factor))

    if missing:
        futures = admin.create_topics(missing, operation_timeout=timeout, request_timeout=timeout)
        for name, future in futures.items():
            created = True
            try:
                future.result(timeout)
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise TopicError(f"cannot create topic {name}: {error.str()}") from exc
                created = False  # another process created it since we listed: fine
            if created:
                logger.info("Created topic %s (%d partitions)", name, wanted.partitions)
            states[name] = TopicState(name, wanted.partitions, created)
    return [states[name] for name in topic_names(settings)]
