"""The apps' packages in the OMERO.web environment: what the answers want, what pip's dry run would install (run
as the environment's owner, after the trust check of apps.find_links), what a removed app leaves, what
requires what (read through safefs)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from omerowizard.features.apps.catalogue import BY_NAME, CATALOGUE, KEYS
from omerowizard.features.base import effective_json
from omerowizard.model.errors import InstallError
from omerowizard.system import distributions, safefs
from omerowizard.system import venv as venv_mod
from omerowizard.system.venv import normalise


# ---------------------------------------------------------------------------------------------- packages
@dataclass(frozen=True)
class Wanted:
    """One app's package as the answers want it."""

    name: str  # catalogue name, or the custom app's Django app name
    package: str  # distribution name (normalised)
    requirement: str  # what pip is given


def _split(req: str) -> tuple[str, str]:
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*)", req)
    return (m.group(1), m.group(2).strip()) if m else (req, "")


def distribution(requirement: str) -> str:
    """The distribution a requirement names, PEP 503-normalised (``omero._Figure>=8`` is ``omero-figure``)."""
    return venv_mod.normalise(_split(requirement)[0])


def wanted_packages(a: Any) -> list[Wanted]:

    if a is None or getattr(a, "platform", "unix") != "unix":
        return []
    out = []
    for name in a.apps.enabled:
        app = BY_NAME[name]
        spec = (a.apps.versions or {}).get(name, "")
        out.append(Wanted(name, normalise(app.package), app.package + spec))
    for rec in a.apps.custom:
        if rec.get("requirement") and rec.get("app"):
            dist, _ = _split(rec["requirement"])
            out.append(Wanted(rec["app"], normalise(dist), rec["requirement"].replace(" ", "")))
    return out


def satisfied(requirement: str, installed: str | None) -> bool | None:
    """Whether an installed version satisfies the requirement (None: cannot tell without pip)."""
    if installed is None:
        return False
    _, spec = _split(requirement)
    if not spec:
        return True
    try:
        return Version(installed) in SpecifierSet(spec, prereleases=True)
    except (InvalidSpecifier, InvalidVersion):
        return None


PINNED = ("omero-web", "omero-py", "django")  # kept at their installed versions while apps are installed


def pins(packages: Mapping[str, str]) -> list[str]:
    """Requirements that keep omero-web and its core at the installed versions: pip then chooses the newest
    release of each app that works with them, and never upgrades OMERO.web to install an app."""
    return [f"{n}=={packages[n]}" for n in PINNED if n in packages]


@dataclass(frozen=True)
class Measured:
    """pip's dry run for the apps to install: {distribution: version} it would install, or why it cannot."""

    requirements: tuple[str, ...]
    install: dict[str, str] = field(default_factory=dict)
    error: str | None = None


def to_install(a: Any, packages: Mapping[str, str]) -> list[Wanted]:
    return [p for p in wanted_packages(a) if satisfied(p.requirement, packages.get(p.package)) is not True]


def find_links(a: Any) -> str | None:
    """apps.find_links of the answers: the same sources for every pip run about the apps (the dry run, the
    install, an upgrade that reinstalls them, a rollback's reinstall). Wheels only (``venv.pip_args``)."""
    if a is None or getattr(a, "platform", "unix") != "unix":
        return None
    return a.apps.find_links or None


def sources_problem(link: str | None, venv: Any) -> str | None:
    """Why pip must not read packages from ``link`` for ``venv`` (before any pip runs, dry runs included):
    a local path that is not a directory, or, when root runs pip, a link, directory or package another user
    can write (what root's pip installs, root later runs). None when fine."""
    if not link or not link.startswith("/"):
        return None
    if not os.path.isdir(link):
        return f"apps.find_links {link} is not a directory"
    try:
        root = os.geteuid() == 0 and venv_mod.pip_user(Path(venv)) is None
    except InstallError as exc:
        return str(exc)
    why = venv_mod.source_problem(link) if root else None
    if why:
        return (f"apps.find_links {link} is not safe for root's pip: {why}. Make the directory and its wheels "
                "root's and not writable by others (chown -R root: and chmod 755/644)")
    return None


def measure(a: Any, venv: Any, packages: Mapping[str, str], log: Any = None,
            unreadable: Sequence[str] = ()) -> Measured | None:
    """pip's dry run for the apps the answers want and the environment lacks (I/O: runs while probing).
    Nothing is run when every app is installed at a version its requirement accepts. ``unreadable``: what the
    probe would not read in the environment ("PATH: why"); pip reads every installed package's metadata itself
    (a FIFO there would hold it until its time limit), so it is not started then."""

    todo = to_install(a, packages)
    if not todo:
        return None
    reqs = tuple(p.requirement for p in todo)
    why = sources_problem(find_links(a), venv)
    if why:  # refused before pip runs: a dry run builds what it cannot take as a wheel
        return Measured(reqs, error=why)
    if unreadable:
        return Measured(reqs, error=f"pip's dry run was not started: pip reads the metadata of every package in {venv}, "
                                    f"and there it would wait on what is not a regular file ({'; '.join(unreadable)}): "
                                    "remove it, as the environment's owner, and run again")
    try:
        found = venv_mod.dry_run(venv, [*reqs, *pins(packages)], log=log, find_links=find_links(a))
    except InstallError as exc:
        return Measured(reqs, error=str(exc))
    return Measured(reqs, found)


def required_by(venv: Any, package: str) -> list[str]:
    """The installed distributions that require ``package`` (read from their metadata in this process, through
    safefs: the environment may belong to the OMERO.web user)."""

    out = []
    for dist in distributions.read(venv).distributions:
        for req in dist.requires:
            if ";" in req and "extra ==" in req:
                continue
            if normalise(_split(req)[0]) == package:
                out.append(normalise(dist.name))
                break
    return sorted(set(out))


def distribution_of(venv: str | None, module: str) -> str:
    """The distribution that installs the top-level module ``module`` in ``venv`` (its top_level.txt or RECORD),
    else the module's name with '-' for '_' (what OME's apps use: omero_figure is omero-figure)."""

    guess = module.split(".")[0].replace("_", "-")
    if not venv:
        return guess
    top = module.split(".")[0]
    # the environment may belong to the OMERO.web user: never follow a link or block on a FIFO there
    for dist in distributions.read(venv).distributions:
        try:
            top_level = dist.text("top_level.txt")
            record = dist.text("RECORD") if top_level is None else None
        except (OSError, safefs.UnsafePath):
            continue
        names = top_level.split() if top_level is not None else \
            {line.split("/", 1)[0] for line in (record or "").splitlines() if "/" in line}
        if top in names:
            return dist.info.rsplit("/", 1)[-1].removesuffix(".dist-info").rsplit("-", 1)[0].replace("_", "-")
    return guess


def not_enabled(packages: Mapping[str, str], config: Mapping[str, str], sites=()) -> dict[str, str]:
    """Web apps installed in the environment whose Django app is not in omero.web.apps, by their catalogue name:
    {name: installed version}."""

    apps = effective_json(KEYS, config, "omero.web.apps") or []
    out: dict[str, str] = {}
    for app in CATALOGUE:
        version = packages.get(normalise(app.package))
        if version is not None and app.django_app not in apps:
            out[app.name] = version
    return out
