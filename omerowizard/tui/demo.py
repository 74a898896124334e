"""A demonstration ``Core`` that never touches the machine.

The answers are fixed (no host name from this machine), the state is made up (an OMERO.web
5.33.2 with Django 5.2 that is installed, or not), the plan comes from the real
``plan.make_plan`` with the web-server file and the job replaced by fixed ones (so the
pictures do not change with the templates), and apply only reports events. Used by the
snapshot tests and by ``scripts/screenshots.py``; never by ``omerowizard`` itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omerowizard import answers as answers_mod
from omerowizard import wizard
from omerowizard.answers import Answers
from omerowizard.events import Emit, Finished, Output, StepDone, StepFailed, StepStarted
from omerowizard.omero import OmeroTarget
from omerowizard.plan import FileChange, JobChange, Plan, ServerChange, make_plan
from omerowizard.probe import State
from omerowizard.tui.core import Core

VENV = "/opt/omero/web/venv3"
OMERODIR = "/opt/omero/web/OMERO.web"
NGINX_FILE = "/etc/nginx/sites-available/omero-web.conf"
NGINX_TEXT = """\
upstream omeroweb {
    server 127.0.0.1:4080 fail_timeout=0;
}
server {
    listen 80;
    server_name omero.example.org;
    client_max_body_size 0;
    location /static { alias /opt/omero/web/OMERO.web/var/static; }
    location / {
        proxy_pass http://omeroweb;
        proxy_set_header Host $http_host;
    }
}
"""
START_OUTPUT = [
    "Clearing expired sessions. This may take some time... [OK]",
    "Starting OMERO.web... [OK]",
]


def first_time_answers() -> dict[str, Any]:
    flat = answers_mod.defaults().flat()
    flat["web_server.server_name"] = "omero.example.org"
    flat["web_server.default_site"] = True  # not what this machine's stock site says: pictures are the same everywhere
    return flat


def reconfigure_answers() -> dict[str, Any]:
    flat = first_time_answers()
    flat.update({"sessions.backend": "redis", "sessions.location": "redis://127.0.0.1:6379/0",
                 "cors.mode": "origins", "cors.origins": ["https://hostname.example.com"],
                 "prefix": "/omero"})
    return flat


@dataclass
class DemoDetected(wizard.Detected):
    deployed: bool = False

    @property
    def reconfigure(self) -> bool:
        return self.deployed


@dataclass
class Demo:
    """What the demonstration pretends: an installed OMERO.web or not, a deployment or not."""

    installed: bool = False
    deployed: bool = False
    nothing_to_change: bool = False
    fail: bool = False
    flat: dict[str, Any] = field(default_factory=first_time_answers)
    saved: list[tuple[Answers, str]] = field(default_factory=list)
    installs: list[tuple[str, str, str]] = field(default_factory=list)

    def core(self) -> Core:
        return Core(starting_answers=self.starting_answers, detect=self.detect, make=self.make, apply=self.apply,
                    save_answers_file=self.save_answers_file, install=self.install)

    def starting_answers(self, path: str | None) -> tuple[dict[str, Any], str]:
        if path:
            return answers_mod.load_file(path).flat(), f"the answers file {path}"
        return dict(self.flat), "saved answers" if self.deployed else "defaults"

    def detect(self, flat: Mapping[str, Any], source: str) -> wizard.Detected:
        return DemoDetected(omero_executable=f"{flat.get('omero.venv', VENV)}/bin/omero", installed=self.installed,
                               omero_web_version="5.33.2" if self.installed else None,
                               omerodir=str(flat.get("omero.omerodir", OMERODIR)), omerodir_exists=self.deployed,
                               running=self.deployed, saved_answers=self.deployed, source=source,
                            deployed=self.deployed)

    def state(self, a: Answers) -> State:
        target = OmeroTarget(a.omero.user, Path(a.omero.venv), Path(a.omero.omerodir))
        return State(target=target, installed=True, packages={"omero-web": "5.33.2", "django": "5.2.8"},
                     running_pid=4242 if self.deployed else None)

    def make(self, flat: Mapping[str, Any]) -> tuple[Answers, Plan, None]:
        a = answers_mod.from_flat(flat)
        if self.nothing_to_change:
            return a, Plan(a, self.state(a)), None
        plan = make_plan(a, self.state(a))
        plan.files = [FileChange(NGINX_FILE, None, NGINX_TEXT, "the nginx site of OMERO.web")]
        # whatever this machine's nginx does: the pictures are the same everywhere
        plan.server = ServerChange("nginx", ("nginx",), f"nginx is not running; it serves {NGINX_FILE}")
        plan.jobs = ([JobChange(a.omero.user, None, "daily", "file sessions are never purged by OMERO.web")]
                     if a.sessions.backend == "file" else [])
        return a, plan, None

    def apply(self, plan: Plan, omero: Any, emit: Emit) -> bool:
        for step in plan.steps():
            emit(StepStarted(step))
            if step.startswith("omero web"):
                for line in START_OUTPUT:
                    emit(Output(step, line))
            if self.fail and step == "check the login page":
                emit(StepFailed(step, "http://127.0.0.1:4080/webclient/login/ did not answer 200 (HTTP 502)."))
                emit(Finished(False, "Failed: the login page did not answer. What was changed is restored.\n"
                                     "Full log of omero commands: /root/.local/state/omerowizard/log/omero-commands.log"))
                return False
            emit(StepDone(step, "4 set, 0 unset" if step == "write OMERO config" else ""))
        url = "http://omero.example.org/" + ("" if plan.answers.prefix == "/" else plan.answers.prefix.lstrip("/") + "/")
        emit(Finished(True, f"Done. OMERO.web answers at {url}\nChecked: through nginx, the login page "
                            f"{url}webclient/login/ and a static file answered 200.", url))
        return True

    def save_answers_file(self, a: Answers, path: str) -> Path:
        self.saved.append((a, path))
        return wizard.save_answers_file(a, path)

    def install(self, user: str, venv: str, omerodir: str, say) -> None:
        self.installs.append((user, venv, omerodir))
        for line in (f"  done: created system user {user}", f"  done: virtual environment {venv}",
                     "  done: zeroc-ice 3.6.5 from the cached wheel", "  done: omero-web 5.33.2",
                     f"  done: OMERODIR {omerodir}", "OMERO.web installed."):
            say(line)
        self.installed = True
