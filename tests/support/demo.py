"""A demonstration ``Core`` over a fake machine: the real core, a made-up state.

The answers are fixed (no host name or distribution from this machine: the nginx file's path is
given), the machine is made up (an OMERO.web 5.33.2 with Django 5.2, installed or not, deployed
or not; no file and an empty crontab where nothing was deployed), and the plan is the real
``plan.make_plan`` of those answers over that state, so the review shows the real OMERO config
changes, the real rendered web-server file and the real clearsessions line. A deployed machine
is the empty one after the plan of its answers, so an unchanged rerun has nothing to change.

Apply changes the fake machine, never this one, and reports what the real apply reported: for
each step of the plan, the events a real run of that step emitted (``demo_run.json``, recorded
against the real OMERO.web by tests/e2e/test_demo_recording.py, which also checks that it is
still what apply reports). ``fail`` replays a real run that preflight refused.
Used by the Pilot and snapshot tests and by ``scripts/screenshots.py``; never by ``omerowizard``: it lives
with the tests, outside the package, so the wheel does not ship it (tests/e2e/test_wheel.py).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omerowizard.catalogue import answers as answers_mod
from omerowizard.catalogue.answers import Answers
from omerowizard.features.apps import packages as apps
from omerowizard.model import events as events_mod
from omerowizard.model.events import Emit, Event, Finished, StepDone, StepStarted
from omerowizard.model.health import Verdict
from omerowizard.model.host import FileFact, Host, frozen_map
from omerowizard.plan.plan import Plan
from omerowizard.plan.planner import make_plan
from omerowizard.state.probe import State
from omerowizard.system import crontab as cron
from omerowizard.system.omero import OmeroTarget
from omerowizard.ui import wizard
from omerowizard.ui.tui.core import Core

VENV = "/opt/omero/web/venv3"
OMERODIR = "/opt/omero/web/OMERO.web"
NGINX_FILE = "/srv/omero-web/nginx/omero-web.conf"  # given (no distribution detected), outside the system nginx:
# its plan does not depend on whether this machine's nginx runs
# as `omerowizard install-omero --with redis,cors,memcached` leaves it
PACKAGES = {"omero-web": "5.33.2", "omero-py": "5.23.0", "django": "5.2.8", "django-redis": "6.0.0",
            "django-cors-headers": "3.7.0", "pymemcache": "4.0.0"}
RECORDING = Path(__file__).with_name("demo_run.json")
# what pip's dry run chose for each web app next to omero-web 5.33.2 and Django 5.2 (issue 15's check)
APP_VERSIONS = {"omero-figure": "8.0.1", "omero-iviewer": "0.19.1", "omero-mapr": "0.5.3", "omero-parade": "0.2.4",
                "omero-fpbioimage": "0.4.1"}


def event_from_json(data: Mapping[str, Any]) -> Event:
    fields = dict(data)
    return getattr(events_mod, fields.pop("type"))(**fields)


def recorded() -> dict[str, list[Event]]:
    return {name: [event_from_json(e) for e in run] for name, run in json.loads(RECORDING.read_text()).items()}


def replay(plan: Plan, runs: Mapping[str, list[Event]], url: str) -> list[Event]:
    """The recorded events of each step of ``plan`` (the first run that has the step: everything
    from its StepStarted to the next step's, in the order apply reported it), after the recorded
    preflight, and the recorded end with this plan's address."""
    by_step: dict[str, list[Event]] = {}
    for run in runs.values():
        current: list[Event] | None = None
        for e in run:
            if isinstance(e, StepStarted):
                current = [] if e.step not in by_step else None
                if current is not None:
                    by_step[e.step] = current
            if isinstance(e, Finished):
                current = None
            if current is not None:
                current.append(e)
    steps = ["preflight", *plan.steps()]
    if plan.web and plan.answers.sessions.backend != "file":
        steps.append("check the session store")  # apply checks it after the start
    out: list[Event] = []
    for step in steps:
        if step not in by_step:
            raise LookupError(f"no recorded events for the step {step!r}: record them again "
                              "(OMEROWIZARD_RECORD=1 pytest tests/e2e/test_demo_recording.py)")
        for e in by_step[step]:
            if isinstance(e, StepDone) and e.step == "write OMERO config":  # apply's own count, for this plan
                e = StepDone(e.step, f"{len(plan.sets)} set, {len(plan.unsets)} unset")
            out.append(e)
    out.append(next(e for e in runs["redis_cors"] if isinstance(e, Finished)))  # what the real run said, as it said it
    return out


def first_time_answers() -> dict[str, Any]:
    flat = answers_mod.defaults().flat()
    flat["web_server.server_name"] = "omero.example.org"
    flat["web_server.config_path"] = NGINX_FILE
    flat["web_server.default_site"] = True  # not what this machine's stock site says: pictures are the same everywhere
    return flat


def reconfigure_answers() -> dict[str, Any]:
    flat = first_time_answers()
    flat.update({"sessions.backend": "redis", "sessions.location": "redis://127.0.0.1:6379/0",
                 "cors.mode": "origins", "cors.origins": ["https://hostname.example.com"],
                 "prefix": "/omero"})
    return flat


# the demonstration host: Debian with nginx and Apache installed, neither running, systemd not running
DEMO_HOST = Host(binaries=frozen_map({"nginx": "/usr/sbin/nginx", "apache2": "/usr/sbin/apache2",
                                      "apache2ctl": "/usr/sbin/apache2ctl", "a2enmod": "/usr/sbin/a2enmod"}))


@dataclass
class FakeMachine:
    """What the probe would find: OMERO config, packages, files, the user's crontab, a running OMERO.web."""

    config: dict[str, str] = field(default_factory=dict)
    packages: dict[str, str] = field(default_factory=lambda: dict(PACKAGES))
    files: dict[str, str] = field(default_factory=dict)  # the files the demonstrated runs wrote
    crontab: str = ""
    running: bool = False
    unrecorded: set[str] = field(default_factory=set)  # files that are there but no run of omerowizard wrote

    def state(self, a: Answers, installed: bool = True) -> State:
        target = OmeroTarget(a.omero.user, Path(a.omero.venv), Path(a.omero.omerodir))
        packages = dict(self.packages) if installed else {}
        # pip's dry run for the web apps to install, as the probe measures it (the versions of APP_VERSIONS)
        todo = apps.to_install(a, packages) if installed else []
        measured = apps.Measured(tuple(p.requirement for p in todo),
                                 {p.package: APP_VERSIONS[p.package] for p in todo if p.package in APP_VERSIONS}
                                 ) if todo else None
        return State(target=target, installed=installed, config=dict(self.config),
                     packages=packages, running_pid=4242 if self.running else None,
                     files=frozen_map({p: FileFact(content=c, sha256=sha256(c)) for p, c in self.files.items()}),
                     record=frozen_map({p: {"sha256": sha256(c)} for p, c in self.files.items()
                                        if p not in self.unrecorded}),
                     crontab=self.crontab, apps_not_enabled=apps.not_enabled(packages, self.config),
                     apps_measured=measured, host=DEMO_HOST)

    def probe(self, a: Answers, omero: Any = None) -> State:
        """In place of ``state.probe.probe``: what the probe would find on this machine (for tests that plan
        through the front ends' own ``wizard.make``)."""
        return self.state(a, True)

    def deploy(self, a: Answers) -> FakeMachine:
        """The machine after a run with the answers ``a``: an unchanged rerun has nothing to change."""
        self.take(make_plan(a, self.state(a, True)))
        return self

    def take(self, plan: Plan) -> None:
        """The machine after ``plan``: what apply would leave."""
        for c in plan.config:
            if c.new is None:
                self.config.pop(c.key, None)
            else:
                self.config[c.key] = c.new
        for p in plan.packages:
            name = re.split(r"[=<>!~ \[]", p.requirement)[0].lower()
            if p.action == "uninstall":
                self.packages.pop(name, None)
            else:
                self.packages[name] = p.version or "latest"
        for f in plan.files:
            if f.new is None:
                self.files.pop(f.path, None)
            else:
                self.files[f.path] = f.new
        for j in plan.jobs:
            omerodir = plan.answers.omero.omerodir
            kept = [line for line in self.crontab.splitlines() if line not in cron.managed_lines(self.crontab, omerodir)]
            self.crontab = "\n".join(kept + ([j.new] if j.new else [])) + "\n"
        if plan.web:
            self.running = True


@dataclass
class DemoDetected(wizard.Detected):
    deployed: bool = False

    @property
    def reconfigure(self) -> bool:
        return self.deployed


@dataclass
class Demo:
    """What the demonstration pretends: an installed OMERO.web or not, deployed with ``flat`` or not.

    ``fail`` makes the login-page check of the run fail (and the fake machine stays as it was)."""

    installed: bool = False
    deployed: bool = False
    nothing_to_change: bool = False  # kept for callers: a deployed machine already has nothing to change
    fail: bool = False
    flat: dict[str, Any] = field(default_factory=first_time_answers)
    saved: list[tuple[Answers, str]] = field(default_factory=list)
    installs: list[tuple[str, str, str]] = field(default_factory=list)
    machine: FakeMachine = field(default_factory=FakeMachine)
    others: tuple[str, ...] = ()  # the other deployments of the made-up host (the welcome step offers them)
    chosen: list[str] = field(default_factory=list)  # the deployments chosen on the welcome step
    health: Verdict | None = None  # what `omerowizard status` says of the deployed one (default: healthy)

    def __post_init__(self) -> None:
        if self.deployed:
            self.installed = True
            a = answers_mod.from_flat(wizard.applicable(self.flat))
            self.machine.take(make_plan(a, self.machine.state(a, True)))

    def core(self) -> Core:
        return Core(starting_answers=self.starting_answers, detect=self.detect, make=self.make, apply=self.apply,
                    save_answers_file=self.save_answers_file, install=self.install, cancel_install=self.cancel_install,
                    choose_deployment=self.choose_deployment)

    def choose_deployment(self, omerodir: str) -> None:
        """Another deployment of the made-up host: its answers are these with its OMERODIR."""
        self.chosen.append(omerodir)

    def starting_answers(self, path: str | None) -> tuple[dict[str, Any], str]:
        if path:
            return answers_mod.load_file(path).flat(), f"the answers file {path}"
        if self.chosen:
            return {**self.flat, "omero.omerodir": self.chosen[-1]}, f"saved answers of the deployment in {self.chosen[-1]}"
        return dict(self.flat), "saved answers" if self.deployed else "defaults"

    def detect(self, flat: Mapping[str, Any], source: str) -> wizard.Detected:
        return DemoDetected(omero_executable=f"{flat.get('omero.venv', VENV)}/bin/omero", installed=self.installed,
                            omero_web_version=PACKAGES["omero-web"] if self.installed else None,
                            omerodir=str(flat.get("omero.omerodir", OMERODIR)), omerodir_exists=self.deployed,
                            running=self.machine.running, saved_answers=self.deployed, source=source,
                            deployed=self.deployed,
                            deployments=(OMERODIR, *self.others) if self.deployed or self.others else (),
                            apps_not_enabled=apps.not_enabled(self.machine.packages, self.machine.config)
                            if self.installed else {},
                            health=(self.health or HEALTHY) if self.deployed else None)

    def make(self, flat: Mapping[str, Any]) -> tuple[Answers, Plan, None]:
        a = answers_mod.from_flat(flat)
        # planned as on the OMERO.web that `install-omero --with redis,cors,memcached` leaves (the
        # welcome may show it missing: the demonstration installs it from there)
        return a, make_plan(a, self.machine.state(a, True)), None

    def apply(self, plan: Plan, omero: Any, emit: Emit) -> bool:
        runs = recorded()
        if self.fail:
            for e in runs["refused"]:
                emit(e)
            return False
        url = "http://omero.example.org/" + ("" if plan.answers.prefix == "/" else plan.answers.prefix.lstrip("/") + "/")
        for e in replay(plan, runs, url):
            emit(e)
        self.machine.take(plan)
        return True

    def save_answers_file(self, a: Answers, path: str) -> Path:
        self.saved.append((a, path))
        return wizard.save_answers_file(a, path)

    def install(self, user: str, venv: str, omerodir: str, say) -> None:
        self.installs.append((user, venv, omerodir))
        for line in (f"  done: created system user {user}", f"  done: virtual environment {venv}",
                     "  done: zeroc-ice 3.6.5 from the cached wheel", "  done: omero-web 5.33.2",
                     f"  done: OMERODIR {omerodir}", "OMERO.web installed (omero-web 5.33.2, omero-py 5.23.0)."):
            say(line)
        self.installed = True

    def cancel_install(self) -> bool:
        return False


HEALTHY = Verdict(True, "healthy")
# a made-up degraded deployment (the screenshot of the welcome): what `omerowizard status` names
DEGRADED = Verdict(False, "degraded: 2 problems (drift.config, session-store)", (
    "config.xml differs from the saved answers in omero.web.session_cookie_age (changed by hand, e.g. "
    "`omero config set`)",
    "the session store, Redis at redis://127.0.0.1:6379/0 (omero.web.caches), cannot connect (Connection "
    "refused): nobody can log in or stay logged in"), f"omerowizard doctor --omerodir {OMERODIR}")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()

