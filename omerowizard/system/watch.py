"""Waiting for files to grow without a fixed sleep loop: Linux's inotify on the directories that hold them (the
directories themselves, never through a link: IN_DONT_FOLLOW | IN_ONLYDIR), read through ``select`` with a timeout
so that a rotated or replaced file is noticed too. Where inotify is missing, ``wait`` simply sleeps ``timeout``."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import time
from collections.abc import Iterable

IN_MODIFY = 0x00000002
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
MASK = IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_ONLYDIR | IN_DONT_FOLLOW


class Watcher:
    """Wakes up when anything in the watched directories is written, created or moved in."""

    def __init__(self, directories: Iterable[str]):
        self.fd: int | None = None
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        except (OSError, AttributeError):
            return
        if fd < 0:
            return
        watched = 0
        for d in sorted(set(directories)):
            if libc.inotify_add_watch(fd, os.fsencode(d), MASK) >= 0:
                watched += 1
        if watched:
            self.fd = fd
        else:
            os.close(fd)

    def wait(self, timeout: float) -> bool:
        """Until something changed (True) or ``timeout`` seconds passed (False)."""
        if self.fd is None:
            time.sleep(timeout)
            return False
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return False
        try:
            while os.read(self.fd, 65536):
                pass
        except BlockingIOError:
            pass
        return True

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> "Watcher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
