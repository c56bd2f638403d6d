"""The `kafka` settings section and its translation into aiokafka, librdkafka and Faust options.

PLAINTEXT must add nothing at all (clients built exactly as before TLS existed); SSL verifies
the broker against the CA file, else the system trust store. tests/data/tls/unit-test-ca.pem
is a throwaway self-signed CA certificate (its key was never kept).
"""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
import pytest
from faust.auth import SSLCredentials
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from pydantic import ValidationError

from financelake.services.kafka_security import (
    aiokafka_options,
    describe,
    faust_options,
    librdkafka_options,
    ssl_context,
)
from financelake.services.settings import KafkaClientSettings, Settings
from financelake.services.supervisor import child_environment

pytestmark = pytest.mark.unit

CA_FILE = Path(__file__).parents[1] / "data" / "tls" / "unit-test-ca.pem"
TLS = KafkaClientSettings(security_protocol="SSL", ssl_ca_file=CA_FILE)
SYSTEM_TRUST = KafkaClientSettings(security_protocol="SSL")


def test_plaintext_adds_no_option_to_any_client() -> None:
    plain = KafkaClientSettings()

    assert plain.security_protocol == "PLAINTEXT"
    assert ssl_context(plain) is None
    assert aiokafka_options(plain) == {}
    assert librdkafka_options(plain) == {}
    assert faust_options(plain) == {}
    assert describe(plain) == "PLAINTEXT"


def test_ssl_with_a_ca_file_trusts_that_file_only_and_checks_the_host_name() -> None:
    context = ssl_context(TLS)

    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    (ca,) = context.get_ca_certs()  # the file's one CA, not the system store besides it
    assert ca["subject"] == ((("commonName", "FinanceLake unit-test CA"),),)
    options = aiokafka_options(TLS)
    assert options["security_protocol"] == "SSL"
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert librdkafka_options(TLS) == {
        "security.protocol": "ssl",
        "ssl.ca.location": str(CA_FILE.resolve()),
        "ssl.endpoint.identification.algorithm": "https",
    }
    assert describe(TLS) == f"SSL (CA file {CA_FILE.resolve()})"


def test_ssl_without_a_ca_file_uses_the_system_trust_store() -> None:
    context = ssl_context(SYSTEM_TRUST)

    assert context is not None
    assert context.cert_store_stats() == ssl.create_default_context().cert_store_stats()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert librdkafka_options(SYSTEM_TRUST) == {
        "security.protocol": "ssl",
        "ssl.endpoint.identification.algorithm": "https",
    }
    assert describe(SYSTEM_TRUST) == "SSL (system trust store)"


def test_without_the_host_name_check_the_chain_is_still_verified() -> None:
    lax = TLS.model_copy(update={"ssl_check_hostname": False})

    context = ssl_context(lax)

    assert context is not None
    assert not context.check_hostname
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert librdkafka_options(lax)["ssl.endpoint.identification.algorithm"] == "none"
    assert describe(lax).endswith(", host name not checked)")


def test_faust_hands_the_context_to_its_aiokafka_clients() -> None:
    app = faust.App("tls-unit", broker="kafka://127.0.0.1:9094", **faust_options(TLS))

    credentials = app.conf.broker_credentials
    assert isinstance(credentials, SSLCredentials)
    # What Faust's consumers and producers are built with (faust.transport.drivers.aiokafka).
    auth = credentials_to_aiokafka_auth(credentials, app.conf.ssl_context)
    assert auth["security_protocol"] == "SSL"
    assert auth["ssl_context"] is credentials.context
    assert auth["ssl_context"].get_ca_certs() == ssl_context(TLS).get_ca_certs()  # type: ignore[union-attr]


def test_the_section_and_the_flat_bootstrap_variable_are_read_together(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(CA_FILE.parent)
    monkeypatch.setenv("FINANCELAKE_KAFKA_BOOTSTRAP", "b-1.msk.example:9094,b-2.msk.example:9094")
    monkeypatch.setenv("FINANCELAKE_KAFKA__SECURITY_PROTOCOL", "ssl")
    monkeypatch.setenv("FINANCELAKE_KAFKA__SSL_CA_FILE", CA_FILE.name)  # relative to the cwd
    monkeypatch.setenv("FINANCELAKE_KAFKA__SSL_CHECK_HOSTNAME", "false")

    settings = Settings()

    assert settings.bootstrap_servers == "b-1.msk.example:9094,b-2.msk.example:9094"
    assert settings.kafka == KafkaClientSettings(
        security_protocol="SSL", ssl_ca_file=CA_FILE.resolve(), ssl_check_hostname=False
    )
    # Child processes (servers, the stream worker) get the same section back, whatever cwd.
    monkeypatch.chdir(tmp_path)
    env = child_environment(settings, {})
    assert env["FINANCELAKE_KAFKA__SECURITY_PROTOCOL"] == "SSL"
    assert env["FINANCELAKE_KAFKA__SSL_CA_FILE"] == str(CA_FILE.resolve())
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings().kafka == settings.kafka


def test_defaults_are_plaintext(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FINANCELAKE_KAFKA_BOOTSTRAP", "FINANCELAKE_KAFKA__SECURITY_PROTOCOL"):
        monkeypatch.delenv(name, raising=False)

    assert Settings().kafka == KafkaClientSettings()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"FINANCELAKE_KAFKA__SECURITY_PROTOCOL": "SSL"},
            "FINANCELAKE_KAFKA__SECURITY_PROTOCOL=SSL needs FINANCELAKE_KAFKA_BOOTSTRAP",
        ),
        (
            {
                "FINANCELAKE_KAFKA_BOOTSTRAP": "b:9092",
                "FINANCELAKE_KAFKA__SSL_CA_FILE": str(CA_FILE),
            },
            "FINANCELAKE_KAFKA__SSL_CA_FILE is set but FINANCELAKE_KAFKA__SECURITY_PROTOCOL is "
            "PLAINTEXT",
        ),
        (
            {
                "FINANCELAKE_KAFKA_BOOTSTRAP": "b:9094",
                "FINANCELAKE_KAFKA__SECURITY_PROTOCOL": "SSL",
                "FINANCELAKE_KAFKA__SSL_CA_FILE": "/nonexistent/ca.pem",
            },
            "the CA file /nonexistent/ca.pem does not exist",
        ),
        (
            {
                "FINANCELAKE_KAFKA_BOOTSTRAP": "b:9094",
                "FINANCELAKE_KAFKA__SECURITY_PROTOCOL": "TLS",
            },
            "Input should be 'PLAINTEXT' or 'SSL'",
        ),
    ],
)
def test_inconsistent_tls_settings_fail_at_start(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    monkeypatch.delenv("FINANCELAKE_KAFKA_BOOTSTRAP", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(ValidationError, match=message):
        Settings()
