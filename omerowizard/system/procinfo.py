"""What /proc says about one process: its state letter, its parent, when it started, its owner. Read-only; no
process is signalled here (system/gunicorn.py signals the gunicorn master it has verified)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

STATES = {"R": "running", "S": "sleeping", "D": "waiting for I/O", "T": "stopped", "t": "stopped by a debugger",
          "Z": "a zombie", "X": "dead", "I": "idle"}
SERVING = {"R", "S", "D", "I"}  # a process in one of these states can answer a request


@dataclass(frozen=True)
class Proc:
    pid: int
    state: str  # one letter: R S D T t Z X I
    ppid: int
    started: float  # seconds since the epoch
    uid: int

    @property
    def state_text(self) -> str:
        return STATES.get(self.state, self.state)

    @property
    def serving(self) -> bool:
        return self.state in SERVING


def _boot_time() -> float:
    try:
        with open("/proc/stat", "rb") as fh:
            for line in fh:
                if line.startswith(b"btime "):
                    return float(line.split()[1])
    except OSError:
        pass
    return time.time() - time.monotonic()


_BOOT: float | None = None


def read(pid: int) -> Proc | None:
    """The process ``pid`` (None when there is none, or only its zombie: a killed process whose parent has not
    reaped it yet runs no code and answers nothing)."""
    global _BOOT
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            text = fh.read().decode("ascii", "replace")
        uid = os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()
    if len(fields) < 20 or fields[0] in {"Z", "X"}:
        return None
    if _BOOT is None:
        _BOOT = _boot_time()
    ticks = os.sysconf("SC_CLK_TCK")
    return Proc(pid, fields[0], int(fields[1]), _BOOT + int(fields[19]) / ticks, uid)


def omero_web_processes() -> Iterator[tuple[int, bytes, list[bytes]]]:
    """(pid, command line, environment) of every OMERO.web process this user may inspect (its command line names
    omeroweb: gunicorn, or Django's server started by `omero web start`); processes gone meanwhile are skipped."""
    try:
        names = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return
    for name in names:
        try:
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                cmd = fh.read()
            if b"omeroweb" not in cmd:
                continue
            with open(f"/proc/{name}/environ", "rb") as fh:
                env = fh.read().split(b"\0")
        except OSError:
            continue
        yield int(name), cmd, env


def gunicorns_of(omerodir: str) -> list[Proc]:
    """The gunicorn processes (master or workers) running with ``OMERODIR=omerodir`` in their environment."""
    want = f"OMERODIR={omerodir}".encode()
    found = (read(pid) for pid, cmd, env in omero_web_processes() if b"gunicorn" in cmd and want in env)
    return [proc for proc in found if proc is not None]
