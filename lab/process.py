"""Real servers the lab runs as child processes (Prometheus, Alertmanager).

A child is started on a free loopback port, polled until its readiness URL answers (with a
deadline, never a fixed sleep), and always stopped: on ``stop()``, on interpreter exit, and — on
Linux — by the kernel when the lab process itself dies (PR_SET_PDEATHSIG), so no server outlives
the lab even after a SIGKILL.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


class LabProcessError(RuntimeError):
    """A child server failed to start or become ready; the message carries its log tail."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


_LIVE: set[ManagedProcess] = set()


class ManagedProcess:
    """One child server with its log file."""

    def __init__(self, name: str, argv: list[str], *, log_path: Path, ready_url: str) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.ready_url = ready_url
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, timeout: float = 30.0) -> ManagedProcess:
        log = self.log_path.open("wb")
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - only calls prctl
            )
        except OSError as e:
            raise LabProcessError(f"{self.name}: cannot run {self.argv[0]}: {e}") from e
        finally:
            log.close()
        _LIVE.add(self)
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        assert self.proc is not None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LabProcessError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(self.ready_url, timeout=1) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)  # polling interval while the child boots
        self.stop()
        raise LabProcessError(f"{self.name} not ready after {timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, *, timeout: float = 10.0) -> None:
        """Terminate, then kill if it does not exit in time."""
        proc, self.proc = self.proc, None
        _LIVE.discard(self)
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


@atexit.register
def _stop_all() -> None:
    for process in list(_LIVE):
        with contextlib.suppress(Exception):
            process.stop(timeout=5)
