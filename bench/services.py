"""The real services the benchmark's deployment talks to (apply checks that Redis answers)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from bench.timing import BenchError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _which(cmd: str) -> str | None:
    return shutil.which(cmd) or next((p for p in (f"/usr/sbin/{cmd}", f"/sbin/{cmd}") if os.access(p, os.X_OK)), None)


class Redis:
    """A throwaway redis-server on a free loopback port, without persistence."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = free_port()
        self.pidfile = workdir / "redis.pid"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "Redis":
        exe = _which("redis-server")
        if exe is None:
            raise BenchError("redis-server is missing (apt-get install redis-server): the benchmark's answers "
                             "use Redis sessions, and apply checks that Redis answers")
        self.workdir.mkdir(parents=True, exist_ok=True)
        subprocess.run([exe, "--port", str(self.port), "--bind", "127.0.0.1", "--daemonize", "yes", "--save", "",
                        "--appendonly", "no", "--dir", str(self.workdir), "--pidfile", str(self.pidfile)],
                       check=True, capture_output=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BenchError(f"redis-server did not listen on 127.0.0.1:{self.port}")

    def stop(self) -> None:
        deadline = time.monotonic() + 5
        while not self.pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
