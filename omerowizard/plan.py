"""Plan: a pure function of the answers and the measured state.

Each change says what it does and why. Equal answers and state give an empty plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from omerowizard import omeroconfig
from omerowizard.answers import Answers
from omerowizard.errors import printable
from omerowizard.masking import config_value
from omerowizard.probe import State
from omerowizard.upgrade import UpgradeChange, plan_upgrade
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

    @property
    def old_text(self) -> str:
        # printable(): the old value comes from config.xml, which the OMERO.web user can write
        return self._shown(self.old) if self.old is not None else self._unset()

    @property
    def new_text(self) -> str:
        return self._shown(self.new) if self.new is not None else self._unset()

    def _shown(self, value: str) -> str:
        return printable(config_value(self.key, value))

    def _unset(self) -> str:
        """An unset key, with the value OMERO.web then uses (``(unset: OMERO's default 5)``)."""
        from omerowizard.omeroconfig import DEFAULTS

        default = DEFAULTS.get(self.key)
        return f"(unset: OMERO's default {config_value(self.key, default)})" if default is not None else "(unset)"

    def describe(self) -> str:
        return f"{self.key}: {self.old_text} -> {self.new_text}"


@dataclass(frozen=True)
class PackageChange:
    requirement: str
    why: str
    action: str = "install"  # install | uninstall
    version: str = ""  # the version pip's dry run would install (an uninstall: the installed one)
    app: str = ""  # the web app it belongs to (apps.enabled name or custom Django app name)

    def describe(self) -> str:
        if self.action == "uninstall":
            return f"pip uninstall {self.requirement} {self.version} ({self.why})"
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


# How a change to each omero.web key reaches a running OMERO.web. gunicorn is started by `omero web start`
# with a command line built from the keys below (omero/plugins/web.py, _build_run_cmd) and SCRIPT_NAME set
# from the prefix: a change to any of them needs a restart. Every other key is read by omeroweb.settings
# when a worker imports Django, and gunicorn runs without --preload, so replacing the workers (new ones
# first, then the old ones finish their requests: gunicorn.reload) applies it without dropping a request.
# Unknown keys (extra_config) count as Django settings. One table, so the feature modules can take their
# rows later.
RESTART_KEYS: dict[str, str] = {
    "omero.web.application_server": "the kind of application server (gunicorn or Django's development server)",
    "omero.web.application_server.host": "gunicorn's --bind address",
    "omero.web.application_server.port": "gunicorn's --bind port",
    "omero.web.application_server.max_requests": "gunicorn's --max-requests",
    "omero.web.wsgi_workers": "gunicorn's --workers",
    "omero.web.wsgi_timeout": "gunicorn's --timeout",
    "omero.web.wsgi_worker_class": "gunicorn's --worker-class",
    "omero.web.wsgi_worker_connections": "gunicorn's --worker-connections",
    "omero.web.wsgi_threads": "gunicorn's --threads",
    "omero.web.wsgi_args": "extra gunicorn arguments",
    "omero.web.prefix": "the SCRIPT_NAME gunicorn is started with",
}
# Keys whose change needs the static files collected again before new workers serve pages.
STATIC_KEYS: dict[str, str] = {
    "omero.web.apps": "an added app brings its own static files",
}


def restart_reason(key: str) -> str | None:
    """Why a change to ``key`` needs a restart; None when a graceful reload applies it."""
    return RESTART_KEYS.get(key)


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
    action: str  # start | restart | reload
    why: str
    reasons: tuple[str, ...] = ()  # restart: each setting that needs it, and why
    collectstatic: bool = False  # reload: collect the static files first

    def describe(self) -> str:
        if self.action == "reload":
            static = "collect static files, then " if self.collectstatic else ""
            return f"{static}reload OMERO.web gracefully: new gunicorn workers replace the old ones ({self.why})"
        return f"omero web {self.action} ({self.why})"

    @property
    def label(self) -> str:
        """The name of the apply step that runs it."""
        return "reload OMERO.web" if self.action == "reload" else f"omero web {self.action}"


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
            from omerowizard.features import apps
            if self.answers.platform == "unix" and self.answers.apps.enabled and (
                    self.packages or any(c.key in apps.LIST_KEYS or c.key == apps.MAPR_KEY for c in self.config)):
                out.append("check the web apps")
        if any(p.action == "uninstall" for p in self.packages):
            out.append("uninstall removed apps")
        from omerowizard import frontdoor
        if frontdoor.reachable(self):
            out.append(frontdoor.STEP)
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
    plan.notes += [f"not read (root reads no link and waits for no FIFO there): {x}" for x in state.skipped]

    plan.upgrade = plan_upgrade(answers, state.packages, state.upgrade)
    for dist, why in omeroconfig.packages(answers):
        if normalise(dist) not in state.packages and not plan.upgrade:  # an upgrade installs them with omero-web
            plan.packages.append(PackageChange(dist, why))
    from omerowizard.features import apps  # the web apps' packages, with the versions pip would install
    apps.plan_packages(plan, previous)

    from omerowizard import frontdoor, serverfiles  # the web-server files and scheduled jobs (issue 4)
    serverfiles.plan_files(plan)
    frontdoor.plan_server(plan)

    if answers.start:
        if not state.running:
            plan.web = WebChange("start", "OMERO.web is not running")
        elif plan.upgrade:
            plan.web = WebChange("restart", f"new code: the {plan.upgrade.verb} of omero-web",
                                 (f"omero-web {plan.upgrade.old} -> {plan.upgrade.new}: an upgrade is never a mere "
                                  "reload",))
        elif plan.config or plan.packages:
            plan.web = web_change(plan, state)
    elif state.running and (plan.config or plan.packages or plan.upgrade):
        plan.notes.append("start is false: the changes take effect at the next `omero web restart`.")
    return plan


def web_change(plan: Plan, state: State) -> WebChange:
    """Restart or graceful reload of a running OMERO.web, for the planned config and packages."""
    reasons = tuple(f"{c.key} changed: {restart_reason(c.key)}" for c in plan.config if restart_reason(c.key))
    if reasons:
        return WebChange("restart", "gunicorn's own settings changed", reasons)
    if state.development_running or plan.answers.web_server.kind == "development":
        return WebChange("restart", "the configuration changed", ("Django's development server cannot reload",))
    static = [c.key for c in plan.config if c.key in STATIC_KEYS]
    collect = bool(static or plan.packages)
    return WebChange("reload", "only Django settings changed: new workers read them, the old ones finish "
                               "their requests", collectstatic=collect)


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
