"""Apply: the only code that changes the machine.

Runs a plan's changes in order with the fewest processes (one ``omero config load`` for
every set), starts or restarts OMERO.web with its output streamed, checks the login
page, and reports each step as an event.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from omerowizard import locations
from omerowizard.errors import ApplyError, WizardError
from omerowizard.events import Emit, Finished, Output, StepDone, StepFailed, StepStarted
from omerowizard.omero import Omero, mask_secrets
from omerowizard.plan import Plan
from omerowizard.venv import pip_install


def login_url(plan: Plan) -> str:
    a = plan.answers
    host = a.application_server.host
    if host in {"0.0.0.0", "::"}:
        host = "127.0.0.1"
    prefix = "" if a.prefix == "/" else a.prefix
    return f"http://{host}:{a.application_server.port}{prefix}/webclient/login/"


def public_url(plan: Plan) -> str:
    a = plan.answers
    ws = a.web_server
    prefix = "/" if a.prefix == "/" else a.prefix + "/"
    if ws.kind == "development":
        return login_url(plan).rsplit("/webclient/login/", 1)[0] + "/"
    if ws.https:
        port = "" if ws.https.port == 443 else f":{ws.https.port}"
        return f"https://{ws.server_name}{port}{prefix}"
    port = "" if ws.port == 80 else f":{ws.port}"
    return f"http://{ws.server_name}{port}{prefix}"


def check_login_page(url: str, timeout: float = 60, proc: subprocess.Popen | None = None) -> tuple[bool, str]:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return True, "200"
                last = str(r.status)
        except urllib.error.HTTPError as e:
            last = f"HTTP {e.code}"
        except (urllib.error.URLError, OSError) as e:
            last = str(getattr(e, "reason", e))
        if proc is not None and proc.poll() is not None:
            return False, f"the server exited with status {proc.returncode}"
        time.sleep(0.5)
    return False, last


class Applier:
    def __init__(self, plan: Plan, omero: Omero, emit: Emit):
        self.plan = plan
        self.omero = omero
        self.emit = emit

    def step(self, name: str):
        return _Step(self, name)

    def run(self) -> bool:
        plan = self.plan
        if plan.empty:
            self.emit(Finished(True, "Nothing to change: the deployment already matches the answers."))
            return True
        try:
            if plan.packages:
                with self.step("install packages"):
                    pip_install(self.omero.target.venv, [p.requirement for p in plan.packages],
                                on_line=lambda line: self.emit(Output("install packages", line)), log=self.omero.log)
            if plan.config:
                with self.step("write OMERO config") as s:
                    self.write_config()
                    s.detail = f"{len(plan.sets)} set, {len(plan.unsets)} unset"
            if plan.files or plan.jobs:
                from omerowizard import serverfiles
                if plan.files:
                    with self.step("write web-server files"):
                        serverfiles.apply_files(plan, lambda line: self.emit(Output("write web-server files", line)))
                if plan.jobs:
                    with self.step("scheduled jobs"):
                        serverfiles.apply_jobs(plan, lambda line: self.emit(Output("scheduled jobs", line)))
            url = None
            if plan.web:
                self.start_web()
                url = public_url(plan)
        except WizardError as exc:
            self.emit(Finished(False, f"Failed: {exc}\nFull log of omero commands: {self.omero.log.path}"))
            return False
        save_answers(plan)
        where = f" OMERO.web answers at {url}" if url else ""
        self.emit(Finished(True, f"Done.{where}", url))
        return True

    def write_config(self) -> None:
        self.omero.config_load(self.plan.sets)
        for key in self.plan.unsets:
            self.omero.config_unset(key)

    def start_web(self) -> None:
        plan = self.plan
        action = plan.web.action  # type: ignore[union-attr]
        name = f"omero web {action}"
        log = self.omero.target.web_log
        offset = log.stat().st_size if log.exists() else 0
        development = plan.answers.web_server.kind == "development"
        with self.step(name):
            if development:
                self._start_development(name, action)
            else:
                self.omero.web(action, on_line=lambda line: self.emit(Output(name, line)))
        with self.step("check the login page") as s:
            url = login_url(plan)
            ok, why = check_login_page(url)
            self._tail_web_log(log, offset, name)
            if not ok:
                raise ApplyError(f"{url} did not answer 200 ({why}).\nLast lines of {log}:\n{tail(log)}")
            s.detail = f"{url} answers 200"

    def _start_development(self, name: str, action: str) -> None:
        """The development server runs in the foreground: start it detached and do not wait for it."""
        if action == "restart":
            self.omero.web("stop", on_line=lambda line: self.emit(Output(name, line)), check=False)
        argv = self.omero.argv("web", "start")
        logfile = self.omero.target.omerodir / "var" / "log" / "development-server.log"
        logfile.parent.mkdir(parents=True, exist_ok=True)
        out = open(logfile, "ab")
        self.omero.calls += 1
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd="/")
        out.close()
        self.emit(Output(name, f"development server started (pid {proc.pid}); its output goes to {logfile}"))

    def _tail_web_log(self, log: Path, offset: int, name: str) -> None:
        if not log.exists():
            return
        with open(log, "rb") as fh:
            fh.seek(offset)
            for raw in fh.read().decode("utf-8", "replace").splitlines()[-40:]:
                self.emit(Output(name, f"OMEROweb.log: {mask_secrets(raw)}"))


class _Step:
    def __init__(self, applier: Applier, name: str):
        self.applier, self.name, self.detail = applier, name, ""

    def __enter__(self) -> "_Step":
        self.applier.emit(StepStarted(self.name))
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None:
            self.applier.emit(StepDone(self.name, self.detail))
        elif isinstance(exc, WizardError):
            self.applier.emit(StepFailed(self.name, str(exc)))
        return False


def tail(path: Path, n: int = 15) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()[-n:]
    except OSError:
        return "(no log)"
    return mask_secrets("\n".join(lines))


def save_answers(plan: Plan) -> Path:
    path = locations.saved_answers()
    text = plan.answers.to_yaml("# omerowizard answers: the last applied deployment (`omerowizard apply` accepts this file)\n")
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)
    return path


def apply_plan(plan: Plan, omero: Omero, emit: Emit) -> bool:
    return Applier(plan, omero, emit).run()


