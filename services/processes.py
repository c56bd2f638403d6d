"""Processes we start detached and stop by pid: the Kafka broker and the four gRPC servers.

A `DetachedProcess` runs in its own session with a pid file and a log file, so it outlives the
command that started it and a later command (another process) can still stop it. It is stopped
by pid, never by name: SIGTERM, a grace period, then SIGKILL of its whole session.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

# Children spawned by this interpreter, kept so they are reaped (a zombie still answers
# kill(pid, 0)) and so subprocess does not warn about a running child being collected.
_SPAWNED: dict[int, subprocess.Popen[bytes]] = {}
# Written to the log before each start, so error tails show only the latest run.
_START_BANNER = "---- financelake: "


class ProcessStopError(Exception):
    """A process we started survived SIGKILL (e.g. stuck in uninterruptible I/O)."""


def pid_alive(pid: int) -> bool:
    """True while `pid` runs (zombies count as gone)."""
    child = _SPAWNED.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        del _SPAWNED[pid]
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        # Field 3 is the state; the command name in field 2 may itself contain spaces.
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def exited_children() -> dict[int, int]:
    """Children spawned here that exited since the last call: pid -> return code (reaped)."""
    exited = {pid: code for pid, child in _SPAWNED.items() if (code := child.poll()) is not None}
    for pid in exited:
        del _SPAWNED[pid]
    return exited


def _command_line(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return None


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


@dataclass(frozen=True)
class DetachedProcess:
    """A process in its own session, tracked by a pid file and writing to a log file.

    `marker` must appear in its command line: a pid file left by a crashed run may name a pid
    the OS has since given to an unrelated process, which we must never signal.
    """

    name: str
    pid_file: Path
    log_file: Path
    marker: str

    def pid(self) -> int | None:
        """The pid of the running process, or None (a stale pid file is removed)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        command = _command_line(pid)
        if pid_alive(pid) and (command is None or self.marker in command):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def spawn(self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path) -> int:
        """Start detached (own session, no terminal), output appended to the log file."""
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(f"{_START_BANNER}{stamp} starting {self.name}\n".encode())
            log.flush()
            child = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the terminal reaches us, not the child
            )
        _SPAWNED[child.pid] = child
        self.pid_file.write_text(f"{child.pid}\n")
        logger.debug("Started %s as pid %d: %s", self.name, child.pid, " ".join(argv))
        return child.pid

    def terminate(self) -> int | None:
        """Send SIGTERM (the graceful stop); returns the pid signalled, if it was running."""
        pid = self.pid()
        if pid is not None:
            logger.info("Stopping %s (pid %d)", self.name, pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        return pid

    def reap(self, pid: int, grace: float) -> None:
        """Wait up to `grace` for a terminated pid, then SIGKILL its session; drop the pid file."""
        if not _wait_gone(pid, grace):
            logger.warning(
                "%s (pid %d) ignored SIGTERM for %.0fs; killing it", self.name, pid, grace
            )
        # The session is ours alone: this also takes down anything the process left behind.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        if not _wait_gone(pid, 5.0):
            raise ProcessStopError(f"{self.name} (pid {pid}) survived SIGKILL")
        self.pid_file.unlink(missing_ok=True)

    def stop(self, grace: float) -> int | None:
        """SIGTERM, wait `grace` seconds, SIGKILL last; returns the pid stopped, if any."""
        pid = self.terminate()
        if pid is not None:
            self.reap(pid, grace)
        return pid

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the log written since the latest start, for error messages."""
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return f"(no log at {self.log_file})"
        if _START_BANNER in text:
            text = text.rsplit(_START_BANNER, 1)[1].split("\n", 1)[-1]
        return "\n".join(text.splitlines()[-lines:])
