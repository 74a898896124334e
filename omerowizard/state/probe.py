"""The probe: the only code that reads the machine for a plan. It returns a frozen, typed ``State``.

What it reads, without changing anything and, for the deployment itself, without starting a process:
the OMERO config from config.xml (read-only: ``omero config get`` would rewrite the file), the environment's
packages from its site-packages, whether OMERO.web runs from its pid file; then, for the answers, every file
the plan would write or remove (and its link), the record of this deployment's files, the other deployments'
records, the OMERO.web user's crontab, the host (distribution, IPv6, systemd, the web servers and whether they
run, Debian's stock default site), and pip's dry runs for an upgrade or the web apps (run as the
environment's owner). The planner reads the State and nothing else.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from omerowizard.features import upgrade, web_server
from omerowizard.features.apps import packages as apps
from omerowizard.features.apps.packages import not_enabled
from omerowizard.features.web_server import site as site_files
from omerowizard.model.errors import AnswersError, ApplyError, InstallError, Problem, WizardError
from omerowizard.model.host import FileFact, Front, Host, frozen_map
from omerowizard.system import crontab as cron
from omerowizard.system import distributions, locations, platforms, safefs
from omerowizard.system import webservers as servercheck
from omerowizard.system.deployments import Deployment, owner_of, sharing_venv
from omerowizard.system.omero import Omero, OmeroTarget

# the programs a plan may name (the web servers, their control programs, systemd's)
BINARIES = ("nginx", "apache2", "httpd", "apache2ctl", "apachectl", "systemctl", "a2enmod", "systemd-analyze")


@dataclass(frozen=True)
class State:
    """What is there now. Every field has the value of an empty, plain host by default, so a test names only
    the facts it is about (a fake of the machine, never of the plan)."""

    target: OmeroTarget
    installed: bool
    config: Mapping[str, str] = field(default_factory=frozen_map)
    packages: Mapping[str, str] = field(default_factory=frozen_map)
    running_pid: int | None = None
    development_running: bool = False  # what runs is Django's development server (it cannot reload)
    # web apps whose package is installed in the environment but whose Django app is not in omero.web.apps:
    # {catalogue name (figure, ...) or distribution name: installed version}; shown on the welcome step
    apps_not_enabled: Mapping[str, str] = field(default_factory=frozen_map)
    upgrade: upgrade.Measured | None = None  # pip's dry run for the omero-web release the answers want
    apps_measured: apps.Measured | None = None  # pip's dry run for the apps the answers want
    host: Host = field(default_factory=Host)
    files: Mapping[str, FileFact] = field(default_factory=frozen_map)  # every path the plan writes or compares (missing: no such file)
    record: Mapping[str, Mapping[str, Any]] = field(default_factory=frozen_map)  # the files this deployment's runs wrote (path -> sha256...)
    owners: Mapping[str, str] = field(default_factory=frozen_map)  # a path another deployment's runs wrote -> that deployment's OMERODIR
    sharing_venv: tuple[str, ...] = ()  # the other deployments of this host whose recorded environment is this one
    crontab: str | None = ""  # the OMERO.web user's crontab ("" none; None: this process may not read it)
    crontab_problem: str | None = None  # why the crontab could not be read
    skipped: tuple[str, ...] = ()  # "PATH: why": what the probe would not read (a link, a FIFO)
    # the running web server (system or private) that includes this deployment's site: the one a blue/green change
    # switches (None: none runs, or the site is not included by one)
    front: Front | None = None

    @property
    def running(self) -> bool:
        return self.running_pid is not None

    @property
    def omero_web_version(self) -> str | None:
        return self.packages.get("omero-web")

    @property
    def django_version(self) -> tuple[int, ...]:
        text = self.packages.get("django", "0")
        return tuple(int(p) for p in text.split(".")[:2] if p.isdigit())

    def file(self, path: str) -> FileFact:
        return self.files.get(path, FileFact())


# ---------------------------------------------------------------------------- the deployment
def running_pid(target: OmeroTarget) -> int | None:
    """PID of the running OMERO.web, if it is alive: gunicorn writes var/django.pid; Django's
    development server writes none, so apply records the one it starts in the deployment's state."""
    return _alive_pid(target.omerodir / "var" / "django.pid") or _alive_pid(Deployment(target.omerodir).dev_pidfile)


def _alive_pid(pidfile: Path) -> int | None:
    """The pid in a pid file, read without following a link planted in OMERODIR (a FIFO or a link to a
    root-only file there is no pid)."""
    try:
        pid = int((safefs.read_bytes(str(pidfile), limit=64) or b"").decode().strip())
    except (OSError, ValueError, WizardError):
        return None
    if pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def probe_deployment(omero: Omero) -> State:
    """The deployment alone: installed, its config, packages, and whether it runs (what the welcome step and
    `omerowizard answers` need; no answers yet)."""
    target = omero.target
    if not target.executable.exists():
        return State(target=target, installed=False)
    found = distributions.read(target.venv)
    pkgs = found.versions()
    config = omero.config_read()
    pid = running_pid(target)
    return State(target=target, installed=True, config=frozen_map(config), packages=frozen_map(pkgs),
                 running_pid=pid,
                 development_running=pid is not None and _alive_pid(target.omerodir / "var" / "django.pid") is None,
                 apps_not_enabled=frozen_map(not_enabled(pkgs, config)), skipped=tuple(found.skipped))


# ---------------------------------------------------------------------------- for a plan
def probe(a: Any, omero: Omero) -> State:
    """Everything a plan of the answers ``a`` needs."""
    state = probe_deployment(omero)
    host = probe_host(a, state)
    dep = Deployment(a.omero.omerodir)
    record = dep.record()
    paths, links = wanted_paths(a, host, state.omero_web_version)
    files = {p: read_file(p, a) for p in paths}
    for path, entry in record.items():
        if path not in files:
            files[path] = read_file(path, a)
    owners = {}
    if web_server.native(a):
        for path in [*paths, *links]:
            other = owner_of(path, dep)
            if other is not None:
                owners[path] = other.omerodir
    text, problem = read_crontab(a)
    all_links = {**host.links, **{link: safefs.readlink(link) for link in links}}
    for link in all_links:
        files.setdefault(link, FileFact(writable=writable(link)))
    state = replace(state, host=replace(host, links=frozen_map(all_links)), files=frozen_map(files),
                    record=frozen_map(record), owners=frozen_map(owners), crontab=text, crontab_problem=problem,
                    sharing_venv=tuple(sharing_venv(a.omero.venv, a.omero.omerodir)),
                    front=front_of(a, host, state))
    return measure(a, state, omero)


def measure(a: Any, state: State, omero: Omero) -> State:
    """pip's dry runs (nothing written; run as the environment's owner): the omero-web release the answers
    ask for, a bad answer when pip cannot install it (exit 2, nothing changed); the web apps to install."""
    if not state.installed:
        return state
    try:
        measured = upgrade.measure(a, omero.target.venv, state.packages, log=omero.log)
    except InstallError as exc:
        raise AnswersError([Problem("omero.web_version", f"{a.omero.web_version!r} cannot be installed: {exc}",
                                    value=a.omero.web_version,
                                    allowed="a release of omero-web on the package index that pip can install here")])
    apps_measured = apps.measure(a, omero.target.venv, state.packages, log=omero.log, unreadable=state.skipped) \
        if a.platform == "unix" else None
    return replace(state, upgrade=measured, apps_measured=apps_measured)


def front_of(a: Any, host: Host, state: State) -> Front | None:
    """The running nginx or Apache httpd whose configuration includes this deployment's site file."""
    kind = a.web_server.kind
    if a.platform != "unix" or kind not in {"nginx", "apache", "nginx-development"} or not web_server.native(a) \
            or not state.running:
        return None
    place = web_server.web_server_file(a, host.distribution, state.omero_web_version)
    if place is None:
        return None
    return servercheck.serving("apache" if kind == "apache" else "nginx", place.path, place.link)


def probe_host(a: Any, state: State) -> Host:
    dist = platforms.distribution()
    kinds = ("nginx", "apache")
    links: dict[str, str | None] = {}
    holders: dict[tuple[str, int], tuple[str, ...]] = {}
    ws = a.web_server
    if a.platform == "unix" and ws.kind in kinds and web_server.native(a):
        stock = platforms.stock_site(ws.kind, dist)
        if stock is not None:
            links[stock.link] = safefs.readlink(stock.link) if os.path.islink(stock.link) else None
        place = web_server.web_server_file(a, dist, state.omero_web_version)
        if place is not None and place.system:
            ports = {ws.port} | ({ws.https.port} if ws.https else set())
            own = place.link or place.path
            for port in ports:
                holders[(ws.kind, port)] = tuple(platforms.default_site_holders(ws.kind, port, own, dist))
    site_pid = str(PurePosixPath(a.omero.omerodir, "var", "nginx", "nginx.pid")) if a.platform == "unix" else None
    return Host(
        distribution=dist,
        ipv6=platforms.ipv6_available(),
        root=os.geteuid() == 0,
        systemd=Path("/run/systemd/system").exists(),
        binaries=frozen_map({n: p for n in BINARIES if (p := servercheck.which(n))}),
        servers_running=frozenset(k for k in kinds if servercheck.running(platforms.server_layout(k, dist).pidfiles)),
        development_nginx_running=bool(site_pid) and servercheck.running((site_pid,)),
        links=frozen_map(links),
        default_site_holders=frozen_map(holders),
    )


def wanted_paths(a: Any, host: Host, detected_version: str | None) -> tuple[list[str], list[str]]:
    """(the files, the links) a plan of these answers writes or compares."""
    try:
        wanted = site_files.wanted_files(a, host, detected_version)
    except site_files.NoTaskTrigger:  # refused while planning, with the answer named
        return [], []
    native = web_server.native(a)
    paths = [w.path if native else str(staging_path(w.path)) for w in wanted]
    links = [w.link for w in wanted if w.link and native]
    return paths, links


def read_file(path: str, a: Any) -> FileFact:
    """One file as the plan sees it: its text, or why it cannot be used; never through a planted link."""
    try:
        st = safefs.lstat(path)
        if st is not None and _is_dir(st.st_mode):
            return FileFact(problem=f"{path} is a directory: set web_server.config_path to a file path",
                            writable=writable(path))
        data = safefs.read_bytes(path)
    except (FileNotFoundError, NotADirectoryError):
        data = None
    except (OSError, WizardError) as exc:
        return FileFact(problem=str(exc), writable=writable(path))
    if data is None:
        return FileFact(writable=writable(path))
    text = _decode(data, "utf-16" if path.endswith(".xml") and a.platform == "windows" else "utf-8")
    return FileFact(content=text, writable=writable(path), sha256=hashlib.sha256(text.encode()).hexdigest())


def _is_dir(mode: int) -> bool:
    return (mode & 0o170000) == 0o040000


def _decode(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding).replace("\r\n", "\n") if encoding == "utf-16" else data.decode(encoding)
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace")


def writable(path: str) -> bool:
    """May this process write ``path`` (and its link)? Root may; others need the nearest existing directory."""
    if os.geteuid() == 0:
        return True
    p = Path(path)
    if p.exists():
        return os.access(p, os.W_OK) and os.access(p.parent, os.W_OK)
    parent = p.parent
    while not parent.exists():
        parent = parent.parent
    return os.access(parent, os.W_OK | os.X_OK)


def read_crontab(a: Any) -> tuple[str | None, str | None]:
    """The OMERO.web user's crontab ("" none; None when this process may not read it) and why not."""
    if a.platform != "unix":
        return "", None
    try:
        return cron.read(a.omero.user), None
    except ApplyError as exc:
        return None, str(exc)


def staging_dir() -> Path:
    return locations.state_dir() / "staging"


def staging_path(path: str) -> Path:
    """Where a file this process may not write (or one for another host) is staged for an administrator."""
    if path.startswith("/"):
        return staging_dir() / PurePosixPath(path).relative_to("/")
    win = PureWindowsPath(path)
    return staging_dir().joinpath(win.drive.rstrip(":"), *win.parts[1:])
