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


class Interrupted(Exception):
    """SIGTERM (or Ctrl-C) arrived while applying."""


class Applier:
    def __init__(self, plan: Plan, omero: Omero, emit: Emit, lock_wait: float = 0.0, source: str = "(not said)"):
        self.plan = plan
        self.source = source  # where the answers came from, for the run log
        self.omero = omero
        self.emit = emit
        self.lock_wait = lock_wait
        self.backup: Backup | None = None
        self.dev_log: Path | None = None
        self.touched = False  # whether this run changed anything yet (a repair or the first step)
        self.checked: list[str] = []  # what this run requested and saw answer, for the final message
        self.not_checked: list[str] = []  # and what it could not request, with why
        self.login_checked: str | None = None  # the login page URL that answered on the application server

    def step(self, name: str):
        return _Step(self, name)

    def run(self) -> bool:
        plan = self.plan
        self.omero.log.run_started(self.omero.target.omerodir, self.source)
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
        self.emit(Finished(True, self.final_message(url), url))
        return True

    def _steps(self) -> str | None:
        """Run the changes; return the public URL when it was requested through the front door (else None).
        What was and was not checked is kept in ``checked`` / ``not_checked`` for the final message."""
        plan = self.plan
        self.checked, self.not_checked = [], []
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
                    serverfiles.apply_files(plan, lambda line: self.emit(Output("write web-server files", line)),
                                            self.omero.log)
            if plan.jobs:
                with self.step("scheduled jobs"):
                    serverfiles.apply_jobs(plan, lambda line: self.emit(Output("scheduled jobs", line)), self.omero.log)
        started = self.start_server() if plan.server else None
        try:
            if plan.web:
                self.start_web()
                if plan.answers.sessions.backend != "file":
                    with self.step("check the session store"):
                        why = preflight.check_session_store(plan)
                        if why:
                            raise ApplyError(f"{why} after the start: OMERO.web cannot keep sessions")
            return self.check_front_door()
        except BaseException:
            if started:
                self.stop_server(started)
            raise

    def start_server(self) -> str:
        """Start the system web server the plan says is not running; returns its kind."""
        from omerowizard import servercheck

        change = self.plan.server
        assert change is not None
        with self.step(change.label) as s:
            r = servercheck._run(list(change.argv), " ".join(change.argv))
            self.omero.log.server(r.what, r.ok, r.output)
            if not r.ok:
                raise ApplyError(f"{r.what} failed:\n{r.output}")
            s.detail = r.what
        return change.kind

    def stop_server(self, kind: str) -> None:
        """A web server this run started is stopped again when the run fails (it was not running before)."""
        from omerowizard import frontdoor, servercheck

        argv = frontdoor.stop_argv(kind)
        r = servercheck._run(argv, " ".join(argv))
        self.omero.log.server(r.what, r.ok, r.output)
        self.emit(Output("restore", f"{r.what} (it was not running before this run): {'done' if r.ok else r.output}"))

    def check_front_door(self) -> str | None:
        """Request the login page and a static file through the web server, as a browser would."""
        from omerowizard import frontdoor

        plan = self.plan
        d, why = frontdoor.door(plan)
        if d is None:
            if plan.answers.web_server.kind == "development" and self.login_checked:
                return public_url(plan)  # Django's development server is the front door: its login page answered
            self.not_checked.append(f"the public URL through the web server: {why}")
            return None
        with self.step(frontdoor.STEP) as s:
            ok, lines = frontdoor.check(d)
            for line in lines:
                self.emit(Output(frontdoor.STEP, line))
            if not ok:
                raise ApplyError(f"OMERO.web does not answer through {d.via}:\n  " + "\n  ".join(lines))
            s.detail = f"{d.public_url}: the login page and a static file answer 200 through {d.via}"
        self.checked.append(f"through {d.via}, the login page {d.url(d.login_path)} and the static file "
                            f"{d.url(d.static_path)} answered 200")
        return d.public_url

    def final_message(self, url: str | None) -> str:
        """What a successful run proved, and what it did not: a URL is claimed only when it was requested."""
        lines = [f"Done. OMERO.web answers at {url}" if url else "Done."]
        if self.checked:
            lines.append("Checked: " + "; ".join(self.checked) + ".")
        if self.not_checked:
            lines.append("Not checked: " + "; ".join(self.not_checked) + ".")
        return "\n".join(lines)

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
                logs = [log] + ([self.dev_log] if self.dev_log else [])
                shown = "\n".join(f"Last lines of {p}:\n{tail(p)}" for p in logs if p.exists()) or f"(no {log})"
                raise ApplyError(f"{url} did not answer 200 ({why}).\n{shown}")
            s.detail = f"{url} answers 200"
            self.login_checked = url
            self.checked.append(f"the login page {url} answered 200 on the application server")

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


def apply_plan(plan: Plan, omero: Omero, emit: Emit, lock_wait: float = 0.0, source: str = "(not said)") -> bool:
    return Applier(plan, omero, emit, lock_wait, source).run()


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


