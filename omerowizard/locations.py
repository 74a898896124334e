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


def wheel_cache() -> Path:
    """Built wheels (zeroc-ice) are kept here so each machine builds them once."""
    path = Path(os.environ["OMEROWIZARD_WHEEL_CACHE"]) if os.environ.get("OMEROWIZARD_WHEEL_CACHE") else cache_dir() / "wheels"
    path.mkdir(parents=True, exist_ok=True)
    return path


def saved_answers() -> Path:
    return config_dir() / "answers.yml"


def command_log() -> Path:
    return log_dir() / "omero-commands.log"
