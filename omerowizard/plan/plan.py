"""Plan: what a run will change, and why; made by ``planner.make_plan`` from the answers and the measured state.

A plan is its changes (each behind the one protocol of model/change.py), the notes and refusals found while
planning, and the front door apply will request. Equal answers and state give an empty plan. Showing it
reads nothing: every front end iterates the changes' kinds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omerowizard.catalogue import FEATURES
from omerowizard.catalogue.answers import Answers
from omerowizard.features.upgrade import UpgradeChange
from omerowizard.model.change import Change, Kind, by_kind, shown
from omerowizard.plan.changes import config as config_kind
from omerowizard.plan.changes.config import ConfigChange
from omerowizard.plan.changes.files import FileChange
from omerowizard.plan.changes.jobs import JobChange
from omerowizard.plan.changes.packages import PackageChange, PackageRemoval
from omerowizard.plan.changes.server import ServerChange
from omerowizard.plan.changes.web import WebChange
from omerowizard.state.probe import State

STEP = "check through the web server"  # the apply step that requests the front door
VERIFY_AFTER = WebChange.kind.order  # the features check what they configured once OMERO.web runs with it


@dataclass
class Plan:
    answers: Answers
    state: State
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)  # what preflight refuses (found while planning)
    # what preflight would refuse, checked before the review (the front ends show it first and do not apply)
    preflight_failures: list[str] = field(default_factory=list)
    door: Door | None = None  # the front door apply requests after the change (None: cannot, see door_why)
    door_why: str = ""

    def add(self, *changes: Change | None) -> None:
        self.changes.extend(c for c in changes if c is not None)

    def of(self, *types: type) -> list[Any]:
        return [c for c in self.changes if isinstance(c, types)]

    def one(self, cls: type) -> Any:
        found = self.of(cls)
        return found[0] if found else None

    # typed views of the changes
    @property
    def config(self) -> list[ConfigChange]:
        return self.of(ConfigChange)

    @property
    def packages(self) -> list[PackageChange | PackageRemoval]:
        return self.of(PackageChange, PackageRemoval)

    @property
    def files(self) -> list[FileChange]:
        return self.of(FileChange)

    @property
    def jobs(self) -> list[JobChange]:
        return self.of(JobChange)

    @property
    def web(self) -> WebChange | None:
        return self.one(WebChange)

    @property
    def server(self) -> ServerChange | None:
        return self.one(ServerChange)

    @property
    def upgrade(self) -> UpgradeChange | None:
        return self.one(UpgradeChange)

    @property
    def sets(self) -> dict[str, str]:
        return config_kind.sets(self.config)

    @property
    def unsets(self) -> list[str]:
        return config_kind.unsets(self.config)

    @property
    def changes_machine(self) -> bool:
        return any(c.kind.counts for c in self.changes)

    @property
    def empty(self) -> bool:
        return not self.changes

    def kinds(self) -> list[tuple[Kind, list[Change]]]:
        return by_kind(self.changes)

    def verify_steps(self) -> list[str]:
        """The features' checks once OMERO.web runs with the changes (the web apps answer, the session store)."""
        return [s for f in FEATURES for s in f.verify_steps(self)] if self.web else []

    def steps(self) -> list[str]:
        """The steps apply runs, in order, as short labels (front ends show them as a checklist)."""
        out: list[str] = []
        verified = False
        for kind, changes in self.kinds():
            if kind.order > VERIFY_AFTER and not verified:
                out += self.verify_steps()
                verified = True
            out += kind.steps(changes)
        if not verified:
            out += self.verify_steps()
        if not self.empty and self.door is not None:
            out.append(STEP)
        return out

    def diffs(self) -> list[str]:
        """The differences of the files the plan changes, each a unified diff."""
        return [d for c in self.changes if (d := c.diff())]

    def groups(self) -> list[tuple[str, list[Change]]]:
        """(heading, changes) as a review shows them."""
        return shown(self.changes)

    def lines(self) -> list[str]:
        """The plan as text, grouped by kind; secrets masked."""
        if self.empty:
            return ["Nothing to change: the deployment already matches the answers."]
        out: list[str] = []
        for title, changes in self.groups():
            out.append(f"{title}:")
            for c in changes:
                out.append(f"  {c.describe()}")
                out += [f"    {d}" for d in c.details()]
        return out





@dataclass(frozen=True)
class Door:
    via: str  # nginx | Apache httpd | the standalone nginx
    scheme: str  # http | https
    port: int
    server_name: str
    login_path: str
    static_path: str

    @property
    def public_url(self) -> str:
        default = 443 if self.scheme == "https" else 80
        port = "" if self.port == default else f":{self.port}"
        return f"{self.scheme}://{self.server_name}{port}{self.login_path.rsplit('webclient/login/', 1)[0]}"

    def url(self, path: str) -> str:
        default = 443 if self.scheme == "https" else 80
        port = "" if self.port == default else f":{self.port}"
        return f"{self.scheme}://{self.server_name}{port}{path}"
