"""The Faust app of the stream, built from settings: topics, codecs and the lake agents.

`financelake stream worker` runs it. Every agent shares the app's Kafka consumer group
(`settings.stream.app_id`); each writes its own Iceberg table under its own offsets key
(`<app_id>.<agent>`), which is what makes it exactly once (see `agents.core`).
"""

from __future__ import annotations

import functools

import faust
from pyiceberg.catalog import Catalog

from financelake.models.model_set import ModelSet
from financelake.models.registry import open_registry
from financelake.services.kafka_security import faust_options
from financelake.services.settings import Settings
from financelake.stream.agents import agent_group
from financelake.stream.agents.alerts import AlertsAgent
from financelake.stream.agents.bars import BarsAgent
from financelake.stream.agents.bronze import BronzeAgent
from financelake.stream.agents.core import CommitPolicy, LakeSink, start_offsets
from financelake.stream.agents.driver import Route, TopicDriver
from financelake.stream.agents.features import FeaturesAgent
from financelake.stream.agents.imports import ImportsAgent
from financelake.stream.alert_rules import AlertConfig
from financelake.stream.anomaly import ANOMALY_MODEL, AnomalyModels
from financelake.stream.codecs import BAR, TICK_BATCH, register_codecs
from financelake.stream.kafka_transport import StreamApp
from financelake.stream.lake.catalog import open_catalog
from financelake.stream.lake.tables import ALERTS, BARS, FEATURES, TICKS, ensure_tables


def faust_app(settings: Settings) -> StreamApp:
    """A configured Faust app with no agents."""
    stream = settings.stream
    return StreamApp(
        stream.app_id,
        broker=[f"kafka://{server}" for server in settings.bootstrap_servers.split(",")],
        # Topics come from `financelake topics create`; the app must not invent any.
        topic_allow_declare=False,
        topic_disable_leader=True,
        topic_partitions=settings.topics.partitions,
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # Agents acknowledge only after their Iceberg commit, and commit on revocation
        # themselves; Faust waiting for acks first would stall every rebalance.
        stream_wait_empty=False,
        # A worker that died without leaving the group holds its partitions this long; the
        # default 60 s would stall a restarted worker for a minute.
        broker_session_timeout=15.0,
        broker_heartbeat_interval=3.0,
        web_enabled=stream.web_enabled,
        web_bind=stream.web_host,
        web_host=stream.web_host,
        web_port=stream.web_port,
        datadir=str(settings.home / "stream"),
        consumer_max_fetch_size=stream.fetch_partition_bytes,
        **faust_options(settings.kafka),
    )


def build_app(settings: Settings, catalog: Catalog | None = None) -> faust.App:
    """The stream app with every agent installed, the lake's tables created if missing."""
    register_codecs()
    catalog = catalog or open_catalog(settings)
    ensure_tables(catalog)
    app = faust_app(settings)
    stream = settings.stream
    topics = settings.topics
    policy = CommitPolicy(
        interval_s=stream.commit_interval_s, max_records=stream.commit_max_records
    )
    ticks = app.topic(topics.ticks, value_serializer=TICK_BATCH, key_serializer="raw")
    bars = app.topic(topics.bars, value_serializer=BAR, key_serializer="raw")
    bars_out = app.topic(topics.bars, value_serializer="raw", key_serializer="raw")
    alerts_out = app.topic(topics.alerts, value_serializer="raw", key_serializer="raw")

    def sink(agent: str, identifier: str, topic: str) -> LakeSink:
        return LakeSink(
            catalog.load_table(identifier), topic, agent_group(stream.app_id, agent), policy
        )

    on_ticks = [
        Route(BronzeAgent(sink(BronzeAgent.name, TICKS.identifier, topics.ticks))),
        Route(
            BarsAgent(
                sink(BarsAgent.name, BARS.identifier, topics.ticks),
                grace_s=stream.bar_grace_s,
                retention_s=stream.bar_retention_s,
            ),
            bars_out,
        ),
    ]
    alert_config = AlertConfig(window=stream.alert_window, z_threshold=stream.alert_z_threshold)
    on_bars = [
        Route(FeaturesAgent(sink(FeaturesAgent.name, FEATURES.identifier, topics.bars))),
        Route(
            AlertsAgent(
                sink(AlertsAgent.name, ALERTS.identifier, topics.bars),
                config=alert_config,
                anomaly=AnomalyModels(ModelSet(open_registry(settings), names=(ANOMALY_MODEL,))),
            ),
            alerts_out,
        ),
        Route(ImportsAgent(sink(ImportsAgent.name, BARS.identifier, topics.bars))),
    ]
    # Every assignment starts where the lake ends, whatever the group's offsets say.
    app.start_offsets = functools.partial(
        start_offsets, [route.agent for route in (*on_ticks, *on_bars)]
    )
    for name, source, routes in (("ticks", ticks, on_ticks), ("bars", bars, on_bars)):
        TopicDriver(
            app,
            name,
            source,
            routes,
            take_max_records=stream.take_max_records,
            take_within_s=stream.take_within_s,
            traced=settings.tracing.enabled,
        ).install()
    return app
