"""Fixtures shared by the whole suite, one plugin module per real backend."""

import os

# Processes the suite starts expose no metrics endpoint unless a test asks for one on a free
# port (`cli_env`): the fixed default ports would clash with a developer's running stack.
os.environ["FINANCELAKE_METRICS__ENABLED"] = "false"

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
