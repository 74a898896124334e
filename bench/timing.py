"""Timing helpers and the description of the machine a run measured."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


class BenchError(RuntimeError):
    """A run that cannot be measured honestly (a command failed, the two routes differ)."""


@dataclass
class Series:
    """Timed runs of one command (warm-up runs are not kept)."""

    label: str
    command: str
    runs: list[float] = field(default_factory=list)

    @property
    def median(self) -> float | None:
        return statistics.median(self.runs) if self.runs else None

    def as_dict(self) -> dict:
        return {"label": self.label, "command": self.command,
                "median_s": round(self.median, 4) if self.median is not None else None,
                "runs_s": [round(r, 4) for r in self.runs]}


def timed(argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: str | None = None,
          expect: str | None = None, timeout: float = 300) -> tuple[float, str]:
    """Run ``argv`` to the end; return its wall time and output. Fails unless it exits 0
    (and, with ``expect``, prints that text)."""
    start = time.perf_counter()
    proc = subprocess.run(list(argv), env=dict(env) if env is not None else None, cwd=cwd, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise BenchError(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout[-3000:]}")
    if expect is not None and expect not in proc.stdout:
        raise BenchError(f"{' '.join(argv)} did not print {expect!r}:\n{proc.stdout[-3000:]}")
    return seconds, proc.stdout


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "os": f"{platform.system()} {platform.release()}",
        "distribution": _os_release(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _os_release() -> str:
    try:
        with open("/etc/os-release", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return ""


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b
