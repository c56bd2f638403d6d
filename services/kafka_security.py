"""`KafkaClientSettings` as each Kafka library's own options: the one place TLS is spelled.

Three libraries build Kafka clients here: aiokafka (the ingestion producer, the servers'
feeds), librdkafka through confluent_kafka (admin clients, readiness probes) and Faust (the
stream worker, on aiokafka underneath). For PLAINTEXT every function returns no options at
all, so a client built with them is exactly the one built before TLS existed; for SSL they
verify the broker's certificate against the configured CA file, else the system trust store.
"""

from __future__ import annotations

import ssl
from typing import Any

from financelake.services.settings import KafkaClientSettings


def describe(kafka: KafkaClientSettings) -> str:
    """The transport in a few words, for errors and logs: `PLAINTEXT`, `SSL (CA file ...)`,
    `SSL (system trust store)`."""
    if not kafka.tls:
        return "PLAINTEXT"
    trust = f"CA file {kafka.ssl_ca_file}" if kafka.ssl_ca_file else "system trust store"
    hostname = "" if kafka.ssl_check_hostname else ", host name not checked"
    return f"SSL ({trust}{hostname})"


def ssl_context(kafka: KafkaClientSettings) -> ssl.SSLContext | None:
    """The client TLS context (None for PLAINTEXT): the broker's chain verified against
    `ssl_ca_file`, or the system trust store when it is unset, and its name checked unless
    `ssl_check_hostname` is off."""
    if not kafka.tls:
        return None
    # cafile=None loads the system's default CAs; a file replaces them (no mixing).
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=kafka.ssl_ca_file)
    # Off only skips the name check; the certificate must still chain to a trusted CA.
    context.check_hostname = kafka.ssl_check_hostname
    return context


def aiokafka_options(kafka: KafkaClientSettings) -> dict[str, Any]:
    """Keyword arguments for `AIOKafkaProducer` / `AIOKafkaConsumer` / `AIOKafkaClient`."""
    context = ssl_context(kafka)
    if context is None:
        return {}
    return {"security_protocol": "SSL", "ssl_context": context}


def librdkafka_options(kafka: KafkaClientSettings) -> dict[str, str]:
    """librdkafka configuration entries for confluent_kafka's Producer, Consumer, AdminClient.

    Without a CA file librdkafka (OpenSSL linked statically in the confluent_kafka wheels)
    probes the usual system CA locations, the counterpart of Python's default context.
    """
    if not kafka.tls:
        return {}
    options = {
        "security.protocol": "ssl",
        # "https" is librdkafka's default since 2.0; spelled out so "none" is the only change.
        "ssl.endpoint.identification.algorithm": "https" if kafka.ssl_check_hostname else "none",
    }
    if kafka.ssl_ca_file is not None:
        options["ssl.ca.location"] = str(kafka.ssl_ca_file)
    return options


def faust_options(kafka: KafkaClientSettings) -> dict[str, Any]:
    """Keyword arguments for `faust.App`: the TLS context as `broker_credentials`, which Faust
    wraps in `SSLCredentials` and hands to every consumer and producer it builds. The broker
    URL keeps its `kafka://` scheme: Faust has no TLS scheme, the credentials decide."""
    context = ssl_context(kafka)
    if context is None:
        return {}
    return {"broker_credentials": context}
