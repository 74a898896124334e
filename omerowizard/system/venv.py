"""Inspecting and installing into the OMERO.web virtual environment."""

from __future__ import annotations

import importlib.metadata
import json
import os
import pwd
import subprocess
from collections.abc import Iterable
from pathlib import Path

from omerowizard.model.errors import InstallError
from omerowizard.system.omero import CommandLog, LineSink, as_user_argv, run_streamed

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
    argv = _pip_argv(venv, ["install", "--disable-pip-version-check", "--no-input", *extra, *reqs])
    result = run_streamed(argv, on_line=on_line, log=log or CommandLog())
    if result.returncode != 0:
        tail = "\n".join(result.output.strip().splitlines()[-10:])
        raise InstallError(f"pip could not install {', '.join(reqs)} into {venv} (exit {result.returncode}):\n{tail}")


def owner(venv: Path) -> str | None:
    """The user who owns the environment's interpreter directory, when it is not the one running the wizard:
    root must not run code that another user can change, so pip runs as that user instead."""
    try:
        uid = (venv / "bin").stat().st_uid
    except OSError:
        return None
    if uid == os.geteuid():
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def _pip_argv(venv: Path, args: list[str]) -> list[str]:
    argv = [str(venv / "bin" / "python"), "-m", "pip", *args]
    user = owner(venv)
    if user is None or os.geteuid() != 0:
        return argv
    home = pwd.getpwnam(user).pw_dir
    return as_user_argv(user, argv, {"HOME": home, "PATH": f"{venv / 'bin'}:/usr/bin:/bin", "LANG": "C.UTF-8"})


def dry_run(venv: Path, requirements: Iterable[str], log: CommandLog | None = None,
            extra: Iterable[str] = ()) -> dict[str, str]:
    """What ``pip install REQUIREMENTS`` would install into the environment, as {distribution: version}:
    pip's dry-run report (nothing is written to the environment), run as the environment's owner."""
    reqs = list(requirements)
    argv = _pip_argv(venv, ["install", "--dry-run", "--report", "-", "--quiet", "--disable-pip-version-check",
                            "--no-input", *extra, *reqs])
    proc = subprocess.run(argv, capture_output=True, text=True, cwd="/", timeout=600)
    if log:
        log.write(argv, proc.stdout[-2000:] + proc.stderr[-4000:], proc.returncode, 0.0)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        raise InstallError(f"pip cannot install {', '.join(reqs)} into {venv}: " + " ".join(lines[-3:]))
    start = proc.stdout.find("{")
    report = json.loads(proc.stdout[start:]) if start >= 0 else {"install": []}
    return {normalise(item["metadata"]["name"]): item["metadata"]["version"] for item in report.get("install", [])}


def pip_uninstall(venv: Path, names: Iterable[str], on_line: LineSink | None = None,
                  log: CommandLog | None = None) -> None:
    """``pip uninstall -y NAMES`` in the environment, as its owner."""
    names = list(names)
    if not names:
        return
    argv = _pip_argv(venv, ["uninstall", "--disable-pip-version-check", "--no-input", "-y", *names])
    result = run_streamed(argv, on_line=on_line, log=log or CommandLog())
    if result.returncode != 0:
        tail = "\n".join(result.output.strip().splitlines()[-10:])
        raise InstallError(f"pip could not uninstall {', '.join(names)} from {venv} (exit {result.returncode}):\n{tail}")


def site_packages(venv: Path) -> list[Path]:
    return sorted(venv.glob("lib/python3*/site-packages"))


def packages(venv: Path) -> dict[str, str]:

    paths = [str(p) for p in site_packages(venv)]
    if not paths:
        return {}
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions(path=paths):
        name = dist.metadata["Name"]
        if name:
            found[normalise(name)] = dist.version
    return found
