"""One run at a time per deployment: an exclusive lock in the deployment's state directory.

``flock`` is released by the kernel when its holder dies, so a killed run never leaves a
lock that blocks the next one; the pid written into the file only serves to say who holds it
(or held it, when the next run finds the pid dead).
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from omerowizard.model.errors import WizardError
from omerowizard.system.deployments import Deployment


class LockedError(WizardError):
    """Another omerowizard run holds the lock."""


def lock_path(omerodir: Path) -> Path:
    """One path per deployment, in its state directory: only the user running omerowizard (root)
    can write there, so the OMERO.web user cannot plant a link in its place (a lock inside
    OMERODIR let that user make root truncate any file)."""
    return Deployment(omerodir).ensure().lock


class DeploymentLock:
    def __init__(self, omerodir: Path, wait: float = 0.0):
        self.path = lock_path(omerodir)
        self.wait = wait
        self.fd: int | None = None
        self.stale_pid: int | None = None
        self.note = ""
        self.waited = False  # another run held the lock first: what it changed is not in our plan

    def __enter__(self) -> "DeploymentLock":
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise LockedError(f"cannot create the lock {self.path}: {exc.strerror}") from None
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = self._holder()
                    os.close(self.fd)
                    self.fd = None
                    who = f"process {holder}" if holder else "another process"
                    raise LockedError(f"another omerowizard run ({who}) is changing this deployment "
                                      f"(lock {self.path}); wait for it to finish and run again") from None
                self.waited = True
                time.sleep(0.2)
        old = self._recorded_pid()
        if old and old != os.getpid() and not pid_alive(old):
            self.stale_pid = old
        try:
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as exc:  # a full disk: the flock holds all the same; say it, do not fail on it
            self.note = f"could not write the pid into {self.path}: {exc.strerror}"
        return self

    def _holder(self) -> int | None:
        """The holder writes its pid just after taking the lock: give it a moment to appear."""
        for _ in range(10):
            pid = self._recorded_pid()
            if pid:
                return pid
            time.sleep(0.05)
        return None

    def _recorded_pid(self) -> int | None:
        try:
            return int(os.pread(self.fd, 32, 0).decode().strip() or 0) or None  # type: ignore[arg-type]
        except (ValueError, OSError):
            return None

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            try:
                os.ftruncate(self.fd, 0)
            except OSError:
                pass
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
