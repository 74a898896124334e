"""The gunicorn master of one deployment: found, verified, and reloaded.

``omero web start`` runs gunicorn as the OMERO.web user, daemonised, with ``-p OMERODIR/var/django.pid``
and ``OMERODIR`` in its environment, without ``--preload``: SIGHUP makes the master start new workers,
which import the Django settings (and so config.xml) afresh, and stop the old ones once their requests
are done. No request is dropped.

The wizard may run as root, and OMERODIR belongs to the OMERO.web user, who could replace
``var`` or ``django.pid`` with a link or write any number into the file. So the pid file is read
through directory descriptors that refuse links, the process is held by a pidfd (a pid that is
reused meanwhile cannot receive the signal), and it is signalled only when /proc says that it is
owned by the OMERO.web user, has this OMERODIR in its environment and is gunicorn writing this pid
file.
"""

from __future__ import annotations

import os
import pwd
import signal
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from omerowizard.errors import ApplyError


class ReloadError(ApplyError):
    """The gunicorn master cannot be reloaded, or its new workers did not come up."""


@dataclass
class Master:
    pid: int
    pidfd: int | None  # None where the kernel has no pidfd_open (then the pid is signalled)

    def close(self) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


def read_pidfile(omerodir: Path) -> int:
    """The number in OMERODIR/var/django.pid, read without following a link at var or the file."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        top = os.open(omerodir, flags | os.O_DIRECTORY)
    except OSError as exc:
        raise ReloadError(f"cannot open {omerodir}: {exc.strerror}") from None
    try:
        var = os.open("var", flags | os.O_DIRECTORY, dir_fd=top)
        try:
            fd = os.open("django.pid", flags | os.O_NONBLOCK, dir_fd=var)
            with os.fdopen(fd, "rb") as fh:
                if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                    raise ReloadError(f"{omerodir}/var/django.pid is not a regular file")
                text = fh.read(64).decode("ascii", "replace").strip()
        finally:
            os.close(var)
    except OSError as exc:
        raise ReloadError(f"cannot read {omerodir}/var/django.pid without following links: {exc.strerror}") from None
    finally:
        os.close(top)
    if not text.isdigit() or int(text) <= 1:
        raise ReloadError(f"{omerodir}/var/django.pid holds {text[:20]!r}, not the pid of a gunicorn master")
    return int(text)


def _proc(pid: int, name: str) -> list[str]:
    with open(f"/proc/{pid}/{name}", "rb") as fh:
        return [part.decode("utf-8", "replace") for part in fh.read().split(b"\0") if part]


def why_not_ours(pid: int, omerodir: Path, user: str) -> str | None:
    """None when ``pid`` is the gunicorn master of this OMERODIR run by ``user``; else why it is not."""
    try:
        uid = os.stat(f"/proc/{pid}").st_uid
        environ = _proc(pid, "environ")
        cmdline = _proc(pid, "cmdline")
    except FileNotFoundError:
        return f"process {pid} is not running"
    except PermissionError:
        return f"process {pid} cannot be inspected by this user"
    want_uid = pwd.getpwnam(user).pw_uid
    if uid != want_uid:
        return f"process {pid} belongs to uid {uid}, not to {user} (uid {want_uid})"
    if f"OMERODIR={omerodir}" not in environ:
        return f"process {pid} does not run with OMERODIR={omerodir}"
    pidfile = f"{omerodir}/var/django.pid"
    named = any(Path(a).name == "gunicorn" or a.endswith("/gunicorn") for a in cmdline[:3])
    writes = any(a == "-p" and b == pidfile for a, b in zip(cmdline, cmdline[1:])) or f"--pid={pidfile}" in cmdline
    if not (named and writes):
        return f"process {pid} is not gunicorn writing {pidfile} (its command line: {' '.join(cmdline)[:200]})"
    return None


def find_master(omerodir: Path, user: str) -> Master:
    """The verified gunicorn master of this deployment, held by a pidfd."""
    pid = read_pidfile(omerodir)
    pidfd: int | None = None
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        raise ReloadError(f"the gunicorn master in {omerodir}/var/django.pid (pid {pid}) is not running") from None
    except (AttributeError, OSError):
        pidfd = None  # no pidfd on this kernel: the checks below still hold for the pid
    why = why_not_ours(pid, omerodir, user)
    if why:
        if pidfd is not None:
            os.close(pidfd)
        raise ReloadError(f"not reloading: {why}")
    return Master(pid, pidfd)


def alive(master: Master) -> bool:
    try:
        if master.pidfd is not None:
            signal.pidfd_send_signal(master.pidfd, 0)
        else:
            os.kill(master.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def send(master: Master, sig: int) -> None:
    if master.pidfd is not None:
        signal.pidfd_send_signal(master.pidfd, sig)
    else:
        os.kill(master.pid, sig)


def workers(pid: int) -> set[int]:
    """The pids of the master's children (its workers), from /proc."""
    out = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read().decode("ascii", "replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and fields[1] == str(pid) and fields[0] != "Z":
            out.add(int(entry.name))
    return out


@dataclass
class Reloaded:
    old: set[int]
    new: set[int]
    seconds: float


def reload(master: Master, expected: int, timeout: float = 60, check: Callable[[], bool] | None = None,
           poll: float = 0.1) -> Reloaded:
    """SIGHUP, then wait until every old worker is gone and ``expected`` new ones run and stay up
    (``check``, e.g. the login page answering 200, must pass once they do). A new worker that dies
    while booting (an app that does not import) or a master that exits is a ReloadError."""
    start = time.monotonic()
    old = workers(master.pid)
    send(master, signal.SIGHUP)
    seen: set[int] = set()
    deadline = start + timeout
    while time.monotonic() < deadline:
        if not alive(master):
            raise ReloadError(f"the gunicorn master (pid {master.pid}) exited after the reload: "
                              "its new workers failed to boot")
        now = workers(master.pid)
        fresh = now - old
        died = seen - now
        if died:
            raise ReloadError(f"new gunicorn workers exited while booting (pids {sorted(died)}): "
                              "the new configuration does not load")
        seen |= fresh
        if not (now & old) and len(fresh) >= expected:
            if check is None or check():
                after = workers(master.pid)
                if seen - after:
                    continue  # one died during the check: reported on the next round
                return Reloaded(old, fresh, time.monotonic() - start)
        time.sleep(poll)
    raise ReloadError(f"the new gunicorn workers were not all up after {timeout:.0f}s "
                      f"(old still running: {sorted(workers(master.pid) & old)}, new: {sorted(seen)})")
