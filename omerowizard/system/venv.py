"""Installing into the OMERO.web virtual environment with pip, within root's boundary.

pip runs through ``processes`` with ``as_owner``: as root only in an environment root alone can change
(else as the environment's owner, the OMERO.web user for its own environment; or refused). When root runs
it, pip builds no sdist (``--only-binary :all:``: building one runs its setup.py) and reads no local file or
directory another user can write (a wheel, ``--find-links``). Packages from ``find_links`` are wheels only,
whoever runs pip. Names are compared PEP 503-normalised (``normalise``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

from packaging.utils import canonicalize_name

from omerowizard.model.errors import InstallError
from omerowizard.system import omero as omero_mod
from omerowizard.system import processes, safefs
from omerowizard.system.processes import LineSink

# What each optional feature needs in the OMERO.web environment (distribution names).
FEATURE_PACKAGES = {
    "redis": "django-redis",
    "memcached": "pymemcache",
    "cors": "django-cors-headers",
}
BINARY_ONLY = ("--only-binary", ":all:")
DRY_RUN_TIMEOUT = 600  # seconds: pip's dry run (a resolve against the index) ends with a message after that
ICE = "zeroc-ice"  # omero-py's Ice binding: a wheel built once per machine (install-omero keeps it in the wheel cache)


def normalise(name: str) -> str:
    """A distribution name as PEP 503 compares it (``omero._Figure`` is ``omero-figure``)."""
    return canonicalize_name(name)


def python_of(venv: Path) -> list[str]:
    return [str(venv / "bin" / "python"), "-m", "pip"]


def pip_user(venv: Path) -> str | None:
    """Who runs pip in ``venv``: None for this process (root in an environment only root can change), else the
    environment's owner. Raises InstallError when root may run it as nobody (naming the path and the fix)."""
    try:
        return processes.runs_as(python_of(venv))
    except processes.UntrustedProgram as exc:
        raise InstallError(str(exc)) from None


def source_problem(path: str) -> str | None:
    """Why root's pip must not read ``path`` (a wheel, a directory of wheels and every entry in it), or None."""
    why = processes.path_problem(path)
    if why or not os.path.isdir(path) or os.path.islink(path):
        return why
    for entry in sorted(os.listdir(path)):
        why = processes.path_problem(os.path.join(path, entry))
        if why:
            return why
    return None


def pip_args(venv: Path, args: Sequence[str], find_links: str | None = None, binary_only: bool = False) -> list[str]:
    """pip's arguments for ``args`` in ``venv``: with ``find_links`` (wheels only), and, when root runs pip, no
    sdist built and no local package or directory another user can write (raises InstallError naming it)."""
    root = os.geteuid() == 0 and pip_user(venv) is None
    extra: list[str] = []
    if find_links:
        extra += ["--find-links", find_links]
    if find_links or root or binary_only:
        extra += BINARY_ONLY
    if root:
        local = [a for a in [*args, *([find_links] if find_links else [])] if a.startswith("/")]
        for path in local:
            why = source_problem(path)
            if why:
                raise InstallError(f"{path} is not safe for root's pip: {why}. Make it root's and writable by nobody "
                                   f"else (chown -R root: {path}; chmod -R go-w {path})")
    return [*args[:1], *extra, *args[1:]]


def _pip_env(venv: Path) -> dict[str, str]:
    return {"PATH": f"{venv / 'bin'}:{processes.PLAIN_PATH}", "LANG": "C.UTF-8"}


def _tail(text: str, n: int = 10) -> str:
    return omero_mod.mask_secrets("\n".join(text.strip().splitlines()[-n:]))


def pip_install(venv: Path, requirements: Iterable[str], on_line: LineSink | None = None,
                log: omero_mod.CommandLog | None = None, extra: Iterable[str] = (), find_links: str | None = None) -> None:
    reqs = list(requirements)
    if not reqs:
        return
    args = pip_args(venv, ["install", "--disable-pip-version-check", "--no-input", *extra, *reqs], find_links)
    sink = (lambda line: on_line(omero_mod.mask_secrets(line))) if on_line else None
    result = processes.run([*python_of(venv), *args], as_owner=True, env=_pip_env(venv), on_line=sink,
                           log=log or omero_mod.CommandLog())
    if result.returncode != 0:
        raise InstallError(f"pip could not install {', '.join(reqs)} into {venv} (exit {result.returncode}):\n"
                           f"{_tail(result.output)}")


def dry_run(venv: Path, requirements: Iterable[str], log: omero_mod.CommandLog | None = None,
            extra: Iterable[str] = (), find_links: str | None = None) -> dict[str, str]:
    """What ``pip install REQUIREMENTS`` would install into the environment, as {distribution: version}:
    pip's dry-run report (nothing is written to the environment), within root's boundary as pip_install."""
    reqs = list(requirements)
    args = pip_args(venv, ["install", "--dry-run", "--report", "-", "--quiet", "--disable-pip-version-check",
                           "--no-input", *extra, *reqs], find_links)
    try:
        proc = processes.run([*python_of(venv), *args], as_owner=True, env=_pip_env(venv), separate_errors=True,
                             timeout=DRY_RUN_TIMEOUT)
    except processes.TimedOut as exc:  # (pip blocked on something it reads, or an index that does not answer)
        raise InstallError(f"pip cannot install {', '.join(reqs)} into {venv}: {exc}") from None
    if log:
        log.write(proc.argv, proc.output[-2000:] + proc.errors[-4000:], proc.returncode, 0.0)
    if proc.returncode != 0:
        lines = [ln for ln in proc.errors.strip().splitlines() if ln.strip()]
        raise InstallError(f"pip cannot install {', '.join(reqs)} into {venv}: " + " ".join(lines[-3:]))
    start = proc.output.find("{")
    report = json.loads(proc.output[start:]) if start >= 0 else {"install": []}
    return {normalise(item["metadata"]["name"]): item["metadata"]["version"] for item in report.get("install", [])}


def pip_uninstall(venv: Path, names: Iterable[str], on_line: LineSink | None = None,
                  log: omero_mod.CommandLog | None = None) -> None:
    """``pip uninstall -y NAMES`` in the environment, within root's boundary as pip_install."""
    names = list(names)
    if not names:
        return
    sink = (lambda line: on_line(omero_mod.mask_secrets(line))) if on_line else None
    result = processes.run([*python_of(venv), "uninstall", "--disable-pip-version-check", "--no-input", "-y", *names],
                           as_owner=True, env=_pip_env(venv), on_line=sink, log=log or omero_mod.CommandLog())
    if result.returncode != 0:
        raise InstallError(f"pip could not uninstall {', '.join(names)} from {venv} (exit {result.returncode}):\n"
                           f"{_tail(result.output)}")


def base_interpreter(venv: Path) -> str | None:
    """The interpreter an environment was made from (pyvenv.cfg's executable, else home/pythonX.Y), read
    through safefs."""
    try:
        cfg = (safefs.read_bytes(str(venv / "pyvenv.cfg"), limit=64 * 1024) or b"").decode("utf-8", "replace")
    except (OSError, safefs.UnsafePath):
        return None
    values = {k.strip(): v.strip() for k, _, v in (line.partition("=") for line in cfg.splitlines())}
    if values.get("executable", "").startswith("/"):
        return values["executable"]
    version = python_version(venv)
    if values.get("home", "").startswith("/") and version:
        return f"{values['home']}/python{version}"
    return None


_PYTHON_NAME = re.compile(r"python(\d)\.(\d+)$")


def python_version(venv: Path) -> str | None:
    """The environment's Python version ("3.11"), read without running its interpreter (root never runs the
    Python of an environment another user can change): pyvenv.cfg's version, else its lib/pythonX.Y, else the
    name of the interpreter its bin/python leads to. None when there is no bin/python."""
    if not os.path.lexists(venv / "bin" / "python"):
        return None
    try:
        cfg = (safefs.read_bytes(str(venv / "pyvenv.cfg"), limit=64 * 1024) or b"").decode("utf-8", "replace")
    except (OSError, safefs.UnsafePath):
        cfg = ""
    for line in cfg.splitlines():
        key, _, value = line.partition("=")
        m = re.fullmatch(r"(\d)\.(\d+)(\.\S*)?", value.strip())
        if key.strip() in {"version", "version_info"} and m:
            return f"{m.group(1)}.{m.group(2)}"
    try:
        with safefs.directory(str(venv / "lib")) as d:
            names = sorted(os.listdir(d))
    except (OSError, safefs.UnsafePath):
        names = []
    for name in names:
        m = _PYTHON_NAME.fullmatch(name)
        if m:
            return f"{m.group(1)}.{m.group(2)}"
    program = str(venv / "bin" / "python")
    for _ in range(4):
        resolved = os.path.realpath(program)
        m = _PYTHON_NAME.search(os.path.basename(resolved))
        if m:
            return f"{m.group(1)}.{m.group(2)}"
        chain = processes.interpreter(resolved)
        if not chain:
            break
        program = chain[-1] if "/" in chain[-1] else (shutil.which(chain[-1]) or chain[-1])
    return None



def create_beside(old: Path, new: Path, requirements: Sequence[str], find_links: str | None,
                  on_line: LineSink | None = None, log: omero_mod.CommandLog | None = None) -> None:
    """A new environment ``new`` beside ``old`` (the one OMERO.web runs from, left untouched): made from the same
    interpreter by the same owner, then ``requirements`` installed (``find_links``: the wheel cache that holds
    zeroc-ice). An environment already there is reused: pip brings it to the requirements."""
    base = base_interpreter(old)
    if base is None:
        raise InstallError(f"cannot tell the interpreter {old} was made from (its pyvenv.cfg)")
    owner = pip_user(old)  # None: root's own environment
    if not (new / "bin" / "python").exists():
        if owner is None:
            why = processes.path_problem(base) or processes.path_problem(new.parent)
            if why:
                raise InstallError(f"root does not make an environment with {base} in {new.parent}: {why}")
        result = processes.run([base, "-m", "venv", str(new)], user=owner, log=log or omero_mod.CommandLog(),
                               on_line=on_line)
        if result.returncode != 0:
            raise InstallError(f"cannot create the environment {new} (exit {result.returncode}):\n"
                               f"{_tail(result.output)}")
    pip_install(new, list(requirements), on_line=on_line, log=log, find_links=find_links)
