"""Python packages installed into (or uninstalled from) the OMERO.web environment with pip.

The features' packages go in one pip run, then each web app in its own (so a failure names the app). Before
any app is touched the whole environment is recorded in the run's backup, with what the run adds: a failure
(or `omerowizard rollback`) uninstalls what this run added and reinstalls what changed. A removed app's
package is uninstalled only after OMERO.web runs without it (old workers that had it loaded are gone).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from omerowizard.features.apps import packages as apps
from omerowizard.model.change import Kind, Run
from omerowizard.system.distributions import packages as installed
from omerowizard.system.venv import pip_install, pip_uninstall

INSTALL = "install packages"
UNINSTALL = "uninstall removed apps"
TITLE = "Packages in the OMERO.web environment"


def install(changes: Sequence[PackageChange], run: Run) -> None:
    plan = run.plan
    venv = run.omero.target.venv
    with run.step(INSTALL) as s:
        def say(line: str) -> None:
            run.say(INSTALL, line)

        pinned = apps.pins(plan.state.packages)
        links = apps.find_links(plan.answers)  # the sources of every pip run of this apply (and of its restore)
        recorded = any(p.app for p in plan.packages)
        if recorded:  # before any app is touched (the uninstalls too: their step comes later)
            run.backup.record_environment(dict(plan.state.packages), links)
            measured = plan.state.apps_measured
            run.backup.record_added({apps.distribution(p.requirement) for p in changes if p.app}
                                    | set(measured.install if measured is not None else ()))
            say(f"the {len(plan.state.packages)} packages of {venv} recorded in the backup")
        features = [p.requirement for p in changes if not p.app]
        done = []
        try:
            if features:
                pip_install(venv, [*features, *pinned], on_line=say, log=run.omero.log, find_links=links)
            for p in changes:
                if p.app:
                    say(f"web app {p.app}: pip install {p.requirement}")
                    pip_install(venv, [p.requirement, *pinned], on_line=say, log=run.omero.log, find_links=links)
                    done.append(f"{p.requirement} {p.version}".strip())
        finally:
            if recorded:
                run.backup.record_added(set(installed(venv)) - set(plan.state.packages))
        s.detail = ", ".join([*features, *done])


def uninstall(changes: Sequence[PackageRemoval], run: Run) -> None:
    removed = [p.requirement for p in changes]
    with run.step(UNINSTALL) as s:
        if not run.backup.manifest.environment:
            run.backup.record_environment(dict(run.plan.state.packages), apps.find_links(run.plan.answers))
        pip_uninstall(run.omero.target.venv, removed, log=run.omero.log,
                      on_line=lambda line: run.say(UNINSTALL, line))
        s.detail = ", ".join(removed)


INSTALL_KIND = Kind("packages", TITLE, order=20, shown=30, steps=lambda changes: [INSTALL], apply=install)
# after OMERO.web runs without the removed apps (and after the features' checks of it)
UNINSTALL_KIND = Kind("packages", TITLE, order=90, shown=31, steps=lambda changes: [UNINSTALL], apply=uninstall)


@dataclass(frozen=True)
class PackageChange:
    """pip install one requirement (a feature's package, or a web app's)."""

    requirement: str
    why: str
    version: str = ""  # the version pip's dry run would install
    app: str = ""  # the web app it belongs to (apps.enabled name or custom Django app name)
    kind: ClassVar[Kind] = INSTALL_KIND
    action: ClassVar[str] = "install"

    def title(self) -> str:
        return self.describe()

    def describe(self) -> str:
        return f"pip install {self.requirement} ({self.why})"

    def details(self) -> tuple[str, ...]:
        return ()

    def diff(self) -> str:
        return ""

    def values(self) -> None:
        return None

    def as_dict(self) -> dict[str, Any]:
        return {"requirement": self.requirement, "why": self.why}


@dataclass(frozen=True)
class PackageRemoval:
    """pip uninstall the package of a web app the answers removed (apps.uninstall_removed)."""

    requirement: str
    why: str
    version: str = ""  # the installed one
    app: str = ""
    kind: ClassVar[Kind] = UNINSTALL_KIND
    action: ClassVar[str] = "uninstall"

    def title(self) -> str:
        return self.describe()

    def describe(self) -> str:
        return f"pip uninstall {self.requirement} {self.version} ({self.why})"

    def details(self) -> tuple[str, ...]:
        return ()

    def diff(self) -> str:
        return ""

    def values(self) -> None:
        return None

    def as_dict(self) -> dict[str, Any]:
        return {"requirement": self.requirement, "why": self.why}
