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

import contextlib
import signal
import threading

from omerowizard import backup as backup_mod
from omerowizard import locations, preflight
from omerowizard import probe as probe_mod
from omerowizard.backup import Backup
from omerowizard.errors import ApplyError, WizardError
from omerowizard.lock import DeploymentLock
from omerowizard.events import Emit, Finished, Output, StepDone, StepFailed, StepStarted
from omerowizard.omero import Omero, chown_tree, mask_secrets
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


def answers_200(url: str) -> bool:
    """One request: does ``url`` answer 200?"""
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


class Interrupted(Exception):
    """SIGTERM (or Ctrl-C) arrived while applying."""


class Applier:
    def __init__(self, plan: Plan, omero: Omero, emit: Emit, lock_wait: float = 0.0):
        self.plan = plan
        self.omero = omero
        self.emit = emit
        self.lock_wait = lock_wait
        self.backup: Backup | None = None
        self.dev_log: Path | None = None
        self.touched = False  # whether this run changed anything yet (a repair or the first step)

    def step(self, name: str):
        return _Step(self, name)

    def run(self) -> bool:
        plan = self.plan
        if plan.empty:
            self.emit(Finished(True, "Nothing to change: the deployment already matches the answers."))
            return True
        try:
            with DeploymentLock(self.omero.target.omerodir, wait=self.lock_wait) as lock, _signals_raise():
                if lock.stale_pid:
                    self.emit(Output("lock", f"a previous run (pid {lock.stale_pid}) ended without releasing its "
                                             "lock; it was cleared"))
                self.repair_interrupted()
                if lock.waited:
                    self.replan("another run changed this deployment while this one waited for it")
                    if self.plan.empty:
                        self.emit(Finished(True, "Nothing to change: the deployment already matches the answers.",
                                           changed=False))
                        return True
                with self.step("preflight"):
                    preflight.run(self.plan)
                return self._apply()
        except WizardError as exc:
            self.emit(Finished(False, f"Failed: {exc}", changed=self.touched))
            return False

    def repair_interrupted(self) -> bool:
        """A run that was killed mid-apply left an unfinished backup: restore it first (True if it did)."""
        b = backup_mod.interrupted(self.omero.target.omerodir)
        if b is None:
            return False
        self.touched = True
        with self.step("repair an interrupted run"):
            restored = b.restore()
            self.emit(Output("repair an interrupted run",
                             f"the run of pid {b.manifest.pid} ({b.manifest.created}) was killed mid-apply; "
                             f"restored: {', '.join(restored) or 'nothing'}"))
            self._web_as_before(b.manifest.was_running, "repair an interrupted run")
        self.replan("the repair put back what the interrupted run had changed")
        return True

    def replan(self, why: str) -> None:
        """The plan was made from a state that has changed since: measure again and plan again."""
        from omerowizard.headless import plan_for

        self.plan, _ = plan_for(self.plan.answers)
        self.emit(Output("plan", f"planned again: {why}"))

    def _apply(self) -> bool:
        plan = self.plan
        t = self.omero.target
        paths = [t.config_xml]
        for f in plan.files:
            if not f.staged:
                paths.append(Path(f.path))
                if f.link:
                    paths.append(Path(f.link))
        self.backup = Backup.create(omerodir=t.omerodir, user=t.user, venv=t.venv, was_running=plan.state.running,
                                    paths=paths, crontab=bool(plan.jobs))
        self.emit(Output("preflight", f"backup of what this run touches: {self.backup.directory}"))
        self.touched = True
        try:
            url = self._steps()
        except (Exception, Interrupted, KeyboardInterrupt) as exc:  # noqa: BLE001 - any failure restores
            if isinstance(exc, (Interrupted, KeyboardInterrupt)):
                why = "interrupted"
            elif isinstance(exc, WizardError):
                why = str(exc)
            else:
                why = f"internal error {type(exc).__name__}: {exc} (please report it)"
            restored = self._restore()
            self.emit(Finished(False, f"Failed: {why}\nRestored: {restored}\n"
                                      f"Backup: {self.backup.directory}\nFull log of omero commands: {self.omero.log.path}"))
            if isinstance(exc, (Interrupted, KeyboardInterrupt)):
                raise KeyboardInterrupt from None
            return False
        self.backup.finish("done")
        save_answers(plan)
        where = f" OMERO.web answers at {url}" if url else ""
        self.emit(Finished(True, f"Done.{where}", url))
        return True

    def _steps(self) -> str | None:
        plan = self.plan
        if plan.upgrade:
            self.upgrade_web()
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
        if plan.web:
            self.start_web()
            if plan.answers.sessions.backend != "file":
                with self.step("check the session store"):
                    why = preflight.check_session_store(plan)
                    if why:
                        raise ApplyError(f"{why} after the start: OMERO.web cannot keep sessions")
            return public_url(plan)
        return None

    def _restore(self) -> str:
        """Put back everything the backup holds and OMERO.web as it was; never raises."""
        assert self.backup is not None
        with _signals_ignored():
            self.emit(StepStarted("restore"))
            try:
                restored = self.backup.restore()
            except Exception as exc:  # noqa: BLE001 - report whatever went wrong while restoring
                self.backup.finish("failed-restore")
                self.emit(StepFailed("restore", f"could not restore everything: {exc}"))
                return f"NOT everything: {exc}; the backup is in {self.backup.directory} (`omerowizard rollback`)"
            self._web_as_before(self.plan.state.running, "restore")
            self._reload_servers()
            self.emit(StepDone("restore", ", ".join(restored)))
            return ", ".join(restored) + (", OMERO.web " + ("restarted" if self.plan.state.running else "stopped"))

    def _reload_servers(self) -> None:
        """A system nginx or Apache reloaded with the new files must serve the restored ones again."""
        from omerowizard import servercheck

        kinds = {f.check for f in self.plan.files if getattr(f, "system", False) and f.check in {"nginx", "apache"}}
        for kind in sorted(kinds):
            result = servercheck.reload_system(kind)
            if result is not None:
                self.emit(Output("restore", f"{result.what}: {'done' if result.ok else result.output}"))

    def _web_as_before(self, was_running: bool, step: str) -> None:
        web_as_before(self.omero, was_running, lambda line: self.emit(Output(step, line)))

    def write_config(self) -> None:
        self.omero.config_load(self.plan.sets)
        self.omero.config_unset_many(self.plan.unsets)

    def start_web(self) -> None:
        plan = self.plan
        action = plan.web.action  # type: ignore[union-attr]
        if action == "reload":
            return self.reload_web()
        name = f"omero web {action}"
        log = self.omero.target.web_log
        offset = log.stat().st_size if log.exists() else 0
        development = plan.answers.web_server.kind == "development"
        with self.step(name):
            if development:
                self._start_development(name, action)
            else:
                # a restart keeps OMERO.web down from its stop to gunicorn's start: skip the session clean-up
                self.omero.web(action, on_line=lambda line: self.emit(Output(name, line)),
                               keep_sessions=action == "restart")
        with self.step("check the login page") as s:
            url = login_url(plan)
            ok, why = check_login_page(url)
            self._tail_web_log(log, offset, name)
            if not ok:
                logs = [log] + ([self.dev_log] if self.dev_log else [])
                shown = "\n".join(f"Last lines of {p}:\n{tail(p)}" for p in logs if p.exists()) or f"(no {log})"
                raise ApplyError(f"{url} did not answer 200 ({why}).\n{shown}")
            s.detail = f"{url} answers 200"

    def upgrade_web(self) -> None:
        """Install the wanted omero-web (the previous versions are recorded in the backup first, so a
        failure or `omerowizard rollback` reinstalls them); clear the session store when the notes say so.
        The restart that follows (``omero web restart``) collects the static files."""
        u = self.plan.upgrade
        assert u is not None and self.backup is not None
        name = f"{u.verb} OMERO.web"
        with self.step(name) as s:
            previous = {dist: old for dist, old, new in u.versions if old is not None and old != new}
            self.backup.record_packages(previous)
            self.emit(Output(name, "previous versions recorded in the backup: "
                                   + ", ".join(f"{d}=={v}" for d, v in sorted(previous.items()))))
            pip_install(self.omero.target.venv, list(u.requirements),
                        on_line=lambda line: self.emit(Output(name, line)), log=self.omero.log)
            s.detail = f"omero-web {u.old} -> {u.new}"
        if u.clear_sessions:
            with self.step("clear the session store") as s:
                result = self.omero.clear_session_store(on_line=lambda line: self.emit(Output("clear the session store", line)))
                s.detail = (result.output.strip().splitlines() or [""])[-1]

    def reload_web(self) -> None:
        """Graceful reload: collect static files if needed, then have the verified gunicorn master of this
        deployment replace its workers by new ones (which read the new config.xml) without a moment
        with none booted, and check the login page. New workers that do not boot raise, so apply
        restores config.xml and restarts OMERO.web with it, as after a failed start."""
        from omerowizard import gunicorn

        plan = self.plan
        web = plan.web
        assert web is not None
        t = self.omero.target
        if web.collectstatic:
            with self.step("collect static files") as s:
                result = self.omero.collectstatic(on_line=lambda line: self.emit(Output("collect static files", line)))
                s.detail = (result.output.strip().splitlines() or [""])[-1]
        log = t.web_log
        offset = log.stat().st_size if log.exists() else 0
        url = login_url(plan)
        with self.step("reload OMERO.web") as s:
            master = gunicorn.find_master(t.omerodir, t.user)
            try:
                self.emit(Output("reload OMERO.web", f"gunicorn master {master.pid} verified ({t.user}, "
                                                     f"OMERODIR={t.omerodir}): replacing its workers"))
                done = gunicorn.reload(master, check=lambda: answers_200(url),
                                       on_line=lambda line: self.emit(Output("reload OMERO.web", line)))
            except gunicorn.ReloadError as exc:
                self._tail_web_log(log, offset, "reload OMERO.web")
                raise ApplyError(f"{exc}\nLast lines of {log}:\n{tail(log)}") from None
            finally:
                master.close()
            s.detail = f"{len(done.new)} new workers in {done.seconds:.1f}s; the old ones finished their requests"
        with self.step("check the login page") as s:
            ok, why = check_login_page(url)
            if not ok:
                raise ApplyError(f"{url} did not answer 200 after the reload ({why}).\nLast lines of {log}:\n{tail(log)}")
            s.detail = f"{url} answers 200"

    def _start_development(self, name: str, action: str) -> None:
        """The development server runs in the foreground: start it detached and do not wait for it."""
        if action == "restart":
            stop_development(self.omero.target)
        argv = self.omero.argv("web", "start")
        # never create directories inside OMERODIR as root: omero-web must own var/ to write its files
        logfile = locations.log_dir() / f"development-server-{self.omero.target.omerodir.name}.log"
        out = open(logfile, "ab")
        self.omero.calls += 1
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd="/")
        out.close()
        self.dev_log = logfile
        var = self.omero.target.omerodir / "var"
        if not var.exists():  # a fresh OMERODIR: omero creates var/ a moment later; create it as the user would
            var.mkdir()
            if os.geteuid() == 0:
                chown_tree([var], self.omero.target.user)
        (var / probe_mod.DEV_PIDFILE).write_text(f"{proc.pid}\n")
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
        elif isinstance(exc, (Interrupted, KeyboardInterrupt)):
            self.applier.emit(StepFailed(self.name, "interrupted"))
        return False


def web_as_before(omero: Omero, was_running: bool, say) -> None:
    """Put OMERO.web back in the state it had: restarted (with the restored config) or stopped."""
    stop_development(omero.target)
    if was_running:
        omero.web("restart", on_line=say, check=False)
    elif probe_mod.running_pid(omero.target) is not None:
        omero.web("stop", on_line=say, check=False)


def stop_development(target) -> None:
    """End a development server started by apply (its whole session: runuser, omero, Django)."""
    pidfile = target.omerodir / "var" / probe_mod.DEV_PIDFILE
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


def apply_plan(plan: Plan, omero: Omero, emit: Emit, lock_wait: float = 0.0) -> bool:
    return Applier(plan, omero, emit, lock_wait).run()


@contextlib.contextmanager
def _signals_raise():
    """SIGTERM raises Interrupted (Ctrl-C already raises KeyboardInterrupt), so apply restores and exits.
    Signal handlers can only be set from the main thread; the Textual app runs apply in a worker."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Interrupted()

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextlib.contextmanager
def _signals_ignored():
    """While restoring, a second Ctrl-C or SIGTERM must not leave things half restored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def rollback(omerodir: Path, omero: Omero, emit: Emit) -> bool:
    """`omerowizard rollback`: restore the newest backup of this deployment."""
    b = backup_mod.latest(omerodir)
    if b is None:
        emit(Finished(False, f"No backup of {omerodir} to restore."))
        return False
    with DeploymentLock(omerodir):
        emit(StepStarted("rollback"))
        restored = b.restore()
        web_as_before(omero, b.manifest.was_running, lambda line: emit(Output("rollback", line)))
        emit(StepDone("rollback", ", ".join(restored)))
    emit(Finished(True, f"Restored the backup of {b.manifest.created} ({b.directory})."))
    return True


