"""Where omerowizard keeps its own files (platformdirs), overridable for tests.

``OMEROWIZARD_HOME`` puts every directory below one folder, so a test (or an
administrator trying things out) never touches the real user's directories.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "omerowizard"


def _home() -> Path | None:
    value = os.environ.get("OMEROWIZARD_HOME")
    return Path(value) if value else None


def _dir(kind: str) -> Path:
    home = _home()
    if home is not None:
        path = home / kind
    else:
        path = Path(getattr(platformdirs, f"user_{kind}_dir")(APP, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_dir() -> Path:
    return _dir("config")


def cache_dir() -> Path:
    return _dir("cache")


def log_dir() -> Path:
    return _dir("log")


def state_dir() -> Path:
    return _dir("state")


MACHINE_WHEELS = Path("/var/cache/omerowizard/wheels")


def wheel_cache_path() -> Path:
    """Where built wheels (zeroc-ice) are kept so each machine builds them once:
    ``OMEROWIZARD_WHEEL_CACHE`` if set; for root the machine-wide /var/cache/omerowizard/wheels;
    for any other user their own cache directory."""
    if os.environ.get("OMEROWIZARD_WHEEL_CACHE"):
        return Path(os.environ["OMEROWIZARD_WHEEL_CACHE"])
    if os.geteuid() == 0:
        return MACHINE_WHEELS
    return cache_dir() / "wheels"


def wheel_cache() -> Path:
    path = wheel_cache_path()
    path.mkdir(mode=0o755, parents=True, exist_ok=True)
    return path


def saved_answers() -> Path:
    return config_dir() / "answers.yml"


def command_log() -> Path:
    return log_dir() / "omero-commands.log"
