"""The one way omerowizard starts a process.

Every program the package runs goes through ``run`` (waited for, its output captured or streamed) or
``start`` (a detached server that is not waited for); no other module imports ``subprocess`` (a unit test
walks the code for it). Arguments are lists, never a shell.

**Root's boundary.** Before anything runs as root, ``root_problem`` checks what root would execute and load:
the program, its interpreter (a script's ``#!`` line, read through ``safefs``, and ``env``'s program), and
for a Python virtual environment what Python reads at start (the environment's directory, ``bin/``,
``pyvenv.cfg``, ``lib/pythonX.Y/site-packages``, every entry there, each ``*.pth`` file and the directories
it adds to ``sys.path``, and the package tree of a ``-m`` module). Every component of each path, links
followed, must belong to root and be writable by nobody else (a directory with the sticky bit, such as
/tmp, counts when the entry in it is root's: only its owner can replace it). Otherwise the command runs as
the owner of that environment (``as_owner``: pip in the OMERO.web user's environment runs as that user,
through runuser with a clean environment), or is refused with the path and the fix. Root's own binaries
(/usr/sbin/nginx, crontab, runuser) pass.

A command run as another user goes through ``runuser -u USER -- /usr/bin/env -i VARS... PROGRAM``: the child
gets only the variables given, the user's HOME, a plain PATH, and the few that say how to reach the network
and the package index (proxies, CA files, pip's index settings), nothing else of root's environment.
"""

from __future__ import annotations

import errno
import os
import pwd
import shlex
import shutil
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from queue import Empty, Queue
from typing import IO, Any, Protocol

from omerowizard.model.errors import PreflightError, WizardError
from omerowizard.system import children, safefs

LineSink = Callable[[str], None]

PLAIN_PATH = "/usr/local/bin:/usr/bin:/bin"
# root's variables a command run as another user keeps: how to reach the network and the package index
PASSED_ON = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "SSL_CERT_FILE",
             "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "PIP_CERT", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL",
             "PIP_TRUSTED_HOST", "PIP_DEFAULT_TIMEOUT", "PIP_DISABLE_PIP_VERSION_CHECK")
_MAX_LINKS = 40
_MAX_INTERPRETERS = 4  # a script whose interpreter is a script ... (Linux allows 4 levels)


class CannotRun(PreflightError):
    """The program could not be started (missing, not executable)."""

    def __init__(self, message: str, errno_: int | None = None):
        super().__init__(message)
        self.errno = errno_


class UntrustedProgram(PreflightError):
    """Root was asked to run (or load) something another user can change."""


class TimedOut(WizardError):
    """A command passed its time limit (``run(timeout=...)``): its process group was ended, even while it kept
    its output open (a child blocked on a FIFO). ``output`` holds what it printed until then."""

    def __init__(self, argv: list[str], timeout: float, output: str = ""):
        what = shlex.join(argv[:4]) + (" ..." if len(argv) > 4 else "")
        super().__init__(f"{what} did not finish within {timeout:g} s: its processes were ended")
        self.output = output


class CommandLog(Protocol):
    def command_started(self, argv: list[str]) -> None: ...

    def write(self, argv: list[str], output: str, returncode: int | None, seconds: float) -> None: ...


@dataclass
class Result:
    argv: list[str]
    returncode: int
    output: str  # standard output (and error, unless kept apart)
    errors: str = ""  # standard error, when kept apart


# ------------------------------------------------------------------------------------------------ users
def current_user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


def user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def runuser() -> str:
    """Absolute path of util-linux's runuser (it lives in sbin, often not on a cron or sudo PATH)."""
    for cand in (shutil.which("runuser"), "/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"):
        if cand and os.access(cand, os.X_OK):
            return cand
    raise PreflightError("runuser (util-linux) is needed to run commands as the OMERO.web user: "
                         "apt-get install util-linux")


def clean_env(user: str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The whole environment of a command run as ``user``: its HOME, a plain PATH, LANG, root's network and
    package-index settings (``PASSED_ON``), then ``env``."""
    try:
        home = pwd.getpwnam(user).pw_dir
    except KeyError:
        home = "/"
    out = {"HOME": home, "PATH": PLAIN_PATH, "LANG": "C.UTF-8"}
    out.update({k: os.environ[k] for k in PASSED_ON if k in os.environ})
    out.update(env or {})
    return out


def as_user_argv(user: str, argv: list[str], env: Mapping[str, str]) -> list[str]:
    """Prefix ``argv`` so that it runs as ``user`` with exactly ``env`` (and nothing of this process's).

    Root switches with ``runuser``; the user itself runs directly. Anything else cannot work and is refused
    with the fix. Root itself is never the target."""
    if user == "root":
        raise PreflightError(f"{Path(argv[0]).name} must not run as root here: give the account that owns it "
                             "(the OMERO.web user, e.g. omero-web)")
    env_args = [f"{k}={v}" for k, v in env.items()]
    me = current_user()
    if me == user:
        return ["/usr/bin/env", *env_args, *argv]
    if os.geteuid() == 0:
        if not user_exists(user):
            raise PreflightError(f"the user {user!r} does not exist; create it or run `omerowizard install-omero "
                                 f"--user {user}`")
        return [runuser(), "-u", user, "--", "/usr/bin/env", "-i", *env_args, *argv]
    raise PreflightError(f"{Path(argv[0]).name} must run as {user!r}, but the wizard runs as {me!r}: run it as "
                         f"root or as {user!r}")


# ------------------------------------------------------------------------------------------------ trust
def _owner(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _bad(path: str, st: os.stat_result) -> str | None:
    if st.st_uid not in (0, os.geteuid()):
        return f"{path} belongs to {_owner(st.st_uid)}"
    if st.st_mode & 0o022 and not (stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX):
        who = "its group" if st.st_mode & 0o020 else "others"
        if st.st_mode & 0o022 == 0o022:
            who = "its group and others"
        return f"{path} can be written by {who} (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def resolve(path: str) -> tuple[str | None, str | None]:
    """(the path with every link resolved, None) when each component, links and their targets included,
    belongs to root (or this process's user) and nobody else can write it; (None, why) when one does not.
    A missing path is (None, None): there is nothing there to run or load."""
    todo = [c for c in PurePosixPath(os.path.abspath(path)).parts[1:]]
    current = "/"
    why = _bad("/", os.lstat("/"))
    if why:
        return None, why
    hops = 0
    while todo:
        name = todo.pop(0)
        if name in ("", "."):
            continue
        if name == "..":
            current = os.path.dirname(current) or "/"
            continue
        here = os.path.join(current, name)
        try:
            st = os.lstat(here)
        except (FileNotFoundError, NotADirectoryError):
            return None, None
        if stat.S_ISLNK(st.st_mode):  # its directory is trusted (checked before); in a sticky one (/tmp) only
            if st.st_uid not in (0, os.geteuid()):  # the link's owner can replace it: root's links only
                return None, f"{here} is a symbolic link that {_owner(st.st_uid)} owns"
            hops += 1
            if hops > _MAX_LINKS:
                return None, f"too many symbolic links resolving {path}"
            target = os.readlink(here)
            todo = [c for c in target.split("/") if c] + todo
            if target.startswith("/"):
                current = "/"
            continue
        why = _bad(here, st)
        if why:
            return None, why
        current = here
    return current, None


def path_problem(path: str | os.PathLike[str]) -> str | None:
    """Why root must not execute or load ``path`` (see ``resolve``), or None."""
    return resolve(os.fspath(path))[1]


def _head(resolved: str, size: int = 512) -> bytes:
    """The first bytes of a file (its ``#!`` line), read through safefs: no link followed, never blocking."""
    parent, name = os.path.split(resolved)
    try:
        with safefs.directory(parent) as d:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=d)
    except OSError:
        return b""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b""
        return os.read(fd, size)
    finally:
        os.close(fd)


def interpreter(resolved: str) -> list[str]:
    """The programs a script's ``#!`` line runs: its interpreter, and for ``/usr/bin/env NAME`` the NAME."""
    head = _head(resolved)
    if not head.startswith(b"#!"):
        return []
    line = head[2:].split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    words = line.split()
    if not words:
        return []
    out = [words[0]]
    if Path(words[0]).name == "env":
        rest = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
        if rest:
            out.append(rest[0])
    return out


def venv_of(program: str) -> Path | None:
    """The virtual environment a Python program loads: the directory whose ``pyvenv.cfg`` sits next to the
    program's directory or above it (where Python looks for it, from the path it was started by)."""
    p = Path(os.path.abspath(program))
    for cand in (p.parent, p.parent.parent):
        if os.path.lexists(cand / "pyvenv.cfg"):
            return cand
    return None


def _site_dirs(venv: Path) -> list[Path]:
    lib = venv / "lib"
    try:
        names = sorted(os.listdir(lib))
    except OSError:
        return []
    return [lib / n / "site-packages" for n in names if n.startswith("python")]


def _pth_paths(pth: Path, site: Path) -> list[Path]:
    """The directories a .pth file adds to sys.path (its lines that are not imports or comments)."""
    try:
        data = safefs.read_bytes(str(pth), limit=1024 * 1024) or b""
    except (OSError, safefs.UnsafePath):
        return []
    out = []
    for line in data.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or line.startswith(("import ", "import\t")):
            continue
        out.append(site / line)
    return out


def venv_problem(venv: Path, module: str | None = None) -> str | None:
    """Why root must not start Python in ``venv`` (what it reads at start, and the ``-m`` module's files)."""
    why = path_problem(venv / "pyvenv.cfg")
    if why:
        return why
    for sub in ("bin", "lib"):
        why = path_problem(venv / sub)
        if why:
            return why
    for site in _site_dirs(venv):
        why = path_problem(site)
        if why:
            return why
        try:
            entries = sorted(os.listdir(site))
        except OSError:
            continue
        for name in entries:
            why = path_problem(site / name)
            if why:
                return why
            if name.endswith(".pth"):
                for extra in _pth_paths(site / name, site):
                    why = path_problem(extra)
                    if why:
                        return f"{why} (added to sys.path by {site / name})"
        if module:
            why = _tree_problem(site / module.split(".")[0])
            if why:
                return why
    return None


def _tree_problem(top: Path) -> str | None:
    """Every file and directory below ``top`` (links not followed): root's, writable by nobody else."""
    if not top.is_dir() or top.is_symlink():
        return None
    for root, dirs, files in os.walk(top):
        for name in dirs + files:
            path = os.path.join(root, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                why = path_problem(path)
            else:
                why = _bad(path, st)
            if why:
                return why
    return None


@dataclass(frozen=True)
class Refusal:
    """What root must not run: the path that is not root's alone, why, and the environment it belongs to."""

    why: str
    venv: Path | None = None

    @property
    def owner(self) -> str | None:
        """The non-root user who owns the environment (the command may run as that user instead)."""
        if self.venv is None:
            return None
        try:
            uid = os.lstat(self.venv).st_uid
        except OSError:
            return None
        return None if uid == 0 else _owner(uid)


def _program(name: str, env: Mapping[str, str] | None) -> str | None:
    if "/" in name:
        return os.path.abspath(name)
    path = (env or {}).get("PATH") or os.environ.get("PATH") or PLAIN_PATH
    return shutil.which(name, path=path)


def root_problem(argv: list[str], env: Mapping[str, str] | None = None) -> Refusal | None:
    """Why root must not run ``argv`` as it is (see the module's docstring), or None."""
    module = argv[argv.index("-m") + 1] if "-m" in argv[:-1] else None
    todo = [argv[0]]
    seen: set[str] = set()
    depth = 0
    while todo and depth <= _MAX_INTERPRETERS:
        depth += 1
        name = todo.pop(0)
        program = _program(name, env)
        if program is None or program in seen:
            continue
        seen.add(program)
        venv = venv_of(program)
        resolved, why = resolve(program)
        if why:
            return Refusal(why, venv)
        if venv is not None:
            why = venv_problem(venv, module)
            if why:
                return Refusal(why, venv)
        if resolved is not None:
            todo += interpreter(resolved)
    return None


def refusal_text(argv: list[str], refusal: Refusal) -> str:
    what = shlex.join(argv[:4]) + (" ..." if len(argv) > 4 else "")
    if refusal.venv is not None:
        fix = (f"make the environment root's alone (chown -R root: {refusal.venv}; chmod -R go-w {refusal.venv}), "
               f"or let its user own all of it (chown -R USER: {refusal.venv}) so that it runs as that user")
    else:
        fix = "make it root's and writable by nobody else (chown root: PATH; chmod go-w PATH), or remove it"
    return f"root does not run {what}: {refusal.why}; {fix}"


def prepare(argv: list[str], user: str | None = None, env: Mapping[str, str] | None = None,
            as_owner: bool = False) -> tuple[list[str], dict[str, str] | None]:
    """The argument list and environment that run ``argv`` within root's boundary.

    ``user``: run as that user (runuser, a clean environment with ``env``). Else it runs as this process with
    ``env`` added to its environment, after, for root, ``root_problem``: what another user can change runs as
    the owner of its environment when ``as_owner`` says it may (pip in the OMERO.web user's environment), else
    it is refused (``UntrustedProgram``, naming the path and the fix)."""
    if not argv:
        raise ValueError("empty command")
    switched = False
    if user is not None and user != current_user():
        argv, env, switched = as_user_argv(user, argv, clean_env(user, env)), None, True
    elif os.geteuid() == 0:
        refusal = root_problem(argv, env)
        if refusal is not None:
            owner = refusal.owner if as_owner else None
            if owner is None:
                raise UntrustedProgram(refusal_text(argv, refusal))
            argv, env, switched = as_user_argv(owner, argv, clean_env(owner, env)), None, True
    if switched and os.geteuid() == 0:
        refusal = root_problem(argv[:1])  # runuser: root's own
        if refusal is not None:
            raise UntrustedProgram(refusal_text(argv, refusal))
    return argv, (None if env is None else {**os.environ, **env})


def runs_as(argv: list[str], env: Mapping[str, str] | None = None) -> str | None:
    """Who ``prepare(argv, as_owner=True)`` runs ``argv`` as: None for this process, else the owner of its
    environment. Raises UntrustedProgram when it would be refused."""
    if os.geteuid() != 0:
        return None
    refusal = root_problem(argv, env)
    if refusal is None:
        return None
    if refusal.owner is None:
        raise UntrustedProgram(refusal_text(argv, refusal))
    return refusal.owner


# ------------------------------------------------------------------------------------------------ running
_RUNNING: set[subprocess.Popen] = set()  # the process groups run has started and not yet reaped


def end_running() -> None:
    """End every process group ``run`` is running (a cancelled installation: pip and the compilers it
    started), from any thread or a signal handler; their readers then see the end."""
    for proc in list(_RUNNING):
        _end_group(proc)


def _end_group(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue


def _popen(argv: list[str], env: dict[str, str] | None, cwd: str, log: CommandLog | None, **kw: Any) -> subprocess.Popen:
    try:
        # its own session: a Ctrl-C reaches the wizard only, which then ends the whole group itself
        # (runuser does not pass a kill on to its child)
        return subprocess.Popen(argv, cwd=cwd, env=env, start_new_session=True, **kw)
    except OSError as exc:
        if log:
            log.write(argv, f"cannot run: {exc}", None, 0.0)
        raise CannotRun(f"cannot run {argv[0]}: {exc.strerror}", exc.errno) from None


def run(argv: list[str], *, user: str | None = None, env: Mapping[str, str] | None = None, as_owner: bool = False,
        on_line: LineSink | None = None, log: CommandLog | None = None, timeout: float | None = None,
        input: str | None = None, track: Path | None = None, separate_errors: bool = False,
        cwd: str = "/") -> Result:
    """Run ``argv`` within root's boundary (``prepare``) and wait for it.

    Its output lines go to ``on_line`` as they are printed (standard error with them, unless
    ``separate_errors``: then both are collected apart, in ``Result.output`` and ``Result.errors``).
    ``input`` is written to its standard input (nothing secret goes through a temporary file). ``track``
    names a file that holds the child's process group while it runs: a run killed with SIGKILL cannot end
    its child itself, so the next run ends that group before it repairs. ``log`` records the command and
    its output (the caller's log masks secrets). ``timeout``: the time limit of the whole command, output
    open or not; when it passes, the process group is ended and ``TimedOut`` raised."""
    asked = list(argv)
    argv, full_env = prepare(asked, user, env, as_owner)
    start = time.monotonic()
    if log:
        log.command_started(argv)
    stdin = subprocess.PIPE if input is not None else subprocess.DEVNULL
    if separate_errors:
        proc = _popen(argv, full_env, cwd, log, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    else:
        proc = _popen(argv, full_env, cwd, log, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                      text=True, bufsize=1)
    _RUNNING.add(proc)
    if track is not None:
        children.remember(track, proc.pid)
    output, errors = "", ""
    try:
        if separate_errors:
            try:
                output, errors = proc.communicate(input, timeout=timeout)
            except subprocess.TimeoutExpired as exc:
                raise TimedOut(asked, timeout or 0, _text(exc.output) + _text(exc.stderr)) from None
        else:
            output = _stream(proc, asked, input, on_line, timeout)
    except TimedOut as exc:
        _end_group(proc)
        output = exc.output
        raise
    except BaseException:
        _end_group(proc)
        raise
    finally:
        _RUNNING.discard(proc)
        if track is not None:
            children.forget(track, proc.pid)
        if log:
            log.write(argv, output + errors, proc.returncode, time.monotonic() - start)
    return Result(argv, proc.returncode, output, errors)


def _text(data: str | bytes | None) -> str:
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data or ""


def _stream(proc: subprocess.Popen, argv: list[str], input: str | None, on_line: LineSink | None,
            timeout: float | None) -> str:
    """Its output lines, passed on as they come, until it ends; with a ``timeout``, a reader thread takes the
    lines and this one watches the clock, so a child that keeps its output open (blocked on a FIFO) cannot
    hold the run past its time limit."""
    assert proc.stdout is not None
    lines: list[str] = []
    if input is not None:
        assert proc.stdin is not None
        try:
            proc.stdin.write(input)
            proc.stdin.close()
        except BrokenPipeError:
            pass
    if timeout is None:
        for line in proc.stdout:
            lines.append(line)
            if on_line:
                on_line(line.rstrip("\n"))
        proc.wait()
        return "".join(lines)
    queue: Queue[str | None] = Queue()

    def pump() -> None:  # ends with the output: when the child closes it, or when its group is ended
        try:
            for line in proc.stdout:
                queue.put(line)
        except (OSError, ValueError):
            pass
        finally:
            queue.put(None)

    threading.Thread(target=pump, name=f"output of {proc.pid}", daemon=True).start()
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = queue.get(timeout=max(0.0, deadline - time.monotonic()))
        except Empty:
            raise TimedOut(argv, timeout, "".join(lines)) from None
        if line is None:
            break
        lines.append(line)
        if on_line:
            on_line(line.rstrip("\n"))
    try:
        proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:  # it closed its output but goes on
        raise TimedOut(argv, timeout, "".join(lines)) from None
    return "".join(lines)


def start(argv: list[str], *, user: str | None = None, env: Mapping[str, str] | None = None,
          output: IO[bytes] | None = None) -> subprocess.Popen:
    """Start a server that runs in the foreground (Django's development server) within root's boundary, in
    its own session, its output to ``output``, and do not wait for it. The caller owns the process."""
    argv, full_env = prepare(list(argv), user, env)
    return _popen(argv, full_env, "/", None, stdin=subprocess.DEVNULL, stdout=output or subprocess.DEVNULL,
                  stderr=subprocess.STDOUT)


def missing(exc: CannotRun) -> bool:
    return exc.errno == errno.ENOENT
