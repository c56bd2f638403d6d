"""Fixtures shared by the whole suite, one plugin module per real backend."""

pytest_plugins = [
    "tests.fixtures.kafka",
    "tests.fixtures.grpc",
    "tests.fixtures.iceberg",
    "tests.fixtures.alphavantage",
    "tests.fixtures.ingestion",
    "tests.fixtures.stream",
    "tests.fixtures.prediction",
    "tests.fixtures.stack",
]
