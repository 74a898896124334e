"""Per-deployment state: a deployment is identified by its OMERODIR.

Everything omerowizard keeps about one deployment lives in one directory below the state
directory, never inside OMERODIR (the OMERO.web user owns that and could plant links there):

    <state>/deployments/<slug>/
        deployment.json   OMERODIR, user, venv (how to drive it)
        answers.yml       the last applied answers (0600)
        files.json        the record of the files this deployment's runs wrote (path -> sha256, link)
        commands.log      every command run for it, with output (secrets masked)
        lock              one run at a time (flock)
        children.json     the process group of a running omero child (a killed run's next run ends it)
        backups/<id>/     what each run replaced, with a manifest

The state directory and every directory here are 0700 and owned by the user running
omerowizard (root on production hosts). Per-user state of the first version (one answers file,
one record, one backup folder for all deployments) is moved here on first use.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from omerowizard.system import locations, procinfo


def normalise(path: str | os.PathLike[str]) -> str:
    """One spelling per directory: absolute, no trailing, double or leading-double slash, no '.'/'..',
    symbolic links resolved when the path exists (so /srv/omero and a link to it are one deployment)."""
    text = os.fspath(path)
    if not text:
        return text
    norm = os.path.normpath(text)
    if norm.startswith("//"):
        norm = "/" + norm.lstrip("/")
    if os.path.exists(norm):
        norm = os.path.realpath(norm)
    return norm


def slug(omerodir: str) -> str:
    """A directory name for one OMERODIR: readable, and unique (a hash tells /a_b from /a/b)."""
    norm = normalise(omerodir)
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", norm.strip("/"))[-60:] or "root"
    return f"{readable}-{hashlib.sha256(norm.encode()).hexdigest()[:10]}"


def root() -> Path:
    path = locations.state_dir() / "deployments"
    _private_dir(path)
    return path


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)


@dataclass(frozen=True)
class Identity:
    omerodir: str
    user: str
    venv: str


class Deployment:
    """The state directory of one deployment."""

    def __init__(self, omerodir: str | os.PathLike[str]):
        self.omerodir = normalise(omerodir)
        self.dir = root() / slug(self.omerodir)

    def ensure(self) -> "Deployment":
        migrate()
        _private_dir(self.dir)
        return self

    # -- files ------------------------------------------------------------------------------
    @property
    def answers(self) -> Path:
        return self.dir / "answers.yml"

    @property
    def record_path(self) -> Path:
        return self.dir / "files.json"

    @property
    def command_log(self) -> Path:
        return self.dir / "commands.log"

    @property
    def lock(self) -> Path:
        return self.dir / "lock"

    @property
    def children(self) -> Path:
        return self.dir / "children.json"

    @property
    def backups(self) -> Path:
        return self.dir / "backups"

    @property
    def dev_pidfile(self) -> Path:
        return self.dir / "development.pid"

    @property
    def dev_log(self) -> Path:
        return self.dir / "development-server.log"

    @property
    def environments(self) -> Path:
        """Which virtual environment OMERO.web runs from since a blue/green upgrade put a new one beside the one
        the answers name: {"active": path, "replaces": [the earlier ones]} (kept for a rollback)."""
        return self.dir / "environments.json"

    def active_venv(self, venv: str) -> str:
        """The environment OMERO.web runs from when the answers name ``venv``: ``venv`` itself, or the one an
        upgrade put beside it (or beside one that replaced it)."""
        try:
            data = json.loads(self.environments.read_text())
        except (OSError, ValueError):
            return venv
        active = data.get("active") if isinstance(data, dict) else None
        return active if isinstance(active, str) and venv in data.get("replaces", []) else venv

    def activate(self, venv: str, replaces: str) -> None:
        """After a blue/green upgrade: OMERO.web runs from ``venv``, which replaces ``replaces`` (and what that
        one replaced)."""
        try:
            data = json.loads(self.environments.read_text())
        except (OSError, ValueError):
            data = {}
        earlier = [v for v in data.get("replaces", []) if v != venv] if isinstance(data, dict) else []
        write_private(self.ensure().environments,
                      json.dumps({"active": venv, "replaces": list(dict.fromkeys([*earlier, replaces]))}, indent=1))

    def identity(self) -> Identity | None:
        try:
            data = json.loads((self.dir / "deployment.json").read_text())
            return Identity(data["omerodir"], data["user"], data["venv"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def remember(self, user: str, venv: str) -> None:
        self.ensure()
        write_private(self.dir / "deployment.json",
                      json.dumps(asdict(Identity(self.omerodir, user, venv)), indent=1) + "\n")

    # -- the record of written files ------------------------------------------------------------
    def record(self) -> dict[str, dict]:
        try:
            data = json.loads(self.record_path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def save_record(self, data: dict[str, dict]) -> None:
        self.ensure()
        write_private(self.record_path, json.dumps(data, indent=1, sort_keys=True))

    def __repr__(self) -> str:
        return f"Deployment({self.omerodir!r})"


def write_private(path: Path, text: str) -> None:
    """Write a file of omerowizard's own state atomically, readable by its owner only."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def all_deployments() -> list[Deployment]:
    """Every deployment this host's omerowizard state knows, newest activity first."""
    migrate()
    found = []
    for d in root().iterdir():
        if not d.is_dir():
            continue
        try:
            data = json.loads((d / "deployment.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("omerodir"), str):
            found.append((d.stat().st_mtime, Deployment(data["omerodir"])))
    return [dep for _, dep in sorted(found, key=lambda t: -t[0])]


def running_omerodirs() -> list[str]:
    """OMERODIRs of OMERO.web processes running on this host (gunicorn or Django's server started
    by `omero web start`), read from /proc: deployments made by hand or by another tool show up too."""
    found: set[str] = set()
    for _, _, env in procinfo.omero_web_processes():
        for item in env:
            if item.startswith(b"OMERODIR="):
                value = item[len(b"OMERODIR="):].decode("utf-8", "replace")
                if value.startswith("/"):
                    found.add(normalise(value))
    return sorted(found)


def known_omerodirs() -> list[str]:
    """What the welcome step offers: the deployments with a record here, then running ones without."""
    recorded = [d.omerodir for d in all_deployments()]
    return recorded + [o for o in running_omerodirs() if o not in recorded]


def sharing_venv(venv: str, omerodir: str) -> list[str]:
    """The other deployments of this host whose recorded virtual environment is ``venv``: what is installed there
    (an upgrade, a downgrade) changes their OMERO.web too."""
    mine, env = normalise(omerodir), normalise(venv)
    out = []
    for dep in all_deployments():
        ident = dep.identity()
        if ident is not None and dep.omerodir != mine and normalise(ident.venv) == env:
            out.append(dep.omerodir)
    return sorted(out)


def owner_of(path: str, mine: Deployment) -> Deployment | None:
    """The other deployment whose record holds ``path`` (None: nobody else wrote it)."""
    for dep in all_deployments():
        if dep.omerodir == mine.omerodir:
            continue
        if path in dep.record() or any(e.get("link") == path for e in dep.record().values()):
            return dep
    return None


# ---------------------------------------------------------------------------- migration
_MIGRATED = "migrated-to-deployments"


def migrate() -> None:
    """Move the first version's per-user state (one answers file, one record, one backup folder)
    into the deployment it belongs to. Runs once; later calls cost one stat."""
    state = locations.state_dir()
    marker = state / _MIGRATED
    if marker.exists():
        return
    base = state / "deployments"
    _private_dir(base)
    old_answers = locations.config_dir() / "answers.yml"
    old_record = state / "serverfiles.json"
    old_backups = state / "backups"
    omerodir = user = venv = None
    if old_answers.exists():
        omerodir, user, venv = _identity_of_answers(old_answers)
    if omerodir:
        dep = Deployment.__new__(Deployment)
        dep.omerodir, dep.dir = normalise(omerodir), base / slug(omerodir)
        _private_dir(dep.dir)
        write_private(dep.dir / "deployment.json",
                      json.dumps({"omerodir": dep.omerodir, "user": user, "venv": venv}, indent=1) + "\n")
        if not dep.answers.exists():
            os.replace(old_answers, dep.answers)
        if old_record.exists() and not dep.record_path.exists():
            os.replace(old_record, dep.record_path)
    if old_backups.is_dir():
        for b in sorted(old_backups.iterdir()):
            try:
                m = json.loads((b / "manifest.json").read_text())
            except (OSError, ValueError):
                continue
            if not isinstance(m, dict) or not isinstance(m.get("omerodir"), str):
                continue
            target = base / slug(m["omerodir"])
            _private_dir(target / "backups")
            if not (target / "deployment.json").exists():
                write_private(target / "deployment.json",
                              json.dumps({"omerodir": normalise(m["omerodir"]), "user": m.get("user"),
                                          "venv": m.get("venv")}, indent=1) + "\n")
            os.replace(b, target / "backups" / b.name)
    marker.write_text("per-user state moved to deployments/\n")


def _identity_of_answers(path: Path) -> tuple[str | None, str | None, str | None]:

    try:
        data = yaml.safe_load(path.read_text())
        omero = data.get("omero", {}) if isinstance(data, dict) else {}
        return omero.get("omerodir"), omero.get("user"), omero.get("venv")
    except (OSError, yaml.YAMLError, AttributeError):
        return None, None, None
