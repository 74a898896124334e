"""The gunicorn master of one deployment: found, verified, and its workers replaced.

``omero web start`` runs gunicorn as the OMERO.web user, daemonised, with ``-p OMERODIR/var/django.pid``
and ``OMERODIR`` in its environment, without ``--preload``: every new worker imports the Django
settings (and so config.xml) afresh. ``reload`` has the master start one new worker per old one
(SIGTTIN), waits until they have booted, then has it stop the old ones gracefully (SIGTTOU), so no
request fails and none waits for Django to import.

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

from omerowizard.model.errors import ApplyError


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


def booted(pid: int) -> bool | None:
    """Whether gunicorn worker ``pid`` has loaded the application and entered its loop: from then on it
    stamps its heartbeat file (an unlinked ``wgunicorn-*`` file it holds open) with the monotonic clock
    (gunicorn >= 20), while a worker still importing Django carries the wall-clock time of its creation.
    None when this cannot be told (no such file: another gunicorn)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if not os.path.basename(target).startswith("wgunicorn-"):
                continue
            mtime = os.stat(f"/proc/{pid}/fd/{fd}").st_mtime  # the open file itself (a /proc magic link)
        except OSError:
            continue
        return mtime < 1e9  # a monotonic stamp (seconds since boot), not a date after 2001
    return None


@dataclass
class Reloaded:
    old: set[int]
    new: set[int]
    seconds: float


def _wait(cond: Callable[[], bool], master: Master, timeout: float, what: str, poll: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if not alive(master):
            raise ReloadError(f"the gunicorn master (pid {master.pid}) exited while {what}: "
                              "its new workers failed to boot (the new configuration does not load)")
        if time.monotonic() > deadline:
            raise ReloadError(f"gave up after {timeout:.0f}s while {what}")
        time.sleep(poll)


def reload(master: Master, timeout: float = 120, check: Callable[[], bool] | None = None,
           on_line: Callable[[str], None] | None = None) -> Reloaded:
    """Replace every worker by one that reads the new configuration, with no moment without a booted
    worker: SIGTTIN once per worker (each starts a new worker, which imports the settings afresh), wait
    until all the new workers have booted, then SIGTTOU as many times (each makes the master stop its
    oldest worker gracefully, after its request). HUP would stop the old workers at once, leaving a gap
    as long as Django takes to import. A new worker that dies while booting, or a master that exits
    (gunicorn halts when a worker cannot load the application), is a ReloadError."""
    say = on_line or (lambda line: None)
    start = time.monotonic()
    old = workers(master.pid)
    n = len(old)
    if n == 0:
        raise ReloadError(f"the gunicorn master (pid {master.pid}) has no workers")
    seen: set[int] = set()

    def fresh() -> set[int]:
        now = workers(master.pid)
        died = seen - now
        if died:
            raise ReloadError(f"new gunicorn workers exited while booting (pids {sorted(died)}): "
                              "the new configuration does not load")
        seen.update(now - old)
        return now - old

    for i in range(n):  # one signal at a time: signals sent together may be merged into one
        send(master, signal.SIGTTIN)
        _wait(lambda: len(fresh()) > i, master, 30, f"starting new worker {i + 1} of {n}")
    say(f"started {n} new workers {sorted(seen)} beside the old ones {sorted(old)}")

    def all_booted() -> bool:
        states = [booted(pid) for pid in fresh()]
        if any(s is False for s in states):
            return False
        return all(states) or (check is None or check())

    _wait(all_booted, master, timeout, "waiting for the new workers to boot", poll=0.1)
    say(f"the new workers booted after {time.monotonic() - start:.1f}s; stopping the old ones gracefully")
    for i in range(n):
        send(master, signal.SIGTTOU)
        _wait(lambda: len(workers(master.pid) & old) <= n - 1 - i, master, timeout,
              f"stopping old worker {i + 1} of {n} (it finishes its request first)")
    if check is not None:
        _wait(check, master, 60, "checking the login page after the reload", poll=0.2)
    new = fresh()
    return Reloaded(old, new, time.monotonic() - start)
