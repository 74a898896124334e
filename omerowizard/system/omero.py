"""The one module that runs ``omero``.

Every call runs as the OMERO.web user (``runuser`` when the wizard is root, directly
when the wizard already is that user, never as root), with ``OMERODIR`` set, from an
argument list (never a shell), and is logged with its output to the command log.
"""

from __future__ import annotations

import datetime as _dt
import grp
import json
import os
import pwd
import re
import shlex
import stat
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from omerowizard.model import secrets as masking
from omerowizard.model.errors import ConfigXmlError, OmeroCommandError, PreflightError
from omerowizard.system import locations, processes, safefs
from omerowizard.system.deployments import Deployment
from omerowizard.system.processes import LineSink, Result, as_user_argv, current_user, user_exists

MIN_SECRET = masking.MIN_SECRET


def mask_secrets(text: str, known: Iterable[str] = ()) -> str:
    """Any text that is shown or logged, with its secrets masked by what they are (``secrets.mask_text``):
    the value of every secret config key, every URL's password, and the ``known`` secret values."""
    return masking.mask_text(text, known)


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


class CommandLog:
    """The run log: the start of each run, every command when it starts and when it ends (with its
    output), what was fed to a command, and every change to the machine (file, link, crontab,
    web-server start or reload). Secrets are masked."""

    def __init__(self, path: Path | None = None):
        self.path = path or locations.command_log()
        # the values of secret config keys this log's commands were given: masked also where they appear
        # without their key (omero's own output, an error message)
        self.secrets: set[str] = set()

    def mask(self, text: str) -> str:
        return mask_secrets(text, self.secrets)

    def _append(self, text: str) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(self.mask(text.rstrip("\n")) + "\n")

    @staticmethod
    def _stamp() -> str:
        return _dt.datetime.now().isoformat(timespec="seconds")

    def run_started(self, omerodir: Path | str, source: str, what: str = "apply") -> None:
        self._append(f"=== {self._stamp()} {what} started: pid {os.getpid()}, user {current_user()}, "
                     f"OMERODIR {omerodir}, answers from {source}")

    def command_started(self, argv: list[str]) -> None:
        self._append(f"--- {self._stamp()} start $ {shlex.join(argv)}")

    def fed(self, command: str, text: str) -> None:
        """What was given to a command on a file or its input (e.g. ``omero config load``), masked."""
        body = "".join(f"    {line}\n" for line in text.splitlines())
        self._append(f"--- {self._stamp()} fed to {command}:\n{body}")

    def change(self, what: str) -> None:
        """One change to the machine: a file written or removed, a link, a crontab, a web-server reload."""
        self._append(f"--- {self._stamp()} change: {what}")

    def wrote(self, path: str, mode: int, owner: str | None = None) -> None:
        self.change(f"wrote {path} (mode {mode:o}" + (f", owner {owner})" if owner else ")"))

    def removed(self, path: str) -> None:
        self.change(f"removed {path}")

    def linked(self, link: str, target: str | None) -> None:
        self.change(f"linked {link} -> {target}" if target else f"removed the link {link}")

    def crontab(self, user: str, line: str | None) -> None:
        self.change(f"crontab of {user}: " + (f"clearsessions line set to {line}" if line else
                                              "clearsessions line removed"))

    def server(self, what: str, ok: bool, output: str = "") -> None:
        self.change(f"{what}: {'done' if ok else 'FAILED'}" + (f"\n{output}" if output and not ok else ""))

    def write(self, argv: list[str], output: str, returncode: int | None, seconds: float) -> None:
        """A command that ended: its command line again, its output and its exit status."""
        lines = [f"--- {self._stamp()} $ {shlex.join(argv)}"]
        if output:
            lines.append(output.rstrip("\n"))
        lines.append(f"--- exit {returncode} after {seconds:.2f}s")
        self._append("\n".join(lines))


class Omero:
    """Runs the real ``omero`` CLI of one OMERO.web installation."""

    def __init__(self, target: OmeroTarget, log: CommandLog | None = None):

        self.target = target
        self.deployment = Deployment(target.omerodir)
        self.log = log or CommandLog(self.deployment.ensure().command_log)
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

    def _user(self) -> str:
        if self.target.user == "root":
            raise PreflightError("omero must not run as root (it refuses, and it would corrupt directory permissions); "
                                 "set omero.user to the OMERO.web account, e.g. omero-web")
        return self.target.user

    def argv(self, *args: str) -> list[str]:
        """The whole command line of ``omero ARGS`` as the user (what the command log shows)."""
        return as_user_argv(self._user(), [str(self.target.executable), *args], self.env())

    def _as_user(self, argv: list[str], env: dict[str, str], on_line: LineSink | None, timeout: float | None,
                 input: str | None = None, track: Path | None = None) -> Result:
        self.calls += 1
        sink = (lambda line: on_line(self.log.mask(line))) if on_line else None
        return processes.run(argv, user=self._user(), env=env, on_line=sink, log=self.log, timeout=timeout,
                             input=input, track=track)

    def start(self, *args: str, output=None):
        """Start ``omero ARGS`` as the user in its own session, not waited for (Django's development server)."""
        self.calls += 1
        return processes.start([str(self.target.executable), *args], user=self._user(), env=self.env(), output=output)

    def run(self, *args: str, check: bool = True, on_line: LineSink | None = None,
            timeout: float | None = 600, input: str | None = None) -> Result:
        if not self.target.executable.exists():
            raise PreflightError(f"no omero executable at {self.target.executable}; "
                                 "install OMERO.web with `omerowizard install-omero` or set omero.venv")
        result = self._as_user([str(self.target.executable), *args], self.env(), on_line, timeout, input,
                               track=self.deployment.children)
        if check and result.returncode != 0:
            raise OmeroCommandError(masking.mask_argv([str(self.target.executable), *args]), result.returncode,
                                    self.log.mask(result.output))
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
        properties, without the bookkeeping keys). A file that cannot be parsed is an error that
        names it and the fix (asking omero would rewrite it, or fail with a bare parser message).
        """

        path = self.target.config_xml
        data = safefs.read_bytes(str(path))
        if data is None:
            return {}
        parsed = parse_config_bytes(data)
        if parsed is None:
            raise ConfigXmlError(f"{path} is not a valid OMERO config file (XML that omero can read): "
                                 f"restore it with `omerowizard rollback --omerodir {self.target.omerodir}`, or move "
                                 f"it away and run again to start from OMERO's defaults")
        return parsed

    def config_load(self, values: Mapping[str, str]) -> None:
        """Set many keys exactly: one ``omero config load -q`` process for every value its line
        format can carry (see ``properties_text``), one ``omero load`` of quoted ``config set``
        commands for the few it cannot (a value ending in a blank or a backslash). Both read their
        input on standard input: no temporary file that a kill could leave behind, with a password."""
        if not values:
            return
        self.log.secrets.update(v for k, v in values.items() if masking.config_secret(k))
        loadable = {k: v for k, v in values.items() if loads_exactly(v)}
        rest = {k: v for k, v in values.items() if k not in loadable}
        if loadable:
            text = properties_text(loadable)
            self.log.fed("omero config load -q (standard input)", text)
            self.run("config", "load", "-q", input=text)
        if rest:
            # a secret never goes on a command line (`ps` shows it to every user): `omero load` reads it
            self._run_commands([["config", "set", "--", k, v] for k, v in rest.items()],
                               stdin=any(masking.config_secret(k) for k in rest))
        self.protect_config()

    def config_unset(self, key: str) -> None:
        self.run("config", "set", key)
        self.protect_config()

    def config_unset_many(self, keys: list[str]) -> None:
        """Unset many keys in one process: ``omero load`` runs CLI commands read from its standard input.

        Key names are validated (catalogue keys, or extra_config keys matching omero.web.*), so a
        line can hold nothing but ``config set KEY``."""
        if not keys:
            return
        for key in keys:
            if not re.fullmatch(r"omero\.web\.[A-Za-z0-9_.]+", key):
                raise ValueError(f"refusing to unset {key!r}: not an omero.web.* key")
        if len(keys) == 1:
            return self.config_unset(keys[0])
        self._run_commands([["config", "set", k] for k in keys])
        self.protect_config()

    def _run_commands(self, commands: list[list[str]], stdin: bool = False) -> None:
        """Run several CLI commands in one ``omero load`` process (a 0.65 s start-up each saved),
        the commands fed on its standard input (one command runs by itself unless ``stdin``)."""
        if len(commands) == 1 and not stdin:
            self.run(*commands[0])
            return
        text = commands_text(commands)
        self.log.fed("omero load (standard input)", text)
        self.run("load", input=text)

    def protect_config(self) -> None:
        """config.xml can hold secrets (a Redis password): 0640, so no other local user reads it (omero
        creates it 0644). Changed through an O_NOFOLLOW descriptor, never through a path."""

        safefs.chmod_file(str(self.target.config_xml), CONFIG_MODE)

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
        result = self._as_user([str(self.target.python), "-m", "django", "collectstatic", "--noinput"], env,
                               on_line, 600)
        if result.returncode != 0:
            raise OmeroCommandError([str(self.target.python), "-m", "django", "collectstatic", "--noinput"],
                                    result.returncode, self.log.mask(result.output))
        return result

    def clear_session_store(self, on_line: LineSink | None = None) -> Result:
        """Remove every session from omero-web's session store (what its upgrade notes ask for when the
        session format changes): the files of the file store, or the cache that holds cache sessions.
        Runs as the user, with the settings of the installed omero-web."""
        env = {**self.env(), "DJANGO_SETTINGS_MODULE": "omeroweb.settings"}
        result = self._as_user([str(self.target.python), "-c", _CLEAR_SESSIONS], env, on_line, 600)
        if result.returncode != 0:
            raise OmeroCommandError([str(self.target.python), "-c", "(clear the session store)"], result.returncode,
                                    self.log.mask(result.output))
        return result

    def check_django(self, on_line: LineSink | None = None) -> Result:
        """Set Django up with omero-web's settings in this environment, as a new worker will (every app of
        omero.web.apps imported, the URLs loaded), as the user; raises when it fails."""
        env = {**self.env(), "DJANGO_SETTINGS_MODULE": "omeroweb.settings"}
        code = ("import django; django.setup(); from django.apps import apps; from django.urls import get_resolver; "
                "get_resolver().url_patterns; print(f'Django set up with {len(apps.get_app_configs())} apps')")
        result = self._as_user([str(self.target.python), "-c", code], env, on_line, 300)
        if result.returncode != 0:
            raise OmeroCommandError([str(self.target.python), "-c", "(set Django up)"], result.returncode,
                                    self.log.mask(result.output))
        return result

    def gunicorn_settings(self) -> dict:
        """The settings ``omero web start`` builds gunicorn's command line from, as this environment's omero-web reads
        them from config.xml now (its defaults included), and where its omeroweb package is."""
        env = {**self.env(), "DJANGO_SETTINGS_MODULE": "omeroweb.settings"}
        result = self._as_user([str(self.target.python), "-c", _GUNICORN_SETTINGS], env, None, 120)
        if result.returncode != 0:
            raise OmeroCommandError([str(self.target.python), "-c", "(read the gunicorn settings)"], result.returncode,
                                    self.log.mask(result.output))
        lines = [line for line in result.output.splitlines() if line.startswith("{")]
        if not lines:
            raise OmeroCommandError([str(self.target.python), "-c", "(read the gunicorn settings)"], 0,
                                    self.log.mask(result.output))
        return json.loads(lines[-1])

    def start_gunicorn(self, argv: list[str], script_name: str | None, cwd: str,
                       on_line: LineSink | None = None) -> Result:
        """Start a gunicorn master (``-D``: it returns once daemonised) as the user, with the environment
        ``omero web start`` gives it (OMERODIR, SCRIPT_NAME from the prefix)."""
        env = {**self.env(), **({"SCRIPT_NAME": script_name} if script_name else {})}
        self.calls += 1
        sink = (lambda line: on_line(self.log.mask(line))) if on_line else None
        return processes.run(argv, user=self._user(), env=env, on_line=sink, log=self.log, timeout=120, cwd=cwd,
                             track=self.deployment.children)

    def version(self) -> str:
        return self.run("version").output.strip().splitlines()[-1]


CONFIG_MODE = 0o640


# ---------------------------------------------------------------------------- the files omero reads
# `omero config load` is not a Java properties reader (omero-py, plugins/prefs.py, handle_line): each
# line is str.strip()ped, blank lines and lines starting with '#' are skipped, a line ending in '\\'
# is joined to the next one, and the rest is split at the first '='; there are no escapes at all
# (a '\\uXXXX' or '\\\\' is stored as written). The file is read as text in the CLI's locale
# (omero runs with LANG=C.UTF-8 here, so UTF-8). So a value is carried exactly unless it holds a
# line break or ends in white space or a backslash; `config set` (argv, no parsing) carries those.
PROPERTY_KEY = re.compile(r"[A-Za-z0-9._-]+")  # what omero's assert_valid_property_name accepts
LINE_BREAKS = "\n\r"  # what Python's text files split lines at (universal newlines)


def loads_exactly(value: str) -> bool:
    """Whether ``key=value`` read back by ``omero config load`` gives ``value`` exactly."""
    return not any(c in value for c in LINE_BREAKS) and value == value.rstrip() and not value.endswith("\\")


def properties_text(values: Mapping[str, str]) -> str:
    """The file ``omero config load -q`` reads to set exactly ``values``.

    Raises ValueError naming the key for a key omero would refuse or a value the format cannot
    carry (check with ``loads_exactly`` first; `config set` takes those)."""
    lines = []
    for key, value in values.items():
        if not PROPERTY_KEY.fullmatch(key):
            raise ValueError(f"{key!r} is not a key omero accepts (letters, digits, '.', '_', '-')")
        if not loads_exactly(value):
            raise ValueError(f"{key}: {value!r} cannot be written for `omero config load` "
                             "(a line break, or white space or a backslash at the end)")
        lines.append(f"{key}={value}\n")
    return "".join(lines)


def commands_text(commands: Iterable[list[str]]) -> str:
    """A file of CLI commands for ``omero load``, which splits each line with shlex (POSIX
    quoting: a single-quoted word is taken literally). Line breaks cannot be quoted."""
    out = []
    for argv in commands:
        if any(c in arg for arg in argv for c in LINE_BREAKS):
            raise ValueError(f"a line break cannot be passed to omero load: {argv[:4]!r}")
        out.append(" ".join(shlex.quote(arg) for arg in argv) + "\n")
    return "".join(out)


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

_GUNICORN_SETTINGS = """
import json, os
from django.conf import settings as s
import omeroweb

def get(name, default):
    try:
        return getattr(s, name)
    except Exception:
        return default

print(json.dumps({"server": get("APPLICATION_SERVER", ""), "host": s.APPLICATION_SERVER_HOST,
                  "port": int(s.APPLICATION_SERVER_PORT), "workers": int(s.WSGI_WORKERS),
                  "worker_class": get("WSGI_WORKER_CLASS", "sync"), "threads": int(get("WSGI_THREADS", 1)),
                  "connections": int(get("WSGI_WORKER_CONNECTIONS", 1000)), "timeout": int(s.WSGI_TIMEOUT),
                  "max_requests": int(get("APPLICATION_SERVER_MAX_REQUESTS", 0)), "wsgi_args": get("WSGI_ARGS", "") or "",
                  "script_name": get("FORCE_SCRIPT_NAME", None), "package": os.path.dirname(omeroweb.__file__)}))
"""

CONFIG_BOOKKEEPING = {"omero.config.profile", "omero.config.version"}


def parse_config_xml(path: Path) -> dict[str, str] | None:
    """The active profile of config.xml, read without following a link the OMERO.web user planted."""

    try:
        data = safefs.read_bytes(str(path))
    except OSError:
        return None
    return parse_config_bytes(data) if data is not None else None


def parse_config_bytes(data: bytes | None) -> dict[str, str] | None:

    if data is None:
        return None
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        return None
    if root.tag != "icegrid":
        return None
    sections = {p.get("id"): p for p in root.findall("properties")}
    active = sections.get("__ACTIVE__")
    if active is None:  # omero itself falls back to the "default" profile
        active = sections.get("default")
        if active is None:
            return {}
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


def user_group(user: str) -> str:
    return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name


def web_log_problem(t: OmeroTarget) -> str | None:
    """Why OMERO.web cannot write OMERODIR/var/log/OMEROweb.log, which its user owns, else None: a FIFO there
    blocks every OMERO.web process that opens it (the start, new workers, the restart of a restore) and a device
    or socket fails it. Looked at with lstat through safefs (a link is neither followed nor refused: OMERO.web
    follows it as its user, and root never reads through it)."""
    try:
        st = safefs.lstat(str(t.web_log))
    except (OSError, safefs.UnsafePath):
        return None  # e.g. var/log is a link: root does not look through it, OMERO.web does
    if st is None or stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
        return None
    return (f"{t.web_log} is not a regular file (a FIFO, a socket, a device or a directory): OMERO.web would hang "
            f"or fail writing its log there; remove it as {t.user} (OMERO.web creates the file again)")

