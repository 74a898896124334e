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
import re
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


PIDFILE = "django.pid"  # what `omero web start`, `status` and `stop` read
# the pid file of a master omerowizard starts beside the running one (blue/green): django-PORT.pid; once it is the
# one that serves, django.pid holds its pid too (the old master, on exit, removes django.pid only if it holds its own)
OURS = re.compile(r"django(-[0-9]{1,5})?\.pid")


def read_pidfile(omerodir: Path, name: str = PIDFILE) -> int:
    """The number in OMERODIR/var/django.pid (or ``name``), read without following a link at var or the file."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        top = os.open(omerodir, flags | os.O_DIRECTORY)
    except OSError as exc:
        raise ReloadError(f"cannot open {omerodir}: {exc.strerror}") from None
    try:
        var = os.open("var", flags | os.O_DIRECTORY, dir_fd=top)
        try:
            fd = os.open(name, flags | os.O_NONBLOCK, dir_fd=var)
            with os.fdopen(fd, "rb") as fh:
                if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                    raise ReloadError(f"{omerodir}/var/{name} is not a regular file")
                text = fh.read(64).decode("ascii", "replace").strip()
        finally:
            os.close(var)
    except OSError as exc:
        raise ReloadError(f"cannot read {omerodir}/var/{name} without following links: {exc.strerror}") from None
    finally:
        os.close(top)
    if not text.isdigit() or int(text) <= 1:
        raise ReloadError(f"{omerodir}/var/{name} holds {text[:20]!r}, not the pid of a gunicorn master")
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
    except (FileNotFoundError, ProcessLookupError):  # gone, or a zombie not yet reaped (its environ: ESRCH)
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
    writes = pidfile_of(cmdline, omerodir) is not None
    if not (named and writes):
        return f"process {pid} is not gunicorn writing {pidfile} (its command line: {' '.join(cmdline)[:200]})"
    return None


def pidfile_of(cmdline: list[str], omerodir: Path) -> str | None:
    """The pid file gunicorn's command line names when it is this deployment's (var/django.pid, or the
    var/django-PORT.pid of a master omerowizard started beside another), else None."""
    given = [b for a, b in zip(cmdline, cmdline[1:]) if a == "-p"] + \
        [a.split("=", 1)[1] for a in cmdline if a.startswith("--pid=")]
    for path in given:
        p = Path(path)
        if str(p.parent) == f"{omerodir}/var" and OURS.fullmatch(p.name):
            return str(p)
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
           on_line: Callable[[str], None] | None = None, wanted: int | None = None) -> Reloaded:
    """Replace every worker by one that reads the new configuration, with no moment without a booted
    worker: SIGTTIN once per worker (each starts a new worker, which imports the settings afresh), wait
    until all the new workers have booted, then SIGTTOU as many times (each makes the master stop its
    oldest worker gracefully, after its request). HUP would stop the old workers at once, leaving a gap
    as long as Django takes to import. A new worker that dies while booting, or a master that exits
    (gunicorn halts when a worker cannot load the application), is a ReloadError. ``wanted``: start that many new
    workers instead (a change of the number of workers together with Django settings)."""
    say = on_line or (lambda line: None)
    start = time.monotonic()
    old = workers(master.pid)
    n = len(old)
    k = wanted or n
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

    for i in range(k):  # one signal at a time: signals sent together may be merged into one
        send(master, signal.SIGTTIN)
        _wait(lambda: len(fresh()) > i, master, 30, f"starting new worker {i + 1} of {k}")
    say(f"started {k} new workers {sorted(seen)} beside the old ones {sorted(old)}")

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


# ---------------------------------------------------------------------------- every master, and blue/green
def _ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            text = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()
    return int(fields[1]) if len(fields) > 1 and fields[0] != "Z" else None


@dataclass(frozen=True)
class Running:
    """A verified gunicorn master of this deployment, as /proc shows it."""

    pid: int
    cmdline: tuple[str, ...]
    script_name: str | None  # SCRIPT_NAME in its environment (the prefix it serves)

    @property
    def bind(self) -> str | None:
        return option(self.cmdline, "--bind", "-b")

    @property
    def port(self) -> int | None:
        b = self.bind or ""
        tail = b.rsplit(":", 1)[-1]
        return int(tail) if tail.isdigit() else None

    @property
    def pidfile(self) -> str | None:
        return option(self.cmdline, "-p", "--pid")

    def identity(self) -> tuple:
        """What decides how it serves: its program and arguments but the pid file and the number of workers
        (changed on a running master with TTIN/TTOU), and its prefix."""
        return same_as(self.cmdline, self.script_name)


def option(cmdline: tuple[str, ...] | list[str], *names: str) -> str | None:
    for a, b in zip(cmdline, cmdline[1:]):
        if a in names:
            return b
    for a in cmdline:
        for n in names:
            if n.startswith("--") and a.startswith(n + "="):
                return a.split("=", 1)[1]
    return None


def same_as(cmdline: tuple[str, ...] | list[str], script_name: str | None) -> tuple:
    out: list[str] = []
    skip = False
    start = next((i for i, a in enumerate(cmdline[:3]) if Path(a).name == "gunicorn"), 0)
    for a in cmdline[start:]:  # from the gunicorn script on: its #! interpreter may be spelled python or python3
        if skip:
            skip = False
            continue
        if a in {"-p", "--pid", "--workers", "-w"}:
            skip = True
            continue
        if a.startswith(("--pid=", "--workers=")):
            continue
        out.append(a)
    return tuple(out), (script_name or "").rstrip("/") or "/"


def masters(omerodir: Path, user: str) -> list[Running]:
    """Every gunicorn master of this deployment that runs (verified as ``why_not_ours`` does), whatever pid file
    it writes: the one ``omero web start`` started, and any omerowizard started beside it."""
    found: dict[int, Running] = {}
    try:
        want_uid = pwd.getpwnam(user).pw_uid
    except KeyError:
        return []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            if os.stat(f"/proc/{pid}").st_uid != want_uid:
                continue
            cmdline = _proc(pid, "cmdline")
        except OSError:
            continue
        if not any(Path(a).name == "gunicorn" for a in cmdline[:3]) or pidfile_of(cmdline, omerodir) is None:
            continue
        try:
            environ = _proc(pid, "environ")
        except OSError:
            continue
        if f"OMERODIR={omerodir}" not in environ:
            continue
        script = next((e.split("=", 1)[1] for e in environ if e.startswith("SCRIPT_NAME=")), None)
        found[pid] = Running(pid, tuple(cmdline), script)
    # a worker has the master's command line: a master is one whose parent is not one of them
    return sorted((r for r in found.values() if _ppid(r.pid) not in found), key=lambda r: r.pid)


def hold(pid: int, omerodir: Path, user: str) -> Master:
    """A master found by ``masters``, held by a pidfd and verified again (the pid cannot be reused meanwhile)."""
    try:
        pidfd: int | None = os.pidfd_open(pid)
    except ProcessLookupError:
        raise ReloadError(f"the gunicorn master {pid} is not running") from None
    except (AttributeError, OSError):
        pidfd = None
    why = why_not_ours(pid, omerodir, user)
    if why:
        if pidfd is not None:
            os.close(pidfd)
        raise ReloadError(f"not signalling: {why}")
    return Master(pid, pidfd)


def stop(master: Master, timeout: float = 60, on_line: Callable[[str], None] | None = None) -> bool:
    """Stop a master gracefully (SIGTERM: it closes its socket, its workers finish their requests, up to gunicorn's
    graceful timeout of 30 s), then SIGKILL after ``timeout``. True when it has exited."""
    say = on_line or (lambda line: None)
    try:
        send(master, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while alive(master):
        if time.monotonic() > deadline:
            say(f"the gunicorn master {master.pid} did not stop within {timeout:.0f}s: killed")
            try:
                send(master, signal.SIGKILL)
            except ProcessLookupError:
                pass
            time.sleep(0.5)
            return not alive(master)
        time.sleep(0.05)
    return True


def scale(master: Master, wanted: int, timeout: float = 120, check: Callable[[], bool] | None = None,
          on_line: Callable[[str], None] | None = None) -> Reloaded:
    """Change the number of workers of a running master: SIGTTIN once per worker to add (each new one imports the
    settings afresh; waited for until booted, as ``reload`` does), SIGTTOU once per worker to remove (the master
    stops its oldest gracefully, after its request). The other workers keep serving: no request fails."""
    say = on_line or (lambda line: None)
    start = time.monotonic()
    old = workers(master.pid)
    n = len(old)
    if n == 0:
        raise ReloadError(f"the gunicorn master (pid {master.pid}) has no workers")
    seen: set[int] = set()
    if wanted > n:
        def fresh() -> set[int]:
            now = workers(master.pid)
            died = seen - now
            if died:
                raise ReloadError(f"new gunicorn workers exited while booting (pids {sorted(died)})")
            seen.update(now - old)
            return now - old

        for i in range(wanted - n):
            send(master, signal.SIGTTIN)
            _wait(lambda: len(fresh()) > i, master, 30, f"starting new worker {i + 1} of {wanted - n}")
        _wait(lambda: all(booted(p) is not False for p in fresh()), master, timeout,
              "waiting for the new workers to boot", poll=0.1)
        say(f"{wanted - n} new workers {sorted(seen)} booted beside {sorted(old)}")
    elif wanted < n:
        for i in range(n - wanted):
            send(master, signal.SIGTTOU)
            _wait(lambda: len(workers(master.pid)) <= n - 1 - i, master, timeout,
                  f"stopping worker {i + 1} of {n - wanted} (it finishes its request first)")
        say(f"{n - wanted} workers stopped gracefully; {wanted} serve")
    if check is not None:
        _wait(check, master, 60, "checking the login page after the change of workers", poll=0.2)
    return Reloaded(old, workers(master.pid), time.monotonic() - start)


def start_argv(settings: dict, venv: Path, omerodir: Path, port: int) -> list[str]:
    """gunicorn's command line as ``omero web start`` builds it (omero/plugins/web.py, ``_build_run_cmd``), bound to
    ``port`` and writing var/django-PORT.pid (``omero web start`` writes var/django.pid, which the running master
    holds)."""
    cls = settings.get("worker_class") or "sync"
    if cls not in {"sync", "gevent"}:
        raise ReloadError(f"omero.web.wsgi_worker_class {cls!r} is not one omero-web starts (sync or gevent)")
    argv = [str(venv / "bin" / "gunicorn"), "-D", "-p", f"{omerodir}/var/django-{port}.pid",
            "--bind", f"{settings['host']}:{port}", "--workers", str(settings["workers"])]
    if cls == "sync":
        argv += ["--threads", str(settings["threads"])]
    else:
        argv += ["--worker-connections", str(settings["connections"]), "--worker-class", cls]
    argv += ["--timeout", str(settings["timeout"]), "--max-requests", str(settings["max_requests"])]
    argv += str(settings.get("wsgi_args") or "").split()
    return argv + ["omeroweb.wsgi:application"]

