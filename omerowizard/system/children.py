"""The process group of an ``omero`` child while it runs, kept in the deployment's state.

apply starts every ``omero`` in its own session (so a Ctrl-C reaches the wizard, which then
ends the child's whole group before restoring). A SIGKILL gives the wizard no such chance: the
child (``omero config load`` say) finishes on its own, after the next run has already looked at
the deployment. So the group is written down while it runs; the next run ends what is still
alive (checking the process's start time, so a reused pid is never touched) before it repairs.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return fields[19].decode()  # field 22: start time in clock ticks since boot
    except (OSError, IndexError):
        return None


def _load(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _save(path: Path, data: dict[str, str]) -> None:
    try:
        if data:
            tmp = path.with_name(f".{path.name}.{os.getpid()}")
            tmp.write_text(json.dumps(data))
            os.replace(tmp, path)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass  # a full disk: the child is still ended by this run if it is interrupted


def remember(path: Path, pid: int) -> None:
    data = _load(path)
    data[str(pid)] = _start_time(pid) or ""
    _save(path, data)


def forget(path: Path, pid: int) -> None:
    data = _load(path)
    data.pop(str(pid), None)
    _save(path, data)


def end_leftovers(path: Path, timeout: float = 10.0) -> list[int]:
    """End the process groups a killed run left running; returns their pids."""
    ended = []
    for key, started in _load(path).items():
        pid = int(key)
        if started and _start_time(pid) == started:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(pid, sig)
                except (ProcessLookupError, PermissionError):
                    break
                deadline = time.monotonic() + timeout / 2
                while time.monotonic() < deadline and _start_time(pid) == started and not _zombie(pid):
                    time.sleep(0.05)
                if _start_time(pid) != started or _zombie(pid):
                    break
            ended.append(pid)
    _save(path, {})
    return ended


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except OSError:
        return True
