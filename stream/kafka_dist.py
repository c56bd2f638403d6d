"""The pinned Apache Kafka release, resolved from Maven Central into the shared cache.

`provision` resolves the `kafka_<scala>` release and its runtime jars with Maven (once; a marker
holding the pom's hash makes later calls instant, and changing the pinned jars re-resolves by
itself). A file lock makes concurrent provisions (tests + CLI) resolve only once. `java` (17+) and
`mvn` are checked first, with a message that says what to install.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from financelake.services.settings import Settings

logger = logging.getLogger(__name__)

# Kafka 4.x builds against log4j 2.24.x but leaves the slf4j binding to the distribution; we pin
# api, core and binding together at the top of the pom so Maven cannot mix two log4j versions.
LOG4J_VERSION = "2.24.3"
# Pinned so resolution does not depend on whatever plugin version the local Maven defaults to.
DEPENDENCY_PLUGIN_VERSION = "3.8.1"
MIN_JAVA_MAJOR = 17
_MARKER = ".provisioned"


class BrokerError(Exception):
    """Base of everything that can go wrong provisioning or running the local broker.

    Defined here, the lowest layer, so `stream.broker.BrokerStartError` can derive from it and
    the CLI catches provisioning and start failures as one type.
    """


class PrerequisiteMissing(BrokerError):
    """`java` (17+) or `mvn` is not installed; the message says what to install."""


class ProvisionError(BrokerError):
    """Maven could not resolve the Kafka release."""


@dataclass(frozen=True)
class KafkaDistribution:
    """A resolved Kafka release: the folder holding its runtime jars."""

    version: str
    scala_version: str
    root: Path
    libs: Path

    @property
    def classpath(self) -> str:
        """The JVM wildcard classpath over every resolved jar."""
        return str(self.libs / "*")


# ---- prerequisites ------------------------------------------------------------------------


def require_java() -> str:
    """Path of a `java` that is 17 or newer, else `PrerequisiteMissing`."""
    hint = (
        f"Java {MIN_JAVA_MAJOR}+ is required to run Kafka: install a JDK or JRE "
        f"{MIN_JAVA_MAJOR}+ (e.g. `apt-get install openjdk-{MIN_JAVA_MAJOR}-jre-headless` or "
        f"`brew install openjdk@{MIN_JAVA_MAJOR}`) and put `java` on PATH"
    )
    java = shutil.which("java")
    if java is None:
        raise PrerequisiteMissing(hint)
    # `java -version` writes to stderr; e.g. `openjdk version "17.0.15"` or `"1.8.0_392"`.
    probe = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    found = re.search(r'version "(\d+)(?:\.(\d+))?', probe.stderr)
    if found is None:
        raise PrerequisiteMissing(f"{hint} (could not read the version of {java})")
    major = int(found.group(1))
    if major == 1 and found.group(2):
        major = int(found.group(2))
    if major < MIN_JAVA_MAJOR:
        raise PrerequisiteMissing(f"{hint} (found Java {major} at {java})")
    return java


def require_maven() -> str:
    """Path of `mvn`, else `PrerequisiteMissing`."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise PrerequisiteMissing(
            "Apache Maven 3.6.3+ is required to fetch Kafka from Maven Central: install it "
            "(e.g. `apt-get install maven` or `brew install maven`) and put `mvn` on PATH"
        )
    return mvn


# ---- provisioning -------------------------------------------------------------------------


def _pom(version: str, scala: str) -> str:
    # The text, comment included, is hashed into the marker: any edit re-resolves every cache.
    def dependency(group: str, artifact: str, ver: str) -> str:
        return (
            f"    <dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
            f"<version>{ver}</version></dependency>"
        )

    deps = "\n".join(
        [
            dependency("org.apache.kafka", f"kafka_{scala}", version),
            dependency("org.apache.logging.log4j", "log4j-api", LOG4J_VERSION),
            dependency("org.apache.logging.log4j", "log4j-core", LOG4J_VERSION),
            # Kafka logs through slf4j 1.7; without this binding the broker logs nothing.
            dependency("org.apache.logging.log4j", "log4j-slf4j-impl", LOG4J_VERSION),
        ]
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by financelake.stream.kafka_dist: the runtime classpath of a local Kafka broker. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>financelake.local</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>{version}</version>
  <packaging>pom</packaging>
  <dependencies>
{deps}
  </dependencies>
  <build>
    <pluginManagement>
      <plugins>
        <plugin>
          <groupId>org.apache.maven.plugins</groupId>
          <artifactId>maven-dependency-plugin</artifactId>
          <version>{DEPENDENCY_PLUGIN_VERSION}</version>
        </plugin>
      </plugins>
    </pluginManagement>
  </build>
</project>
"""


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Holds an exclusive lock so concurrent provisions (tests + CLI) resolve only once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def provision(settings: Settings, *, timeout: float = 900.0) -> KafkaDistribution:
    """Resolve the pinned Kafka release into the cache; instant when already resolved."""
    version, scala = settings.broker.kafka_version, settings.broker.scala_version
    root = (settings.cache_dir / "kafka" / f"{scala}-{version}").expanduser().resolve()
    dist = KafkaDistribution(version=version, scala_version=scala, root=root, libs=root / "libs")
    pom = _pom(version, scala)
    # The marker holds the pom's hash, so changing the pinned jars re-resolves by itself.
    fingerprint = hashlib.sha256(pom.encode()).hexdigest()
    marker = root / _MARKER

    def resolved() -> bool:
        return marker.is_file() and marker.read_text().strip() == fingerprint

    if resolved():
        return dist
    with _locked(root / ".lock"):
        if resolved():  # another process finished while we waited for the lock
            return dist
        mvn = require_maven()
        require_java()
        logger.info(
            "Resolving Kafka %s (Scala %s) from Maven Central into %s", version, scala, root
        )
        (root / "pom.xml").write_text(pom)
        shutil.rmtree(dist.libs, ignore_errors=True)  # no stale jars from an earlier pom
        started = time.monotonic()
        command = [mvn, "-B", "-q", "dependency:copy-dependencies"]
        command += ["-DincludeScope=runtime", "-DoutputDirectory=libs"]
        try:
            result = subprocess.run(
                command, cwd=root, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise ProvisionError(f"Maven did not finish within {timeout:.0f}s in {root}") from exc
        if result.returncode != 0:
            output = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
            raise ProvisionError(
                f"Maven could not resolve org.apache.kafka:kafka_{scala}:{version} "
                f"(exit {result.returncode}) in {root}:\n{output}"
            )
        if not any(dist.libs.glob(f"kafka_{scala}-{version}.jar")):
            raise ProvisionError(
                f"Maven succeeded but no kafka_{scala}-{version}.jar in {dist.libs}"
            )
        marker.write_text(fingerprint + "\n")
        jars = len(list(dist.libs.glob("*.jar")))
        logger.info("Resolved %d jars in %.1fs", jars, time.monotonic() - started)
    return dist
