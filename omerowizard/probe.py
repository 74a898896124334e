"""What is there now, read without changing anything.

The OMERO config is read from config.xml (read-only: ``omero config get`` would rewrite
the file); the environment's packages are read from its site-packages in this process
(no extra interpreter start; through ``distributions``, which follows no link and waits for no
FIFO the environment's owner planted); whether OMERO.web runs comes from its pid file. Probing
starts no process at all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any
from pathlib import Path

from omerowizard import distributions
from omerowizard.omero import Omero, OmeroTarget


@dataclass
class State:
    target: OmeroTarget
    installed: bool
    config: dict[str, str] = field(default_factory=dict)
    packages: dict[str, str] = field(default_factory=dict)
    running_pid: int | None = None
    files: dict[str, str | None] = field(default_factory=dict)  # path -> current content (None: absent)
    crontab: str | None = None  # the OMERO.web user's crontab as it is (None: none, or not read)
    development_running: bool = False  # what runs is Django's development server (it cannot reload)
    upgrade: Any = None  # upgrade.Measured: pip's dry run for the omero-web release the answers want
    # web apps whose package is installed in the environment but whose Django app is not in omero.web.apps:
    # {catalogue name (figure, ...) or distribution name: installed version}; shown on the welcome step
    apps_not_enabled: dict[str, str] = field(default_factory=dict)
    apps_measured: Any = None  # features.apps.Measured: pip's dry run for the apps the answers want
    skipped: list[str] = field(default_factory=list)  # "PATH: why": what the probe would not read (a link, a FIFO)

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


def site_packages(venv: Path) -> list[Path]:
    return [Path(p) for p in distributions.site_packages(venv)]


def packages(venv: Path) -> dict[str, str]:
    return distributions.read(venv).versions()


def running_pid(target: OmeroTarget) -> int | None:
    """PID of the running OMERO.web, if it is alive: gunicorn writes var/django.pid; Django's
    development server writes none, so apply records the one it starts in the deployment's state."""
    from omerowizard.deployments import Deployment

    return _alive_pid(target.omerodir / "var" / "django.pid") or _alive_pid(Deployment(target.omerodir).dev_pidfile)


def _alive_pid(pidfile: Path) -> int | None:
    """The pid in a pid file, read without following a link planted in OMERODIR (a FIFO or a link to a
    root-only file there is no pid)."""
    from omerowizard import safefs
    from omerowizard.errors import WizardError

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


def probe(omero: Omero) -> State:
    target = omero.target
    installed = target.executable.exists()
    state = State(target=target, installed=installed)
    if not installed:
        return state
    found = distributions.read(target.venv)
    state.packages = found.versions()
    state.skipped += found.skipped
    state.config = omero.config_read()
    state.running_pid = running_pid(target)
    state.development_running = state.running and _alive_pid(target.omerodir / "var" / "django.pid") is None
    from omerowizard.features.apps import not_enabled

    state.apps_not_enabled = not_enabled(state.packages, state.config)
    return state
