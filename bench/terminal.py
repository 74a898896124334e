"""Time from starting a full-screen program to a text appearing on its first screen, in a real
pseudo-terminal (the program sees a tty of a fixed size, exactly as in an xterm)."""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# CSI, OSC, DCS/APC/PM/SOS strings and two-byte escapes: what a terminal draws none of.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[PX^_][^\x1b]*\x1b\\"
                      r"|\x1b[@-Z\\-_]|\x1b[()][0-9A-Za-z]|[\x00-\x08\x0e-\x1f]")


def visible_text(raw: str) -> str:
    """The characters a terminal would draw from ``raw``, escape sequences removed."""
    return _ESCAPES.sub("", raw)


@dataclass
class ScreenTiming:
    seconds: float | None  # None: the text never appeared
    exit_status: int | None  # set when the program ended before the text appeared
    tail: str  # the last visible output, for the error message


def time_to_text(argv: Sequence[str], text: str, env: Mapping[str, str], cwd: str | None = None,
                 columns: int = 120, lines: int = 40, timeout: float = 30) -> ScreenTiming:
    """Start ``argv`` on a new pty and return how long it took until ``text`` was drawn."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
    start = time.perf_counter()
    proc = subprocess.Popen(list(argv), stdin=slave, stdout=slave, stderr=slave, env=dict(env), cwd=cwd,
                            start_new_session=True, close_fds=True)
    os.close(slave)
    raw = b""
    found: float | None = None
    try:
        deadline = start + timeout
        while time.perf_counter() < deadline:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the program closed the terminal
                    chunk = b""
                if chunk:
                    raw += chunk
                    if text in visible_text(raw.decode("utf-8", "replace")):
                        found = time.perf_counter() - start
                        break
                    continue
            if proc.poll() is not None and not ready:
                break
    finally:
        _stop(proc)
        os.close(master)
    tail = visible_text(raw.decode("utf-8", "replace"))[-400:]
    return ScreenTiming(found, None if found is not None else proc.returncode, tail)


def _stop(proc: subprocess.Popen) -> None:
    """End the program and everything it started (its own session), never anything else."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # children left in the session (workers, omero)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.wait(timeout=5)
