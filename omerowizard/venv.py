"""Inspecting and installing into the OMERO.web virtual environment."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from pathlib import Path

from omerowizard.errors import InstallError
from omerowizard.omero import CommandLog, LineSink, run_streamed

# What each optional feature needs in the OMERO.web environment (distribution names).
FEATURE_PACKAGES = {
    "redis": "django-redis",
    "memcached": "pymemcache",
    "cors": "django-cors-headers",
}

_LIST_SCRIPT = (
    "import json, importlib.metadata as m, sys;"
    "print(json.dumps({'python': '%d.%d' % sys.version_info[:2],"
    " 'dists': {d.metadata['Name'].lower().replace('_', '-'): d.version for d in m.distributions() if d.metadata['Name']}}))"
)


def normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def inspect(venv: Path) -> tuple[str, dict[str, str]] | None:
    """(python version, {distribution: version}) of the environment, or None if it is missing."""
    python = venv / "bin" / "python"
    if not python.exists():
        return None
    proc = subprocess.run([str(python), "-c", _LIST_SCRIPT], capture_output=True, text=True, cwd="/")
    if proc.returncode != 0:
        return None
    data = json.loads(proc.stdout)
    return data["python"], {normalise(k): v for k, v in data["dists"].items()}


def installed(venv: Path) -> dict[str, str]:
    found = inspect(venv)
    return found[1] if found else {}


def pip_install(venv: Path, requirements: Iterable[str], on_line: LineSink | None = None,
                log: CommandLog | None = None, extra: Iterable[str] = ()) -> None:
    reqs = list(requirements)
    if not reqs:
        return
    argv = [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
            "--no-input", *extra, *reqs]
    result = run_streamed(argv, on_line=on_line, log=log or CommandLog())
    if result.returncode != 0:
        tail = "\n".join(result.output.strip().splitlines()[-10:])
        raise InstallError(f"pip could not install {', '.join(reqs)} into {venv} (exit {result.returncode}):\n{tail}")
