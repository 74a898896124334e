"""Plan: what a run will change, and why; made by ``planner.make_plan`` from the answers and the measured state.

Each change says what it does and why. Equal answers and state give an empty plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from omerowizard.catalogue.answers import Answers
from omerowizard.features import apps
from omerowizard.features.upgrade import UpgradeChange
from omerowizard.plan.changes import STEP as FRONT_DOOR_STEP
from omerowizard.plan.changes import ConfigChange, Door, FileChange, JobChange, PackageChange, ServerChange, WebChange
from omerowizard.state.probe import State


@dataclass
class Plan:
    answers: Answers
    state: State
    config: list[ConfigChange] = field(default_factory=list)
    packages: list[PackageChange] = field(default_factory=list)
    files: list[FileChange] = field(default_factory=list)
    jobs: list[JobChange] = field(default_factory=list)
    web: WebChange | None = None
    server: ServerChange | None = None
    notes: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)  # what preflight refuses (found while planning)
    upgrade: UpgradeChange | None = None
    door: Door | None = None  # the front door apply requests after the change (None: cannot, see door_why)
    door_why: str = ""

    @property
    def sets(self) -> dict[str, str]:
        return {c.key: c.new for c in self.config if c.new is not None}

    @property
    def unsets(self) -> list[str]:
        return [c.key for c in self.config if c.new is None]

    @property
    def changes_machine(self) -> bool:
        return bool(self.config or self.packages or self.files or self.jobs or self.server or self.upgrade)

    @property
    def empty(self) -> bool:
        return not (self.changes_machine or self.web)

    def steps(self) -> list[str]:
        """The steps apply runs, in order, as short labels (front ends show them as a checklist)."""
        out = []
        if self.upgrade:
            out.append(f"{self.upgrade.verb} OMERO.web")
            if self.upgrade.clear_sessions:
                out.append("clear the session store")
        if any(p.action == "install" for p in self.packages):
            out.append("install packages")
        if self.config:
            out.append("write OMERO config")
        if self.files:
            out.append("write web-server files")
        if self.jobs:
            out.append("scheduled jobs")
        if self.server:
            out.append(self.server.label)
        if self.web:
            if self.web.collectstatic:
                out.append("collect static files")
            out.append(self.web.label)
            out.append("check the login page")
            if self.answers.platform == "unix" and self.answers.apps.enabled and (
                    self.packages or any(c.key in apps.LIST_KEYS or c.key == apps.MAPR_KEY for c in self.config)):
                out.append("check the web apps")
        if any(p.action == "uninstall" for p in self.packages):
            out.append("uninstall removed apps")
        if not self.empty and self.door is not None:
            out.append(FRONT_DOOR_STEP)
        return out

    def lines(self) -> list[str]:
        """The plan as text, grouped by kind; secrets masked."""
        if self.empty:
            return ["Nothing to change: the deployment already matches the answers."]
        out: list[str] = []
        if self.upgrade:
            out.append("OMERO.web version:")
            out += [f"  {line}" for line in self.upgrade.lines()]
        if self.config:
            out.append("OMERO config:")
            out += [f"  {c.action:5} {c.describe()}" for c in self.config]
        if self.packages:
            out.append("Packages in the OMERO.web environment:")
            out += [f"  {p.describe()}" for p in self.packages]
        if self.files:
            out.append("Files:")
            out += [f"  {f.describe()}" for f in self.files]
        if self.jobs:
            out.append("Scheduled jobs:")
            out += [f"  {j.describe()}" for j in self.jobs]
        if self.server:
            out.append("Web server:")
            out.append(f"  {self.server.describe()}")
        if self.web:
            out.append("OMERO.web:")
            out.append(f"  {self.web.describe()}")
            out += [f"    restart because {r}" for r in self.web.reasons]
        return out


