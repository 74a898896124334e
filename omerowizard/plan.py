"""Plan: a pure function of the answers and the measured state.

Each change says what it does and why. Equal answers and state give an empty plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from omerowizard import omeroconfig
from omerowizard.answers import Answers
from omerowizard.omero import mask_secrets
from omerowizard.probe import State
from omerowizard.venv import normalise


@dataclass(frozen=True)
class ConfigChange:
    key: str
    old: str | None  # None: not set
    new: str | None  # None: unset (back to OMERO's default)
    why: str

    @property
    def action(self) -> str:
        return "unset" if self.new is None else "set"

    def describe(self) -> str:
        from omerowizard.features import SECRET_KEYS

        def shown(value: str) -> str:
            return "****" if self.key in SECRET_KEYS else mask_secrets(value)

        old = shown(self.old) if self.old is not None else "(unset)"
        new = shown(self.new) if self.new is not None else "(unset: OMERO default)"
        return f"{self.key}: {old} -> {new}"


@dataclass(frozen=True)
class PackageChange:
    requirement: str
    why: str

    def describe(self) -> str:
        return f"pip install {self.requirement} ({self.why})"


@dataclass(frozen=True)
class FileChange:
    """Write (or remove, when ``new`` is None) one file, checked by ``check`` before it counts."""

    path: str
    old: str | None
    new: str | None
    why: str
    mode: int = 0o644
    link: str | None = None  # a symlink to create pointing at path (Debian sites-enabled)
    staged: bool = False  # written to the staging directory for an administrator to install
    encoding: str = "utf-8"
    check: str | None = None  # the server check that proves it: nginx | apache | nginx-development | systemd
    system: bool = False  # part of the system server's configuration: checked whole, reloaded when running
    commands: tuple[str, ...] = ()  # what an administrator runs after installing it (IIS, Task Scheduler)
    owner: str | None = None  # new directories and the file belong to this user (files inside OMERODIR)
    modules: tuple[str, ...] = ()  # Apache modules the file needs
    adopted: bool = False  # the file exists but no run of this deployment wrote it
    link_only: bool = False  # path is a link (a site enabled in sites-enabled, ``old`` its target): only the link
    #                          is removed, and the backup and undo put the same link back

    def describe(self) -> str:
        if self.link_only:
            return f"disable {self.path}: remove its link to {self.old}, the file stays ({self.why})"
        verb = "remove" if self.new is None else ("create" if self.old is None else "update")
        if self.new is not None and self.old == self.new:
            verb = "link"
        if self.adopted:
            return f"replace {self.path}, a file omerowizard did not write (kept in the backup) ({self.why})"
        staged = " [staged for an administrator]" if self.staged else ""
        return f"{verb} {self.path} ({self.why}){staged}"

    def diff(self) -> str:
        import difflib
        if self.link_only:
            return f"--- {self.path} (now: a link to {self.old})\n+++ {self.path} (planned: no link)\n"
        return "".join(difflib.unified_diff((self.old or "").splitlines(True), (self.new or "").splitlines(True),
                                            fromfile=f"{self.path} (now)", tofile=f"{self.path} (planned)"))


@dataclass(frozen=True)
class JobChange:
    """Install, replace or remove the managed scheduled job."""

    user: str
    old: str | None
    new: str | None
    why: str
    staged: bool = False  # the wizard cannot edit this crontab: an administrator adds the line

    def describe(self) -> str:
        if self.new is None:
            return f"remove the clearsessions job of {self.user} ({self.why})"
        return f"{'replace' if self.old else 'install'} the clearsessions job of {self.user}: {self.new} ({self.why})"


@dataclass(frozen=True)
class ServerChange:
    """Start the system web server (nginx or Apache), which does not run: the site is served only then."""

    kind: str  # nginx | apache
    argv: tuple[str, ...]
    why: str

    @property
    def label(self) -> str:
        return f"start {'nginx' if self.kind == 'nginx' else 'Apache httpd'}"

    def describe(self) -> str:
        return f"{self.label}: {' '.join(self.argv)} ({self.why})"


@dataclass(frozen=True)
class WebChange:
    action: str  # start | restart
    why: str

    def describe(self) -> str:
        return f"omero web {self.action} ({self.why})"


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

    @property
    def sets(self) -> dict[str, str]:
        return {c.key: c.new for c in self.config if c.new is not None}

    @property
    def unsets(self) -> list[str]:
        return [c.key for c in self.config if c.new is None]

    @property
    def changes_machine(self) -> bool:
        return bool(self.config or self.packages or self.files or self.jobs or self.server)

    @property
    def empty(self) -> bool:
        return not (self.changes_machine or self.web)

    def steps(self) -> list[str]:
        """The steps apply runs, in order, as short labels (front ends show them as a checklist)."""
        out = []
        if self.packages:
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
            out.append(f"omero web {self.web.action}")
            out.append("check the login page")
        from omerowizard import frontdoor
        if frontdoor.reachable(self):
            out.append(frontdoor.STEP)
        return out

    def lines(self) -> list[str]:
        """The plan as text, grouped by kind; secrets masked."""
        if self.empty:
            return ["Nothing to change: the deployment already matches the answers."]
        out: list[str] = []
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
        return out


def make_plan(answers: Answers, state: State, previous: Answers | None = None) -> Plan:
    plan = Plan(answers, state)
    if answers.platform == "windows":
        return _windows_plan(plan)
    wanted = omeroconfig.wanted_config(answers, state.config, state.django_version or (5, 2), previous)
    for key, new in wanted.values.items():
        old = state.config.get(key)
        if new is None and old is None:
            continue
        if new is not None and omeroconfig.same(key, old, new) and old is not None:
            continue
        if new is None and key in omeroconfig.DEFAULTS and omeroconfig.same(key, old, None):
            continue  # set explicitly to OMERO's default: same effect, leave it
        plan.config.append(ConfigChange(key, old, new, wanted.why[key]))
    plan.notes += wanted.notes
    plan.notes += list(answers.warnings)

    for dist, why in omeroconfig.packages(answers):
        if normalise(dist) not in state.packages:
            plan.packages.append(PackageChange(dist, why))

    from omerowizard import frontdoor, serverfiles  # the web-server files and scheduled jobs (issue 4)
    serverfiles.plan_files(plan)
    frontdoor.plan_server(plan)

    if answers.start:
        if not state.running:
            plan.web = WebChange("start", "OMERO.web is not running")
        elif plan.config or plan.packages:
            plan.web = WebChange("restart", "the configuration changed")
    elif state.running and (plan.config or plan.packages):
        plan.notes.append("start is false: the changes take effect at the next `omero web restart`.")
    return plan


def _windows_plan(plan: Plan) -> Plan:
    """Windows: the wizard renders the IIS files and the scheduled task (staged, with the commands
    to install them); the OMERO config and start belong to the OMERO.web host, so none are planned."""
    from omerowizard import serverfiles

    a = plan.answers
    plan.notes.append("Windows: only the IIS files and the scheduled task are produced here (staged, with the "
                      "commands to install them). OMERO.web 5.3 and later do not run on Windows: configure and start "
                      f"the OMERO.web application server at {a.application_server.host}:{a.application_server.port} "
                      "on its Unix host with omerowizard there.")
    plan.notes += list(a.warnings)
    serverfiles.plan_files(plan)
    return plan
