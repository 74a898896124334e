"""Day two: is a deployment healthy, and if not, why? (``omerowizard status`` and ``doctor``)

The checks read the machine (through ``omerowizard.system``: safefs below OMERODIR and in the environment, /proc
for the gunicorn master and its workers, loopback requests through the web server, PING of the session store) and
change nothing; no ``omero`` process runs, so ``status`` costs less than one ``omero web status``. Each is a small
module here (``server``: the processes; ``door``: the front door and what shadows it; ``drift``: config.xml and the
written files against the saved answers and the record; ``logs``; ``advisories``; ``disk``), and every feature adds
what only it knows through its ``health`` hook (sessions: its store and its clearsessions job; servers: the
OMERO.servers of server_list; apps: each app's import; https: the certificate and CSRF behind HTTPS), as it adds
its ``verify`` to apply.

``status`` is the quick look; ``doctor`` (``deep``) adds the diagnoses that cost more (importing every web app as
the OMERO.web user, the OMERO.servers, the logs, the security advisories, disk space, the sites that shadow ours).
A deployment is degraded when any finding is a problem; each problem names its fix.
"""

from __future__ import annotations

import datetime as _dt
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omerowizard.catalogue import FEATURES
from omerowizard.catalogue import answers as answers_mod
from omerowizard.features.apps.catalogue import CATALOGUE as APP_CATALOGUE
from omerowizard.model import health as h
from omerowizard.model.errors import AnswersError, WizardError
from omerowizard.model.health import PROBLEM, WARNING, Finding, HealthContext, Verdict
from omerowizard.state.health import advisories, disk, door, drift, logs, server
from omerowizard.system import backups, distributions, safefs
from omerowizard.system.deployments import Deployment
from omerowizard.system.omero import parse_config_bytes
from omerowizard.system.venv import normalise

SCHEMA_FILE = Path(__file__).with_name("report.schema.json")
SCHEMA_ID = "https://omerowizard.invalid/schemas/health-report-1.json"
HEALTHY, DEGRADED = "healthy", "degraded"


@dataclass
class DeploymentHealth:
    """The findings about one deployment."""

    omerodir: str
    user: str
    venv: str
    answers_file: str | None  # its saved answers (None: it has none; the defaults were used)
    versions: dict[str, Any] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.status == PROBLEM]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.status == WARNING]

    @property
    def verdict(self) -> str:
        return DEGRADED if self.problems else HEALTHY

    @property
    def reasons(self) -> list[str]:
        return [f.reason for f in self.problems]

    def headline(self) -> str:
        """One line: the verdict and, when degraded, what is wrong."""
        if not self.problems:
            note = f" ({len(self.warnings)} warning{'s' if len(self.warnings) != 1 else ''})" if self.warnings else ""
            return f"healthy{note}"
        checks = ", ".join(dict.fromkeys(f.check for f in self.problems))
        return f"degraded: {len(self.problems)} problem{'s' if len(self.problems) != 1 else ''} ({checks})"

    def verdict_of(self) -> Verdict:
        return Verdict(not self.problems, self.headline(), tuple(f.summary for f in self.problems),
                       f"omerowizard doctor --omerodir {self.omerodir}")

    def as_dict(self) -> dict[str, Any]:
        return {"omerodir": self.omerodir, "user": self.user, "venv": self.venv, "answers_file": self.answers_file,
                "verdict": self.verdict, "reasons": self.reasons, "versions": self.versions,
                "findings": [f.as_dict() for f in self.findings], "seconds": round(self.seconds, 3)}


@dataclass
class Report:
    command: str  # status | doctor
    deployments: list[DeploymentHealth]
    checked_at: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))

    @property
    def verdict(self) -> str:
        return DEGRADED if any(d.problems for d in self.deployments) else HEALTHY

    @property
    def exit_status(self) -> int:
        return 1 if self.verdict == DEGRADED else 0

    def as_dict(self) -> dict[str, Any]:
        return {"$schema": SCHEMA_ID, "command": self.command, "checked_at": self.checked_at, "verdict": self.verdict,
                "exit_status": self.exit_status, "deployments": [d.as_dict() for d in self.deployments]}


def schema_text() -> str:
    return SCHEMA_FILE.read_text(encoding="utf-8")


def answers_of(omerodir: str) -> tuple[Any, bool]:
    """(the answers that describe the deployment: its saved ones, else omerowizard's defaults; with the OMERODIR, user
    and environment its record holds; whether they are saved ones), as ``omerowizard answers`` starts from."""
    dep = Deployment(omerodir)
    saved = None
    if dep.answers.exists():
        try:
            saved = answers_mod.load_file(dep.answers)
        except AnswersError:
            saved = None
    nested = (saved or answers_mod.defaults()).to_nested()
    nested["omero"]["omerodir"] = dep.omerodir
    ident = dep.identity()
    if ident:
        nested["omero"]["user"], nested["omero"]["venv"] = ident.user, ident.venv
    return answers_mod.validate(nested, "<saved answers>"), saved is not None


def repair_command(answers_file: str | None, omerodir: str) -> str:
    if answers_file:
        return f"omerowizard apply {answers_file}"
    return f"omerowizard --omerodir {omerodir}"


def examine(a: Any, *, deep: bool = False, has_saved: bool = True) -> DeploymentHealth:
    """Every check of one deployment described by the answers ``a`` (its saved answers, or the defaults with its
    paths when it has none)."""
    start = time.monotonic()
    omerodir, user, venv = a.omero.omerodir, a.omero.user, a.omero.venv
    dep = Deployment(omerodir)
    answers_file = str(dep.answers) if has_saved else None
    report = DeploymentHealth(omerodir, user, venv, answers_file)
    if not (Path(venv) / "bin" / "omero").exists():
        report.findings.append(h.problem("installed", f"OMERO.web is not installed in {venv} (no bin/omero)",
                                         f"install it: `omerowizard install-omero --user {user} --venv {venv} "
                                         f"--omerodir {omerodir}`"))
        report.seconds = time.monotonic() - start
        return report
    installed = distributions.read(venv)
    packages = installed.versions()
    config, config_problem = read_config(omerodir)
    ctx = HealthContext(a, config, packages, user, venv, omerodir, deep=deep, has_saved=has_saved,
                        repair=repair_command(answers_file, omerodir))
    report.versions = versions(packages, config)
    found: list[Finding] = []
    if config_problem:
        found.append(h.problem("config", config_problem, f"restore it: `omerowizard rollback --omerodir {omerodir}`"))
    procs, processes = server.check(ctx)
    found += procs
    running = processes.master is not None or processes.development is not None
    found += door.check(ctx, running)
    if deep:
        found += door.diagnose(ctx)
    found.append(drift.config_drift(ctx, _django(packages)))
    found.append(drift.file_drift(ctx))
    for feature in FEATURES:
        found += feature.health(ctx)
    found.append(_backups(dep))
    if deep:
        found.append(advisories.check(ctx))
        found.append(logs.errors_since(ctx, processes.started))
        found.append(disk.check(ctx))
    report.findings = found
    report.seconds = time.monotonic() - start
    return report


def read_config(omerodir: str) -> tuple[dict[str, str], str | None]:
    path = f"{omerodir}/etc/grid/config.xml"
    try:
        data = safefs.read_bytes(path)
    except (OSError, WizardError) as exc:
        return {}, f"{path} cannot be read: {exc}"
    if data is None:
        return {}, None
    parsed = parse_config_bytes(data)
    if parsed is None:
        return {}, f"{path} is not a valid OMERO config file"
    return parsed, None


def _django(packages: dict[str, str]) -> tuple[int, ...]:
    text = packages.get("django", "5.2")
    return tuple(int(p) for p in text.split(".")[:2] if p.isdigit())


def versions(packages: dict[str, str], config: dict[str, str]) -> dict[str, Any]:
    """omero-web, Django, omero-py and the web apps of omero.web.apps, as installed."""
    by_app = {app.django_app: normalise(app.package) for app in APP_CATALOGUE}
    apps: dict[str, str | None] = {}
    for app in _apps(config):
        dist = by_app.get(app) or normalise(app)
        apps[app] = packages.get(dist) or packages.get(normalise(app.replace("_", "-")))
    return {"omero-web": packages.get("omero-web"), "django": packages.get("django"),
            "omero-py": packages.get("omero-py"), "apps": apps}


def _apps(config: dict[str, str]) -> list[str]:
    try:
        value = json.loads(config.get("omero.web.apps", "[]") or "[]")
    except ValueError:
        return []
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _backups(dep: Deployment) -> Finding:
    found = backups.all_backups(dep)
    if not found:
        return h.ok("backups", "no backup yet (each apply keeps one of what it replaces)", count=0)
    newest = found[0].manifest
    return h.ok("backups", f"{len(found)} backup{'s' if len(found) != 1 else ''}; the newest: {found[0].id} "
                           f"({newest.kind}, {newest.created}); `omerowizard rollback --list` shows them",
                count=len(found), newest=found[0].id)
