"""One change at a time of what the deployments of a host share.

Every deployment has its own lock (``lock.DeploymentLock``), but several deployments share host-wide
resources: the OMERO.web user's crontab (one read-modify-write of it by one run lost the line another
run had just written), the system web server's directories, its configuration test and reload, Debian's
stock default site link, and the units in /etc/systemd/system. Each change of those happens under this
host-wide lock.

Where: for root, ``/run/omerowizard/host.lock``: a directory only root can write, the same for every
deployment and every ``OMEROWIZARD_HOME`` (so tests with homes of their own share it too), emptied at boot
(``flock`` needs no state). A run that is not root can change only its own user's things: its lock is in
its own state directory.

Order: a run takes its deployment's lock first, and this one only around each short change of a shared
resource (never an omero process, never pip), and never takes a deployment lock while it holds this one:
two runs can never wait for each other. ``held`` is re-entrant within a process. ``flock`` is released by
the kernel when its holder dies, so a killed run never blocks the next one.
"""

from __future__ import annotations

import fcntl
import os
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from omerowizard.model.errors import WizardError
from omerowizard.system import locations, safefs

RUN_DIR = "/run/omerowizard"
NAME = "host.lock"
WAIT = 300.0  # seconds: far longer than any holder needs (a crontab edit, nginx -t and a reload)

_thread_lock = threading.RLock()
_depth = 0
_fd: int | None = None


class HostLockError(WizardError):
    """The host-wide lock could not be taken."""


def directory() -> str:
    """Where the host-wide lock lives for this process (see the module's docstring)."""
    if os.geteuid() == 0 and os.path.isdir(os.path.dirname(RUN_DIR)):
        return RUN_DIR
    return str(locations.state_dir())


def path() -> str:
    return f"{directory()}/{NAME}"


def _open() -> int:
    where = directory()
    root = os.geteuid() == 0
    try:
        if root:
            safefs.makedirs(where)
        with safefs.directory(where) as d:
            st = os.fstat(d)
            if st.st_uid != os.geteuid() or st.st_mode & (0o022 if root else 0o002):
                raise HostLockError(f"{where} must be a directory only {'root' if root else 'you'} can "
                                    f"write (it belongs to uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):o}): "
                                    f"remove it and run again")
            return os.open(NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=d)
    except (OSError, safefs.UnsafePath) as exc:
        raise HostLockError(f"cannot open the host-wide lock {where}/{NAME}: {getattr(exc, 'strerror', None) or exc}") \
            from None


def _holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except OSError:
        pid = ""
    return f"process {pid}" if pid.isdigit() else "another process"


@contextmanager
def held(what: str, wait: float | None = None) -> Iterator[None]:
    """Hold the host-wide lock while changing ``what`` (a few words for the message when it cannot be taken)."""
    global _depth, _fd
    with _thread_lock:
        if _depth == 0:
            fd = _open()
            try:
                deadline = time.monotonic() + (WAIT if wait is None else wait)
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() >= deadline:
                            raise HostLockError(f"another omerowizard run ({_holder(fd)}) held the host-wide lock "
                                                f"{path()} for too long; {what} was not changed: run again when "
                                                "it has finished") from None
                        time.sleep(0.02)
                try:
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
                except OSError:
                    pass  # a full disk: the flock holds all the same; the pid only names the holder
            except BaseException:
                os.close(fd)
                raise
            _fd = fd
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
            if _depth == 0 and _fd is not None:
                fd, _fd = _fd, None
                try:
                    os.ftruncate(fd, 0)
                except OSError:
                    pass
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
