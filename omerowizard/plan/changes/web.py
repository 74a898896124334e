"""Starting, restarting or gracefully reloading OMERO.web after the other changes, then checking its login page.

A reload has the verified gunicorn master of this deployment replace its workers by new ones, which read the
new config.xml, without a moment with none booted (system/gunicorn.py); static files are collected first when
an app (or a package) came. A start or restart runs ``omero web`` as the OMERO.web user with its output
streamed; Django's development server is started detached. Then the login page must answer 200 on the
application server. A failure raises: apply restores config.xml and puts OMERO.web back as it was.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from omerowizard.catalogue import KEYS
from omerowizard.features.application_server import login_url
from omerowizard.model.change import Kind, Run
from omerowizard.model.errors import ApplyError
from omerowizard.model.secrets import mask_text
from omerowizard.plan.changes import bluegreen
from omerowizard.state.probe import running_pid
from omerowizard.system import gunicorn, safefs
from omerowizard.system.deployments import Deployment
from omerowizard.system.network import answers_200, check_login_page
from omerowizard.system.omero import Omero, web_log_problem

CHECK = "check the login page"
COLLECT = "collect static files"


def steps(changes: Sequence[WebChange]) -> list[str]:
    out = []
    for web in changes:
        if web.collectstatic:
            out.append(COLLECT)
        out += [web.label, CHECK]
    return out


def apply(changes: Sequence[WebChange], run: Run) -> None:
    for web in changes:
        problem = web_log_problem(run.omero.target)  # again: a FIFO may have appeared since preflight
        if problem:
            raise ApplyError(problem)
        if web.action == "reload":
            reload_web(web, run)
        elif web.action == "scale":
            scale_web(web, run)
        elif web.action == "switch":
            switch_web(web, run)
        else:
            start_web(web, run)


def begin(changes: Sequence[WebChange], run: Run) -> None:
    """A switch records where it switches, and the environment OMERO.web runs from, before any step: a restore
    (or the repair of a killed run) then converges back to the master that served, without a restart."""
    for web in changes:
        if web.route is not None:
            bluegreen.record(run.backup, web.route, str(run.omero.target.venv))


def backup_paths(changes: Sequence[WebChange], plan: Any) -> list[str]:
    """A switch rewrites the site's upstream: the backup keeps the site as it was."""
    return [web.route.site for web in changes if web.route is not None]


KIND = Kind("web", "OMERO.web", order=70, shown=70, steps=steps, apply=apply, backup_paths=backup_paths,
            begin=begin, single=True, counts=False)


def start_web(web: WebChange, run: Run) -> None:
    plan = run.plan
    name = web.label
    t = run.omero.target
    log = t.web_log
    offset = safefs.size(str(log))
    dev_log = None
    with run.step(name):
        if plan.answers.web_server.kind == "development":
            dev_log = start_development(run.omero, web.action, lambda line: run.say(name, line))
        else:
            # a restart keeps OMERO.web down from its stop to gunicorn's start: skip the session clean-up
            run.omero.web(web.action, on_line=lambda line: run.say(name, line), keep_sessions=web.action == "restart")
    with run.step(CHECK) as s:
        url = login_url(plan.answers)
        ok, why = check_login_page(url)
        tail_web_log(log, offset, lambda line: run.say(name, line))
        if not ok:
            logs = [log] + ([dev_log] if dev_log else [])
            shown = "\n".join(f"Last lines of {p}:\n{tail(p)}" for p in logs)
            raise ApplyError(f"{url} did not answer 200 ({why}).\n{shown}")
        s.detail = f"{url} answers 200"
        run.memo["login checked"] = url
        run.checked.append(f"the login page {url} answered 200 on the application server")


def reload_web(web: WebChange, run: Run) -> None:
    """Graceful reload: collect static files if needed, then have the verified gunicorn master of this
    deployment replace its workers by new ones (which read the new config.xml) without a moment
    with none booted, and check the login page. New workers that do not boot raise, so apply
    restores config.xml and restarts OMERO.web with it, as after a failed start."""
    t = run.omero.target
    if web.collectstatic:
        with run.step(COLLECT) as s:
            result = run.omero.collectstatic(on_line=lambda line: run.say(COLLECT, line))
            s.detail = (result.output.strip().splitlines() or [""])[-1]
    log = t.web_log
    offset = safefs.size(str(log))
    url = login_url(run.plan.answers)
    name = web.label
    with run.step(name) as s:
        master = gunicorn.find_master(t.omerodir, t.user)
        try:
            run.say(name, f"gunicorn master {master.pid} verified ({t.user}, OMERODIR={t.omerodir}): replacing its "
                          "workers")
            done = gunicorn.reload(master, check=lambda: answers_200(url), on_line=lambda line: run.say(name, line),
                                   wanted=web.workers)
        except gunicorn.ReloadError as exc:
            tail_web_log(log, offset, lambda line: run.say(name, line))
            raise ApplyError(f"{exc}\nLast lines of {log}:\n{tail(log)}") from None
        finally:
            master.close()
        s.detail = f"{len(done.new)} new workers in {done.seconds:.1f}s; the old ones finished their requests"
    with run.step(CHECK) as s:
        ok, why = check_login_page(url)
        if not ok:
            raise ApplyError(f"{url} did not answer 200 after the reload ({why}).\nLast lines of {log}:\n{tail(log)}")
        s.detail = f"{url} answers 200"
        run.memo["login checked"] = url
        run.checked.append(f"the login page {url} answered 200 on the application server")


def collect(web: WebChange, run: Run, omero: Omero | None = None) -> None:
    if web.collectstatic:
        with run.step(COLLECT) as s:
            result = (omero or run.omero).collectstatic(on_line=lambda line: run.say(COLLECT, line))
            s.detail = (result.output.strip().splitlines() or [""])[-1]


def scale_web(web: WebChange, run: Run) -> None:
    """Only the number of workers changed: the running master gets more (SIGTTIN, each new one waited for until
    it has booted) or fewer (SIGTTOU, each finishes its request); config.xml already says the new number."""
    t = run.omero.target
    url = login_url(run.plan.answers)
    name = web.label
    assert web.workers is not None
    with run.step(name) as s:
        master = gunicorn.find_master(t.omerodir, t.user)
        try:
            before = len(gunicorn.workers(master.pid))
            done = gunicorn.scale(master, web.workers, check=lambda: answers_200(url),
                                  on_line=lambda line: run.say(name, line))
        except gunicorn.ReloadError as exc:
            raise ApplyError(f"{exc}\nLast lines of {t.web_log}:\n{tail(t.web_log)}") from None
        finally:
            master.close()
        s.detail = f"{before} -> {len(done.new)} workers in {done.seconds:.1f}s, none restarted"
    with run.step(CHECK) as s:
        ok, why = check_login_page(url)
        if not ok:
            raise ApplyError(f"{url} did not answer 200 after the change of workers ({why})")
        s.detail = f"{url} answers 200"


def switch_web(web: WebChange, run: Run) -> None:
    """Blue/green (plan/changes/bluegreen.py): a new master beside the running one, the web server switched to
    it once it answers, the old one stopped after its requests."""
    assert web.route is not None  # recorded in the backup by ``begin``
    omero = run.omero
    if web.venv is not None:  # an upgrade: the new master runs from the new environment, collects from there
        omero = Omero(replace(run.omero.target, venv=Path(web.venv)), log=run.omero.log)
    collect(web, run, omero)
    name = web.label
    door = run.plan.door
    with run.step(name) as s:
        pid = bluegreen.converge(omero, web.route, lambda line: run.say(name, line),
                                 after_route=(lambda: [run.say(name, line) for line in bluegreen.check_door(door)])
                                 if door is not None else None)
        keep_record(omero, web.route.site)
        if web.venv is not None:
            omero.deployment.activate(web.venv, replaces=str(run.omero.target.venv))
            run.say(name, f"OMERO.web runs from {web.venv}; {run.omero.target.venv} is kept for a rollback")
        s.detail = f"the new master {pid} serves; the old one finished its requests and stopped"
    url = login_url(run.plan.answers)
    with run.step(CHECK) as s:
        ok, why = check_login_page(url)
        if not ok:
            raise ApplyError(f"{url} did not answer 200 after the switch ({why})")
        s.detail = f"{url} answers 200"
        run.memo["login checked"] = url
        run.checked.append(f"the login page {url} answered 200 on the new application server")


def keep_record(omero: Omero, site: str) -> None:
    """The record of written files holds the site as the switch left it (the planned file, its final upstream)."""
    dep = omero.deployment
    data = dep.record()
    text = safefs.read_text(site)
    if site in data and text is not None:
        data[site] = {**data[site], "sha256": hashlib.sha256(text.encode()).hexdigest()}
        dep.save_record(data)


def start_development(omero: Omero, action: str, say: Callable[[str], None]) -> Path:
    """The development server runs in the foreground: start it detached and do not wait for it.
    Its pid file and log live in the deployment's state (root never writes into OMERODIR/var)."""
    if action == "restart":
        stop_development(omero.target)
    dep = omero.deployment
    with open(dep.dev_log, "ab") as out:
        proc = omero.start("web", "start", output=out)
    dep.dev_pidfile.write_text(f"{proc.pid}\n")
    say(f"development server started (pid {proc.pid}); its output goes to {dep.dev_log}")
    return dep.dev_log


def tail_web_log(log: Path, offset: int, say: Callable[[str], None]) -> None:
    """What OMERO.web logged since ``offset`` (its last 40 lines), read through safefs: the OMERO.web user
    owns the log, so a link there is not followed and a FIFO is not waited for."""
    try:
        data = safefs.read_since(str(log), offset)
    except (OSError, safefs.UnsafePath) as exc:
        say(f"OMEROweb.log not read: {exc}")
        return
    for raw in (data or b"").decode("utf-8", "replace").splitlines()[-40:]:
        say(f"OMEROweb.log: {mask_text(raw)}")


def tail(path: Path, n: int = 15) -> str:
    """The last ``n`` lines of a log for an error message, read through safefs (the OMERO.web user owns
    OMEROweb.log: a link there is not followed, a FIFO not waited for, a huge file not read whole)."""
    try:
        lines = safefs.tail(str(path), n)
    except (OSError, safefs.UnsafePath) as exc:
        return f"(not read: {exc})"
    if lines is None:
        return "(no log)"
    return mask_text("\n".join(lines))


def web_as_before(omero: Omero, was_running: bool, say: Callable[[str], None], backup: Any = None) -> None:
    """Put OMERO.web back in the state it had: restarted (with the restored config) or stopped. After a run that
    switched (its backup says where), without a restart: the switch converges to the restored config, from
    whichever master serves now, and the others stop."""
    route = bluegreen.route_of(backup)
    if route is not None:
        venv = bluegreen.venv_of(backup)
        if venv is not None and venv != str(omero.target.venv):  # an upgrade's: back to the environment it left
            omero = Omero(replace(omero.target, venv=Path(venv)), log=omero.log)
        bluegreen.converge(omero, route, say, running=was_running)
        keep_record(omero, route.site)
        return
    stop_development(omero.target)
    running = running_pid(omero.target) is not None
    if was_running or running:
        problem = web_log_problem(omero.target)  # `omero web` would block on a FIFO there
        if problem:
            raise ApplyError(f"OMERO.web was not {'restarted' if was_running else 'stopped'}: {problem}; "
                             f"then `omero web {'restart' if was_running else 'stop'}` as {omero.target.user}")
    if was_running:  # a restore: expired sessions are the clearsessions job's, not a reason to stay down longer
        omero.web("restart", on_line=say, check=False, keep_sessions=True)
    elif running:
        omero.web("stop", on_line=say, check=False)


def web_after_rollback(omero: Omero, backup: Any, before: dict[str, str], route: bluegreen.Route | None,
                       say: Callable[[str], None], url: str | None) -> str:
    """A rollback takes effect the way an apply would: a run that switched is switched back (to the environment it
    left: an upgrade's rollback reinstalls nothing); a rollback of Django settings only is a graceful reload; of
    the number of workers only, a change on the running master; of gunicorn's own settings, a switch where the
    web server is ours. A restart, when one is left, keeps the sessions. Then the login page must answer.
    Returns what was done."""
    m = backup.manifest
    t = omero.target
    if bluegreen.route_of(backup) is not None:
        web_as_before(omero, m.was_running, say, backup=backup)
        done = "switched back without downtime" if m.was_running else "stopped"
    elif not (m.was_running and running_pid(t) is not None) or _development(t):
        web_as_before(omero, m.was_running, say)
        return "restarted" if m.was_running else "stopped" if running_pid(t) is None else "left as it was"
    else:
        after = omero.config_read()
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        restart = [k for k in changed if k in KEYS and KEYS[k].restart]
        static = [k for k in changed if k in KEYS and KEYS[k].static] or m.environment
        if m.packages:  # an upgrade in place was reinstalled: new code
            restart = restart or ["omero-web's code"]
        if restart == [WORKERS] and len(changed) == 1 and not m.environment:
            master = gunicorn.find_master(t.omerodir, t.user)
            try:
                gunicorn.scale(master, int(after.get(WORKERS) or KEYS[WORKERS].default or 5), on_line=say)
            finally:
                master.close()
            done = "the number of workers changed on the running master"
        elif restart and route is not None and not m.packages:
            bluegreen.converge(omero, route, say)
            keep_record(omero, route.site)
            done = "switched without downtime"
        elif restart:
            omero.web("restart", on_line=say, keep_sessions=True)
            done = "restarted (the sessions kept)"
        elif changed or m.environment:
            if static:
                omero.collectstatic(on_line=say)
            master = gunicorn.find_master(t.omerodir, t.user)
            try:
                gunicorn.reload(master, on_line=say, check=(lambda: answers_200(url)) if url else None)
            finally:
                master.close()
            done = "reloaded gracefully"
        else:
            return "left running (nothing it reads changed)"
    if m.was_running and url:
        ok, why = check_login_page(url)
        if not ok:
            raise ApplyError(f"after the rollback {url} did not answer 200 ({why})")
        done += f"; {url} answers 200"
    return done


WORKERS = "omero.web.wsgi_workers"


def _development(t: Any) -> bool:
    return Deployment(t.omerodir).dev_pidfile.exists()


def stop_development(target: Any) -> None:
    """End a development server started by apply (its whole session: runuser, omero, Django)."""
    pidfile = Deployment(target.omerodir).dev_pidfile
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        for _ in range(50):
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            continue
        break
    pidfile.unlink(missing_ok=True)


@dataclass(frozen=True)
class WebChange:
    action: str  # start | restart | reload | scale | switch
    why: str
    reasons: tuple[str, ...] = ()  # restart, switch: each setting that needs a new master, and why
    collectstatic: bool = False  # reload, switch: collect the static files first
    workers: int | None = None  # reload, scale: the number of workers wanted (None: as many as now)
    route: bluegreen.Route | None = None  # switch: the site and the web server that is switched
    not_switched: str = ""  # restart of a running OMERO.web: why it is not a blue/green switch
    venv: str | None = None  # switch: the environment the new master runs from (an upgrade's new one; None: same)
    kind: ClassVar[Kind] = KIND

    def title(self) -> str:
        return self.describe()

    def details(self) -> tuple[str, ...]:
        verb = "a new master because" if self.action == "switch" else "restart because"
        out = tuple(f"{verb} {r}" for r in self.reasons)
        if self.not_switched:
            out += (f"a restart, not a switch without downtime: {self.not_switched}",)
        return out

    def diff(self) -> str:
        return ""

    def values(self) -> None:
        return None

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "why": self.why, "reasons": list(self.reasons),
                "collectstatic": self.collectstatic, "workers": self.workers, "not_switched": self.not_switched,
                "describe": self.describe()}

    def describe(self) -> str:
        static = "collect static files, then " if self.collectstatic else ""
        if self.action == "reload":
            n = f" ({self.workers} of them)" if self.workers is not None else ""
            return f"{static}reload OMERO.web gracefully: new gunicorn workers{n} replace the old ones ({self.why})"
        if self.action == "scale":
            return f"change the number of gunicorn workers to {self.workers} on the running master, none restarted " \
                   f"({self.why})"
        if self.action == "switch":
            via = self.route.front.via if self.route and self.route.front else "the web server"
            return f"{static}switch OMERO.web without downtime: a new gunicorn master beside the running one, " \
                   f"then {via} is switched to it and the old one stops after its requests ({self.why})"
        return f"omero web {self.action} ({self.why})"

    @property
    def label(self) -> str:
        """The name of the apply step that runs it."""
        return {"reload": "reload OMERO.web", "scale": "change the number of workers",
                "switch": "switch OMERO.web (blue/green)"}.get(self.action, f"omero web {self.action}")
