"""The one module that runs ``omero``.

Every call runs as the OMERO.web user (``runuser`` when the wizard is root, directly
when the wizard already is that user, never as root), with ``OMERODIR`` set, from an
argument list (never a shell), and is logged with its output to the command log.
"""

from __future__ import annotations

import datetime as _dt
import grp
import os
import pwd
import re
import shlex
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from omerowizard import locations
from omerowizard.errors import OmeroCommandError, PreflightError

LineSink = Callable[[str], None]

_SECRET_URL = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@", re.I)


def mask_secrets(text: str) -> str:
    """Hide passwords in URLs such as ``redis://:secret@host:6379/0``."""
    return _SECRET_URL.sub(lambda m: f"{m['scheme']}{m['user']}:****@", text)


@dataclass(frozen=True)
class OmeroTarget:
    """Which OMERO.web installation to drive."""

    user: str
    venv: Path
    omerodir: Path

    @property
    def executable(self) -> Path:
        return self.venv / "bin" / "omero"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def web_log(self) -> Path:
        return self.omerodir / "var" / "log" / "OMEROweb.log"

    @property
    def config_xml(self) -> Path:
        return self.omerodir / "etc" / "grid" / "config.xml"


@dataclass
class Result:
    argv: list[str]
    returncode: int
    output: str


def current_user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


def user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def as_user_argv(user: str, argv: list[str], env: Mapping[str, str]) -> list[str]:
    """Prefix ``argv`` so that it runs as ``user`` with exactly ``env`` added.

    Root switches with ``runuser``; the user itself runs directly. Anything else
    cannot work and is refused with the fix. Root itself is never the target.
    """
    if user == "root":
        raise PreflightError(
            "omero must not run as root (it refuses, and it would corrupt directory permissions); "
            "set omero.user to the OMERO.web account, e.g. omero-web"
        )
    env_args = [f"{k}={v}" for k, v in env.items()]
    me = current_user()
    if me == user:
        return ["/usr/bin/env", *env_args, *argv]
    if os.geteuid() == 0:
        if not user_exists(user):
            raise PreflightError(f"the user {user!r} does not exist; create it or run `omerowizard install-omero --user {user}`")
        return [runuser(), "-u", user, "--", "/usr/bin/env", *env_args, *argv]
    raise PreflightError(f"omero must run as {user!r}, but the wizard runs as {me!r}: run it as root or as {user!r}")


def runuser() -> str:
    """Absolute path of util-linux's runuser (it lives in sbin, often not on a cron or sudo PATH)."""
    import shutil

    for cand in (shutil.which("runuser"), "/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"):
        if cand and os.access(cand, os.X_OK):
            return cand
    raise PreflightError("runuser (util-linux) is needed to run omero as its user: apt-get install util-linux")


class CommandLog:
    """Appends every command line and its output to the log file."""

    def __init__(self, path: Path | None = None):
        self.path = path or locations.command_log()

    def write(self, argv: list[str], output: str, returncode: int | None, seconds: float) -> None:
        stamp = _dt.datetime.now().isoformat(timespec="seconds")
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(f"--- {stamp} $ {mask_secrets(shlex.join(argv))}\n")
            if output:
                fh.write(mask_secrets(output.rstrip("\n")) + "\n")
            fh.write(f"--- exit {returncode} after {seconds:.2f}s\n")


def run_streamed(argv: list[str], on_line: LineSink | None = None, log: CommandLog | None = None,
                 timeout: float | None = None, cwd: str | None = None) -> Result:
    """Run ``argv``, feeding each output line to ``on_line`` as it is printed."""
    start = time.monotonic()
    lines: list[str] = []
    try:
        # its own session: a Ctrl-C reaches the wizard only, which then ends the whole group itself
        # (runuser does not pass a kill on to omero) before restoring
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                text=True, bufsize=1, cwd=cwd or "/", start_new_session=True)
    except OSError as exc:
        if log:
            log.write(argv, f"cannot run: {exc}", None, 0.0)
        raise PreflightError(f"cannot run {argv[0]}: {exc.strerror}") from None
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            lines.append(line)
            if on_line:
                on_line(mask_secrets(line.rstrip("\n")))
        proc.wait(timeout=timeout)
    except BaseException:
        _end_group(proc)
        raise
    finally:
        output = "".join(lines)
        if log:
            log.write(argv, output, proc.returncode, time.monotonic() - start)
    return Result(argv, proc.returncode, output)


def _end_group(proc: subprocess.Popen) -> None:
    import signal

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


class Omero:
    """Runs the real ``omero`` CLI of one OMERO.web installation."""

    def __init__(self, target: OmeroTarget, log: CommandLog | None = None):
        self.target = target
        self.log = log or CommandLog()
        self.calls = 0  # how many omero processes this object started (benchmarks and tests read it)

    # -- running -------------------------------------------------------------
    def env(self) -> dict[str, str]:
        t = self.target
        home = pwd.getpwnam(t.user).pw_dir if user_exists(t.user) else str(t.omerodir)
        return {
            "OMERODIR": str(t.omerodir),
            "HOME": home,
            "PATH": f"{t.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
        }

    def argv(self, *args: str) -> list[str]:
        return as_user_argv(self.target.user, [str(self.target.executable), *args], self.env())

    def run(self, *args: str, check: bool = True, on_line: LineSink | None = None,
            timeout: float | None = 600) -> Result:
        if not self.target.executable.exists():
            raise PreflightError(f"no omero executable at {self.target.executable}; "
                                 "install OMERO.web with `omerowizard install-omero` or set omero.venv")
        self.calls += 1
        result = run_streamed(self.argv(*args), on_line=on_line, log=self.log, timeout=timeout)
        if check and result.returncode != 0:
            raise OmeroCommandError([str(self.target.executable), *map(mask_secrets, args)], result.returncode, mask_secrets(result.output))
        return result

    # -- config ----------------------------------------------------------------
    def config_get_all(self) -> dict[str, str]:
        """Every key set in the OMERO config, as stored (one process)."""
        out = self.run("config", "get", "--show-password").output
        return parse_config_get(out)

    def config_read(self) -> dict[str, str]:
        """The stored config, read from config.xml without running omero.

        ``omero config get`` rewrites config.xml (it stamps a new "generated at" comment), so
        reading through the CLI would make every rerun a write; and it costs a 0.65 s process.
        The file is parsed read-only the way omero's ConfigXml does (the active profile's
        properties, without the bookkeeping keys). When it cannot be parsed, the CLI is asked.
        """
        path = self.target.config_xml
        if not path.exists():
            return {}
        parsed = parse_config_xml(path)
        return parsed if parsed is not None else self.config_get_all()

    def config_load(self, values: Mapping[str, str]) -> None:
        """Set many keys in one ``omero config load -q`` process."""
        if not values:
            return
        for key, value in values.items():
            if "\n" in value or "\r" in value or "=" in key or "\n" in key:
                raise ValueError(f"{key}: a config value cannot hold a line break")
        text = "".join(f"{k}={v}\n" for k, v in values.items())
        fd, name = tempfile.mkstemp(prefix="omerowizard-", suffix=".properties")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            _give_to(name, self.target.user)
            self.run("config", "load", "-q", name)
        finally:
            os.unlink(name)

    def config_unset(self, key: str) -> None:
        self.run("config", "set", key)

    def config_unset_many(self, keys: list[str]) -> None:
        """Unset many keys in one process: ``omero load`` runs a file of CLI commands.

        Key names are validated (catalogue keys, or extra_config keys matching omero.web.*), so a
        line can hold nothing but ``config set KEY``."""
        if not keys:
            return
        for key in keys:
            if not re.fullmatch(r"omero\.web\.[A-Za-z0-9_.]+", key):
                raise ValueError(f"refusing to unset {key!r}: not an omero.web.* key")
        if len(keys) == 1:
            return self.config_unset(keys[0])
        fd, name = tempfile.mkstemp(prefix="omerowizard-", suffix=".omero")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write("".join(f"config set {k}\n" for k in keys))
            _give_to(name, self.target.user)
            self.run("load", name)
        finally:
            os.unlink(name)

    def config_set(self, key: str, value: str) -> None:
        self.run("config", "set", key, value)

    def config_append(self, key: str, value: str) -> None:
        self.run("config", "append", key, value)

    # -- web ---------------------------------------------------------------------
    def web(self, action: str, on_line: LineSink | None = None, check: bool = True,
            keep_sessions: bool = False) -> Result:
        """``omero web ACTION``; ``keep_sessions`` (start, restart) skips the clean-up of expired sessions
        that start runs before gunicorn, which shortens the outage of a restart (the clearsessions job,
        or the cache's own expiry, removes them anyway)."""
        if action not in {"start", "stop", "restart", "status", "clearsessions"}:
            raise ValueError(action)
        extra = ["--keep-sessions"] if keep_sessions and action in {"start", "restart"} else []
        return self.run("web", action, *extra, on_line=on_line, check=check)

    def collectstatic(self, on_line: LineSink | None = None) -> Result:
        """Collect the static files into OMERODIR/var/static as ``omero web start`` does, without
        starting or stopping anything: Django's collectstatic with omero-web's settings, as the user."""
        env = {**self.env(), "DJANGO_SETTINGS_MODULE": "omeroweb.settings"}
        argv = as_user_argv(self.target.user, [str(self.target.python), "-m", "django", "collectstatic",
                                               "--noinput"], env)
        self.calls += 1
        result = run_streamed(argv, on_line=on_line, log=self.log, timeout=600)
        if result.returncode != 0:
            raise OmeroCommandError([str(self.target.python), "-m", "django", "collectstatic", "--noinput"],
                                    result.returncode, mask_secrets(result.output))
        return result

    def clear_session_store(self, on_line: LineSink | None = None) -> Result:
        """Remove every session from omero-web's session store (what its upgrade notes ask for when the
        session format changes): the files of the file store, or the cache that holds cache sessions.
        Runs as the user, with the settings of the installed omero-web."""
        env = {**self.env(), "DJANGO_SETTINGS_MODULE": "omeroweb.settings"}
        argv = as_user_argv(self.target.user, [str(self.target.python), "-c", _CLEAR_SESSIONS], env)
        self.calls += 1
        result = run_streamed(argv, on_line=on_line, log=self.log, timeout=600)
        if result.returncode != 0:
            raise OmeroCommandError([str(self.target.python), "-c", "(clear the session store)"], result.returncode,
                                    mask_secrets(result.output))
        return result

    def version(self) -> str:
        return self.run("version").output.strip().splitlines()[-1]


_CLEAR_SESSIONS = """
import os, tempfile
import django
django.setup()
from django.conf import settings
engine = settings.SESSION_ENGINE
if engine.endswith(".file"):
    path = getattr(settings, "SESSION_FILE_PATH", None) or tempfile.gettempdir()
    prefix = settings.SESSION_COOKIE_NAME
    gone = 0
    for entry in os.scandir(path):
        if entry.name.startswith(prefix) and entry.is_file(follow_symlinks=False):
            os.unlink(entry.path)
            gone += 1
    print(f"removed {gone} session files from {path}")
elif engine.endswith(".cache") or engine.endswith(".cached_db"):
    from django.core.cache import caches
    caches[settings.SESSION_CACHE_ALIAS].clear()
    print(f"cleared the {settings.SESSION_CACHE_ALIAS!r} cache that holds the sessions")
    if engine.endswith(".cached_db"):
        from django.contrib.sessions.models import Session
        print(f"removed {Session.objects.all().delete()[0]} sessions from the database")
else:
    from importlib import import_module
    store = import_module(engine).SessionStore
    print(f"{engine}: no known way to clear it; sessions of the previous version may fail to load")
"""

CONFIG_BOOKKEEPING = {"omero.config.profile", "omero.config.version"}


def parse_config_xml(path: Path) -> dict[str, str] | None:
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError):
        return None
    sections = {p.get("id"): p for p in root.findall("properties")}
    active = sections.get("__ACTIVE__")
    if active is None:
        return None
    profile = next((p.get("value") for p in active.findall("property") if p.get("name") == "omero.config.profile"),
                   "default")
    props = sections.get(profile, active)
    return {p.get("name", ""): p.get("value", "") for p in props.findall("property")
            if p.get("name") not in CONFIG_BOOKKEEPING}


def parse_config_get(output: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in output.splitlines():
        if "=" not in line or line.startswith((" ", "#")):
            continue
        key, _, value = line.partition("=")
        if re.fullmatch(r"[A-Za-z0-9_.\-]+", key):
            values[key] = value
    return values


def _give_to(path: str, user: str) -> None:
    """Let ``user`` read a file the wizard (maybe root) created."""
    if os.geteuid() == 0 and user_exists(user):
        pw = pwd.getpwnam(user)
        os.chown(path, pw.pw_uid, pw.pw_gid)
    os.chmod(path, 0o600)


def user_group(user: str) -> str:
    return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name


def chown_tree(paths: Iterable[Path], user: str) -> None:
    pw = pwd.getpwnam(user)
    for p in paths:
        os.chown(p, pw.pw_uid, pw.pw_gid)
