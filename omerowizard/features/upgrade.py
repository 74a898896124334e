"""Upgrading (or downgrading) omero-web in its virtual environment (issue 16).

``measure`` asks pip, without writing anything, what installing the wanted release would change
(it runs while probing, so the plan stays a pure function); ``plan_upgrade`` turns that into an
``UpgradeChange`` with the upgrade notes the wizard knows between the two versions. An upgrade
always installs, collects static files and restarts: new code is never a mere reload.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import ClassVar

from omerowizard.features.apps import packages as apps
from omerowizard.model.change import Kind, Run
from omerowizard.model.errors import InstallError
from omerowizard.system import distributions, locations
from omerowizard.system import venv as venv_mod
from omerowizard.system.deployments import Deployment
from omerowizard.system.omero import Omero
from omerowizard.system.venv import FEATURE_PACKAGES, normalise

# Upgrade notes of OMERO.web (its UPGRADING notes and release notes) that matter when deploying:
# (release, the session store must be cleared, the note).
NOTES: tuple[tuple[tuple[int, ...], bool, str], ...] = (
    ((5, 14, 0), False, "5.14 moved to Django 3.2: web apps (omero-figure, omero-iviewer, ...) must be versions "
                        "made for it"),
    ((5, 30, 0), True, "5.30 removed Pickle sessions: the session store must be cleared (everyone logs in again)"),
    ((5, 31, 0), True, "5.31 requires Django 5.2: the session store must be cleared (everyone logs in again)"),
)
REDIS_FROM = (5, 31, 0)  # with Django 5.2, omero-web's Redis sessions need django-redis >= 6
REDIS_REQUIREMENT = "django-redis>=6"
SHOWN = ("omero-web", "omero-py", "django")  # always named, changed or not (with the feature packages)


def version_tuple(text: str | None) -> tuple[int, ...]:
    out = []
    for part in (text or "").split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        if not digits:
            break
        out.append(int(digits))
        if digits != part:
            break
    return tuple(out)


def notes_between(old: str, new: str) -> list[tuple[bool, str]]:
    """The notes of every release crossed going from ``old`` to ``new`` (either direction)."""
    lo, hi = sorted((version_tuple(old), version_tuple(new)))
    return [(clear, text) for release, clear, text in NOTES if lo < release <= hi]


def requirements(wanted: str, backend: str, cors: bool) -> list[str]:
    """What pip installs for the wanted release and the features in use."""
    reqs = [f"omero-web=={wanted}"]
    if backend == "redis":
        reqs.append(REDIS_REQUIREMENT if version_tuple(wanted) >= REDIS_FROM else FEATURE_PACKAGES["redis"])
    elif backend == "memcached":
        reqs.append(FEATURE_PACKAGES["memcached"])
    if cors:
        reqs.append(FEATURE_PACKAGES["cors"])
    return reqs


@dataclass(frozen=True)
class Measured:
    """What pip's dry run said installing ``requirements`` would do."""

    wanted: str
    requirements: tuple[str, ...]
    install: dict[str, str] = field(default_factory=dict)  # distribution -> version pip would install


def _steps(changes: Sequence[UpgradeChange]) -> list[str]:
    out = []
    for u in changes:
        out.append(u.label)
        if u.clear_sessions:
            out.append(CLEAR)
    return out


def _apply(changes: Sequence[UpgradeChange], run: Run) -> None:
    """Install the wanted omero-web: beside the running one, in a new environment (blue/green: the running one is
    not touched, and the switch that follows starts OMERO.web from the new one), or in place (the previous
    versions are recorded in the backup first, so a failure or `omerowizard rollback` reinstalls them); clear the
    session store when the notes say so. The restart or switch that follows collects the static files."""
    for u in changes:
        name = u.label
        if u.beside:
            _install_beside(u, run)
        else:
            _install_in_place(u, run)
        if u.clear_sessions:
            with run.step(CLEAR) as s:
                result = run.omero.clear_session_store(on_line=lambda line: run.say(CLEAR, line))
                s.detail = (result.output.strip().splitlines() or [""])[-1]


def _install_beside(u: UpgradeChange, run: Run) -> None:
    """The new omero-web, its feature packages and web apps in a new environment beside the running one (zeroc-ice
    from the wheel cache, as install-omero put it there); then Django set up there with this config.xml, every
    app in omero.web.apps imported: what the new master will do, before anything is switched."""
    assert u.beside is not None
    name = u.label
    old, new = run.omero.target.venv, Path(u.beside)
    say = lambda line: run.say(name, line)  # noqa: E731
    with run.step(name) as s:
        ice = distributions.packages(old).get(venv_mod.ICE)
        say(f"a new environment {new} beside {old} (kept as it is, for a rollback)")
        venv_mod.create_beside(old, new, [f"{venv_mod.ICE}=={ice}"] if ice else [],
                               str(locations.wheel_cache_path()), on_line=say, log=run.omero.log)
        venv_mod.pip_install(new, list(u.requirements), on_line=say, log=run.omero.log,
                             find_links=apps.find_links(run.plan.answers))
        there = Omero(replace(run.omero.target, venv=new), log=run.omero.log)
        result = there.check_django(on_line=say)
        s.detail = f"omero-web {u.new} in {new}; {(result.output.strip().splitlines() or [''])[-1]}"


def _install_in_place(u: UpgradeChange, run: Run) -> None:
    name = u.label
    with run.step(name) as s:
        previous = {dist: old for dist, old, new in u.versions if old is not None and old != new}
        links = apps.find_links(run.plan.answers)
        run.backup.record_packages(previous, links)
        run.say(name, "previous versions recorded in the backup: "
                      + ", ".join(f"{d}=={v}" for d, v in sorted(previous.items())))
        venv_mod.pip_install(run.omero.target.venv, list(u.requirements), on_line=lambda line: run.say(name, line),
                             log=run.omero.log, find_links=links)
        s.detail = f"omero-web {u.old} -> {u.new}"


def _backup_paths(changes: Sequence[UpgradeChange], plan) -> list[str]:
    """An upgrade beside the running environment changes which one OMERO.web runs from: the record of that."""
    if any(u.beside for u in changes):
        return [str(Deployment(plan.answers.omero.omerodir).environments)]
    return []


CLEAR = "clear the session store"
KIND = Kind("upgrade", "OMERO.web version", order=10, shown=10, steps=_steps, apply=_apply,
            backup_paths=_backup_paths, single=True)


def beside_path(venv: str, version: str) -> str:
    """Where an upgrade to ``version`` puts the new environment: beside the one the answers name (an environment
    an earlier upgrade made is named after the first one: venv3-omero-web-5.33.2, not venv3-omero-web-5.31-...)."""
    p = PurePosixPath(venv)
    base = re.sub(r"-omero-web-[0-9][0-9A-Za-z.]*$", "", p.name)
    return str(p.parent / f"{base}-omero-web-{version}")


@dataclass(frozen=True)
class UpgradeChange:
    old: str
    new: str
    requirements: tuple[str, ...]
    versions: tuple[tuple[str, str | None, str], ...]  # (distribution, installed or None, after)
    notes: tuple[str, ...] = ()
    clear_sessions: bool = False
    beside: str | None = None  # blue/green: the new environment it installs into (the running one stays)
    kind: ClassVar[Kind] = KIND

    @property
    def label(self) -> str:
        return f"{self.verb} OMERO.web" + (" in a new environment" if self.beside else "")

    def title(self) -> str:
        return self.describe()

    def details(self) -> tuple[str, ...]:
        return tuple(line[2:] for line in self.lines()[1:])

    def diff(self) -> str:
        return ""

    def values(self) -> None:
        return None

    def as_dict(self) -> list[str]:
        return self.lines()

    @property
    def verb(self) -> str:
        return "downgrade" if version_tuple(self.new) < version_tuple(self.old) else "upgrade"

    def describe(self) -> str:
        return f"{self.verb} omero-web {self.old} -> {self.new}: pip install {' '.join(self.requirements)}"

    def lines(self) -> list[str]:
        out = [self.describe()]
        out += [f"    {name}: {old or '(not installed)'} -> {new}" for name, old, new in self.versions if old != new]
        same = [f"{name} {old}" for name, old, new in self.versions if old == new]
        if same:  # named once, so that what stays is known too, but not listed as a change
            out.append("    unchanged: " + ", ".join(same))
        out += [f"    note: {n}" for n in self.notes]
        if self.clear_sessions:
            out.append("    the session store is cleared after installing (everyone logs in again)")
        if self.beside:
            out.append(f"    into a new environment {self.beside} beside the running one, which is kept: OMERO.web "
                       "then switches to it without downtime; rollback switches back, without a reinstall")
        else:
            out.append("    then static files are collected and OMERO.web restarted; rollback reinstalls the "
                       "previous versions")
        return out


def wanted_change(answers, packages: dict[str, str]) -> str | None:
    """The release to install, when the answers ask for one that is not installed."""
    wanted = answers.omero.web_version
    if not wanted or answers.platform != "unix":
        return None
    installed = packages.get("omero-web")
    if installed is not None and version_tuple(installed) == version_tuple(wanted):
        return None
    return wanted


def measure(answers, venv, packages: dict[str, str], log=None) -> Measured | None:
    """pip's dry run for the wanted release (I/O: runs while probing)."""

    wanted = wanted_change(answers, packages)
    if wanted is None:
        return None
    reqs = requirements(wanted, answers.sessions.backend, answers.cors.mode != "off")

    reqs += [p.requirement for p in apps.wanted_packages(answers)]
    links = apps.find_links(answers)  # the same sources as the install
    why = apps.sources_problem(links, venv)
    if why:  # refused before pip runs
        raise InstallError(why)
    return Measured(wanted, tuple(reqs), venv_mod.dry_run(venv, reqs, log=log, find_links=links))


def plan_upgrade(answers, packages: dict[str, str], measured: Measured | None) -> UpgradeChange | None:
    wanted = wanted_change(answers, packages)
    if wanted is None or measured is None or measured.wanted != wanted:
        return None
    old = packages.get("omero-web") or "(not installed)"

    features = [normalise(re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0]) for r in measured.requirements]
    shown = list(dict.fromkeys([*SHOWN, *features]))  # always named, changed or not
    names = shown + sorted(n for n in measured.install if n not in shown)
    versions = tuple((n, packages.get(n), measured.install.get(n, packages.get(n) or "?")) for n in names
                     if n in measured.install or n in packages)
    crossed = notes_between(old, wanted) if old[0].isdigit() else []
    notes = [text for _, text in crossed]
    if answers.sessions.backend == "redis" and version_tuple(wanted) >= REDIS_FROM:
        notes.append(f"Redis sessions with Django 5.2 need {REDIS_REQUIREMENT} (the docs' older instructions "
                     "pin an older one)")
    return UpgradeChange(old, wanted, measured.requirements, versions, tuple(notes), any(c for c, _ in crossed))
