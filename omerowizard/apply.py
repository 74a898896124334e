"""Apply: the only code that changes the machine.

Runs a plan's changes in order with the fewest processes (one ``omero config load`` for
every set), starts or restarts OMERO.web with its output streamed, checks the login
page, and reports each step as an event.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from pathlib import Path

import contextlib
import signal
import threading

from omerowizard import backup as backup_mod
from omerowizard import children, hostlock, preflight, processes, safefs, servercheck
from omerowizard import probe as probe_mod
from omerowizard.backup import Backup
from omerowizard.errors import ApplyError, WizardError
from omerowizard.lock import DeploymentLock
from omerowizard.features import apps
from omerowizard.events import Emit, Finished, Output, StepDone, StepFailed, StepStarted
from omerowizard.omero import Omero, mask_secrets
from omerowizard.plan import Plan
from omerowizard.venv import pip_install, pip_uninstall


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
    if ws.kind in {"development", "none"}:  # no web server on this host: the application server's own URL
        return login_url(plan).rsplit("/webclient/login/", 1)[0] + "/"
    if ws.https:
        port = "" if ws.https.port == 443 else f":{ws.https.port}"
        return f"https://{ws.server_name}{port}{prefix}"
    port = "" if ws.port == 80 else f":{ws.port}"
    return f"http://{ws.server_name}{port}{prefix}"


def check_login_page(url: str, timeout: float = 60, proc=None) -> tuple[bool, str]:
    """Wait for ``url`` to answer 200 (``proc``: a started server, whose exit ends the wait)."""
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


def http_status(url: str, timeout: float = 30) -> str | int:
    """The status of one GET of ``url``, redirects not followed (a reason when there is no answer)."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(url, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, OSError) as e:
        return str(getattr(e, "reason", e))


class Interrupted(Exception):
    """SIGTERM (or Ctrl-C) arrived while applying."""


_current: "Applier | None" = None  # the apply running in this process (the Textual app runs it in a thread)


def interrupt_current() -> bool:
    """Interrupt the apply running in this process as Ctrl-C does on the command line: its running
    omero (or pip) process group is ended, the step fails as interrupted, and everything is restored.
    For front ends whose apply runs in a worker thread, where no signal can reach it."""
    applier = _current
    if applier is None:
        return False
    applier.cancel.set()
    processes.end_running()
    return True


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
        self.cancel = threading.Event()  # set by interrupt_current(): stop at once, restore
        self.checked: list[str] = []  # what this run requested and saw answer, for the final message
        self.not_checked: list[str] = []  # and what it could not request, with why
        self.login_checked: str | None = None  # the login page URL that answered on the application server

    def step(self, name: str):
        return _Step(self, name)

    def run(self) -> bool:
        global _current
        _current = self
        try:
            return self._run()
        finally:
            _current = None

    def _run(self) -> bool:
        plan = self.plan
        dep = self.omero.deployment
        self.omero.log.run_started(self.omero.target.omerodir, self.source)
        if plan.empty and not backup_mod.unfinished(dep) and not dep.children.exists():
            self.emit(Finished(True, "Nothing to change: the deployment already matches the answers.", changed=False))
            return True
        try:
            with _signals_raise():
                with DeploymentLock(self.omero.target.omerodir, wait=self.lock_wait) as lock:
                    if lock.stale_pid:
                        self.emit(Output("lock", f"a previous run (pid {lock.stale_pid}) ended without releasing "
                                                 "its lock; it was cleared"))
                    if lock.note:
                        self.emit(Output("lock", lock.note))
                    repaired = self.repair_interrupted()
                    if lock.waited and not repaired:
                        self.replan("another run changed this deployment while this one waited for it")
                    if self.plan.empty:
                        self.emit(Finished(True, "Nothing to change: the deployment already matches the answers.",
                                           changed=self.touched))
                        return True
                    with self.step("preflight"):
                        preflight.run(self.plan)
                    return self._apply()
        except WizardError as exc:
            self.emit(Finished(False, f"Failed: {exc}", changed=self.touched))
            return False
        except (Interrupted, KeyboardInterrupt):
            if self.backup is None:  # interrupted before anything changed (lock, repair or preflight)
                self.emit(Finished(False, "Interrupted." + ("" if self.touched else " No changes were made."),
                                   changed=self.touched))
            raise KeyboardInterrupt from None

    def repair_interrupted(self) -> bool:
        """A run that was killed mid-apply (or whose restore could not finish) left an unfinished
        backup: end its leftover omero child, restore what is left, then plan again (True if it did)."""
        dep = self.omero.deployment
        ended = children.end_leftovers(dep.children)
        if ended:
            self.touched = True
            self.emit(Output("repair an interrupted run", f"ended the omero process group(s) {ended} that a killed "
                                                          "run left running"))
        todo = backup_mod.unfinished(dep)
        if not todo and not ended:
            return False
        self.touched = True
        with self.step("repair an interrupted run"):
            for b in todo:
                how = "was killed mid-apply" if b.manifest.status == "applying" else "could not finish its restore"
                restored, failed = b.restore()
                b.restore_state(dep)
                what = f"the run of pid {b.manifest.pid} ({b.manifest.created})"
                self.emit(Output("repair an interrupted run",
                                 f"{what} {how}; restored: {', '.join(restored) or 'nothing left to restore'}"))
                if failed:
                    raise ApplyError(f"could not restore everything {what} changed: {'; '.join(failed)}; the next run "
                                     f"tries again (backup {b.directory})")
                self._web_as_before(b.manifest.was_running, "repair an interrupted run")
            safefs.remove_unused_temps(str(self.omero.target.config_xml))
        self.replan("the repair put back what the interrupted run had changed")
        return True

    def replan(self, why: str) -> None:
        """The plan was made from a state that has changed since: measure again and plan again."""
        from omerowizard.planning import plan_for

        self.plan, _ = plan_for(self.plan.answers)
        self.emit(Output("plan", f"planned again: {why}"))

    def _apply(self) -> bool:
        plan = self.plan
        t = self.omero.target
        dep = self.omero.deployment
        paths = [t.config_xml]
        for f in plan.files:
            if not f.staged:
                paths.append(Path(f.path))
                if f.link:
                    paths.append(Path(f.link))
        self.backup = Backup.create(deployment=dep, user=t.user, venv=t.venv, was_running=plan.state.running,
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
        text = save_answers(plan)
        self.backup.finish("done", answers_after=text)
        backup_mod.prune(dep)
        self.emit(Finished(True, self.final_message(url), url))
        return True

    def _steps(self) -> str | None:
        """Run the changes; return the public URL when it was requested through the front door (else None).
        What was and was not checked is kept in ``checked`` / ``not_checked`` for the final message."""
        plan = self.plan
        self.checked, self.not_checked = [], []
        if plan.upgrade:
            self.upgrade_web()
        if any(p.action == "install" for p in plan.packages):
            with self.step("install packages") as s:
                s.detail = self.install_packages()
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
                self.check_apps()
                if plan.answers.sessions.backend != "file":
                    with self.step("check the session store"):
                        why = preflight.check_session_store(plan)
                        if why:
                            raise ApplyError(f"{why} after the start: OMERO.web cannot keep sessions")
            self.uninstall_packages()
            return self.check_front_door()
        except BaseException:
            if started:
                self.stop_server(started)
            raise

    def start_server(self) -> str | None:
        """Start the system web server the plan says is not running; returns its kind (None: another run started
        it meanwhile, so this run must not stop it on a failure). Under the host-wide lock: the server is the host's."""
        from omerowizard import frontdoor

        change = self.plan.server
        assert change is not None
        with self.step(change.label) as s, hostlock.held(f"the start of the system {change.kind}"):
            if frontdoor.server_running(change.kind):
                s.detail = f"{change.kind} runs already (another run started it)"
                return None
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
        with hostlock.held(f"the stop of the system {kind}"):  # the host's: never between another run's check and reload
            r = servercheck._run(argv, " ".join(argv))
        self.omero.log.server(r.what, r.ok, r.output)
        self.emit(Output("restore", f"{r.what} (it was not running before this run): {'done' if r.ok else r.output}"))

    def check_apps(self) -> None:
        """Each catalogue app of the answers answers at its URL on the application server (its login redirect, or
        its page): a web app that does not load fails the run, which restores everything."""
        from omerowizard.features import apps

        plan = self.plan
        if plan.answers.platform != "unix" or not plan.answers.apps.enabled:
            return
        if not (plan.packages or any(c.key in apps.LIST_KEYS or c.key == apps.MAPR_KEY for c in plan.config)):
            return
        base = login_url(plan).rsplit("/webclient/login/", 1)[0] + "/"
        with self.step("check the web apps") as s:
            seen = []
            for name in plan.answers.apps.enabled:
                app = apps.BY_NAME[name]
                url = base + app.url
                status = http_status(url)
                if not (isinstance(status, int) and 200 <= status < 400):  # its page, or a redirect (to log in)
                    raise ApplyError(f"{app.title} does not answer at {url} ({status}): the app is not loaded")
                seen.append(f"{name} {status}")
            s.detail = ", ".join(seen)
        self.checked.append("the web apps " + ", ".join(seen) + " on the application server")

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
            restored, failed = self.backup.restore()
            try:
                self.backup.restore_state(self.omero.deployment)
            except OSError as exc:
                failed.append(f"the record of written files: {exc}")
            if failed:
                self.emit(StepFailed("restore", "could not restore: " + "; ".join(failed)))
            try:
                self._web_as_before(self.plan.state.running, "restore")
                self._reload_servers()
            except Exception as exc:  # noqa: BLE001 - report, never raise while restoring
                failed.append(f"OMERO.web or the web server: {exc}")
            if failed:
                return (", ".join(restored) or "nothing") + f"; NOT restored: {'; '.join(failed)}. The next run " \
                    f"tries again (the backup is in {self.backup.directory}; `omerowizard rollback` also restores it)"
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

    def install_packages(self) -> str:
        """The planned packages: the features' in one pip run, then each web app in its own (so a failure names
        the app), then the uninstalls. Before any app is touched the whole environment is recorded in the
        backup: a failure (or `omerowizard rollback`) uninstalls what was added and reinstalls what changed."""
        plan = self.plan
        venv = self.omero.target.venv
        say = lambda line: self.emit(Output("install packages", line))  # noqa: E731
        pinned = apps.pins(plan.state.packages)
        links = apps.find_links(plan.answers)  # the sources of every pip run of this apply (and of its restore)
        recorded = any(p.app for p in plan.packages)
        if recorded:  # the uninstalls too: their step comes later
            assert self.backup is not None
            self.backup.record_environment(dict(plan.state.packages), links)
            measured = plan.state.apps_measured
            self.backup.record_added({apps.distribution(p.requirement) for p in plan.packages
                                      if p.action == "install" and p.app}
                                     | set(measured.install if measured is not None else ()))
            say(f"the {len(plan.state.packages)} packages of {venv} recorded in the backup")
        features = [p.requirement for p in plan.packages if p.action == "install" and not p.app]
        done = []
        try:
            if features:
                pip_install(venv, [*features, *pinned], on_line=say, log=self.omero.log, find_links=links)
            for p in plan.packages:
                if p.action == "install" and p.app:
                    say(f"web app {p.app}: pip install {p.requirement}")
                    pip_install(venv, [p.requirement, *pinned], on_line=say, log=self.omero.log, find_links=links)
                    done.append(f"{p.requirement} {p.version}".strip())
        finally:
            if recorded:
                assert self.backup is not None
                self.backup.record_added(set(probe_mod.packages(venv)) - set(plan.state.packages))
        return ", ".join([*features, *done])

    def uninstall_packages(self) -> None:
        """The packages of removed apps (apps.uninstall_removed), once OMERO.web runs without them: old workers
        that still had the app loaded are gone by then."""
        removed = [p.requirement for p in self.plan.packages if p.action == "uninstall"]
        if not removed:
            return
        with self.step("uninstall removed apps") as s:
            assert self.backup is not None
            if not self.backup.manifest.environment:
                self.backup.record_environment(dict(self.plan.state.packages), apps.find_links(self.plan.answers))
            pip_uninstall(self.omero.target.venv, removed, log=self.omero.log,
                          on_line=lambda line: self.emit(Output("uninstall removed apps", line)))
            s.detail = ", ".join(removed)

    def write_config(self) -> None:
        self.omero.config_load(self.plan.sets)
        self.omero.config_unset_many(self.plan.unsets)

    def start_web(self) -> None:
        plan = self.plan
        action = plan.web.action  # type: ignore[union-attr]
        log_check = preflight.check_web_log(self.omero.target)  # again: a FIFO may have appeared since preflight
        if not log_check.ok:
            raise ApplyError(log_check.message)
        if action == "reload":
            return self.reload_web()
        name = f"omero web {action}"
        log = self.omero.target.web_log
        offset = safefs.size(str(log))
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
                shown = "\n".join(f"Last lines of {p}:\n{tail(p)}" for p in logs)
                raise ApplyError(f"{url} did not answer 200 ({why}).\n{shown}")
            s.detail = f"{url} answers 200"
            self.login_checked = url
            self.checked.append(f"the login page {url} answered 200 on the application server")

    def upgrade_web(self) -> None:
        """Install the wanted omero-web (the previous versions are recorded in the backup first, so a
        failure or `omerowizard rollback` reinstalls them); clear the session store when the notes say so.
        The restart that follows (``omero web restart``) collects the static files."""
        u = self.plan.upgrade
        assert u is not None and self.backup is not None
        name = f"{u.verb} OMERO.web"
        with self.step(name) as s:
            previous = {dist: old for dist, old, new in u.versions if old is not None and old != new}
            links = apps.find_links(self.plan.answers)
            self.backup.record_packages(previous, links)
            self.emit(Output(name, "previous versions recorded in the backup: "
                                   + ", ".join(f"{d}=={v}" for d, v in sorted(previous.items()))))
            pip_install(self.omero.target.venv, list(u.requirements),
                        on_line=lambda line: self.emit(Output(name, line)), log=self.omero.log, find_links=links)
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
        offset = safefs.size(str(log))
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
        """The development server runs in the foreground: start it detached and do not wait for it.
        Its pid file and log live in the deployment's state (root never writes into OMERODIR/var)."""
        if action == "restart":
            stop_development(self.omero.target)
        dep = self.omero.deployment
        with open(dep.dev_log, "ab") as out:
            proc = self.omero.start("web", "start", output=out)
        self.dev_log = dep.dev_log
        dep.dev_pidfile.write_text(f"{proc.pid}\n")
        self.emit(Output(name, f"development server started (pid {proc.pid}); its output goes to {dep.dev_log}"))

    def _tail_web_log(self, log: Path, offset: int, name: str) -> None:
        """What OMERO.web logged since ``offset`` (its last 40 lines), read through safefs: the OMERO.web user
        owns the log, so a link there is not followed and a FIFO is not waited for."""
        try:
            data = safefs.read_since(str(log), offset)
        except (OSError, safefs.UnsafePath) as exc:
            self.emit(Output(name, f"OMEROweb.log not read: {exc}"))
            return
        for raw in (data or b"").decode("utf-8", "replace").splitlines()[-40:]:
            self.emit(Output(name, f"OMEROweb.log: {mask_secrets(raw)}"))


class _Step:
    def __init__(self, applier: Applier, name: str):
        self.applier, self.name, self.detail = applier, name, ""

    def __enter__(self) -> "_Step":
        if self.applier.cancel.is_set():
            raise Interrupted()
        self.applier.emit(StepStarted(self.name))
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if self.applier.cancel.is_set() and not isinstance(exc, (Interrupted, KeyboardInterrupt)):
            # the step's process was ended by interrupt_current(): what failed is the interrupt
            self.applier.emit(StepFailed(self.name, "interrupted"))
            raise Interrupted() from exc
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
    running = probe_mod.running_pid(omero.target) is not None
    if was_running or running:
        log_check = preflight.check_web_log(omero.target)  # `omero web` would block on a FIFO there
        if not log_check.ok:
            raise ApplyError(f"OMERO.web was not {'restarted' if was_running else 'stopped'}: {log_check.message}; "
                             f"then `omero web {'restart' if was_running else 'stop'}` as {omero.target.user}")
    if was_running:
        omero.web("restart", on_line=say, check=False)
    elif running:
        omero.web("stop", on_line=say, check=False)


def stop_development(target) -> None:
    """End a development server started by apply (its whole session: runuser, omero, Django)."""
    from omerowizard.deployments import Deployment

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


def tail(path: Path, n: int = 15) -> str:
    """The last ``n`` lines of a log for an error message, read through safefs (the OMERO.web user owns
    OMEROweb.log: a link there is not followed, a FIFO not waited for, a huge file not read whole)."""
    try:
        lines = safefs.tail(str(path), n)
    except (OSError, safefs.UnsafePath) as exc:
        return f"(not read: {exc})"
    if lines is None:
        return "(no log)"
    return mask_secrets("\n".join(lines))


def save_answers(plan: Plan) -> str:
    """The applied answers, kept in the deployment's state (0600) so the next run starts from them."""
    from omerowizard.deployments import Deployment, write_private

    a = plan.answers
    dep = Deployment(a.omero.omerodir)
    dep.remember(a.omero.user, a.omero.venv)
    text = a.to_yaml(f"# omerowizard answers of the deployment in {dep.omerodir}: the last applied "
                     "(`omerowizard apply` accepts this file)\n")
    write_private(dep.answers, text)
    return text


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


class RollbackRefused(WizardError):
    exit_code = 1


def rollback_target(dep, to: str | None = None) -> Backup:
    """The backup `omerowizard rollback` restores: ``to``, else the newest apply. A second identical
    rollback (nothing happened since the first) is refused with what to do instead."""
    backups = backup_mod.all_backups(dep)
    if not backups:
        raise RollbackRefused(f"No backup of {dep.omerodir} to restore (no run of omerowizard changed it yet).")
    if to:
        target = next((b for b in backups if b.id == to), None)
        if target is None:
            raise RollbackRefused(f"No backup {to!r} for {dep.omerodir}; `omerowizard rollback --list --omerodir "
                                  f"{dep.omerodir}` lists them.")
        if target.manifest.status not in {"done", "rolled-back"}:
            raise RollbackRefused(f"Backup {to} is of a run that did not finish ({target.manifest.status}): its changes "
                                  "were already undone.")
    else:
        target = next((b for b in backups if b.manifest.kind == "apply" and b.manifest.status in {"done", "rolled-back"}),
                      None)
        if target is None:
            raise RollbackRefused(f"No finished apply of {dep.omerodir} to roll back.")
    m = target.manifest
    if m.status == "rolled-back" and m.rolled_back_by == backups[0].id:
        older = next((b.id for b in backups if b.manifest.kind == "apply" and b.id < target.id
                      and b.manifest.status == "done"), None)
        hint = f"; to go further back: `omerowizard rollback --to {older}`" if older else ""
        raise RollbackRefused(f"Backup {target.id} was already restored by the rollback {m.rolled_back_by} and nothing "
                              f"changed since: nothing to do. To undo that rollback: `omerowizard rollback --to "
                              f"{m.rolled_back_by}`{hint}.")
    return target


def rollback_lines(dep, target: Backup, omero: Omero) -> list[str]:
    """The plan of a rollback, as apply shows plans."""
    m = target.manifest
    what = "the apply" if m.kind == "apply" else "the rollback"
    out = [f"Rollback of {dep.omerodir} to the state before {what} of {m.created} (backup {target.id}):"]
    changes = target.restore_lines()
    out += changes or ["  (the files and the clearsessions line already match the backup)"]
    running = probe_mod.running_pid(omero.target) is not None
    out.append(f"  omero web {'restart' if m.was_running else 'stop'}" if (m.was_running or running)
               else "  OMERO.web stays stopped")
    current = dep.answers.read_text() if dep.answers.exists() else None
    diff = backup_mod.answers_summary(current, m.answers_before)
    out.append("  saved answers: " + ("back to those before that run: " + "; ".join(diff) if diff else "unchanged"))
    return out


def rollback(dep, omero: Omero, emit: Emit, to: str | None = None, dry_run: bool = False) -> bool:
    """`omerowizard rollback`: restore a backup of this deployment (the newest apply by default). It takes
    its own backup first, so a rollback can be rolled back; the saved answers and the file record move
    with it."""
    with DeploymentLock(Path(dep.omerodir)):
        target = rollback_target(dep, to)
        for line in rollback_lines(dep, target, omero):
            emit(Output("rollback", line))
        if dry_run:
            emit(Finished(True, "Dry run: nothing was changed.", changed=False))
            return True
        m = target.manifest
        own = Backup.create(deployment=dep, user=m.user, venv=m.venv,
                            was_running=probe_mod.running_pid(omero.target) is not None,
                            paths=[e.path for e in m.entries], crontab=m.cron_saved, kind="rollback")
        own.manifest.restores = target.id
        own.save()
        emit(StepStarted("rollback"))
        for e in m.entries:
            e.restored, e.error = False, None
        m.cron_restored = False
        with _signals_ignored():
            restored, failed = target.restore()
            if failed:
                emit(StepFailed("rollback", "; ".join(failed)))
                own.restore()
                own.restore_state(dep)
                own.finish("restored")
                emit(Finished(False, f"Rollback failed: {'; '.join(failed)}. What it had changed was put back "
                                     f"(backup {own.directory})."))
                return False
            target.restore_state(dep)
            omero.log.run_started(dep.omerodir, f"the backup {target.id}", what="rollback")
            for line in restored:
                omero.log.change(f"rollback restored {line}")
            try:
                web_as_before(omero, m.was_running, lambda line: emit(Output("rollback", line)))
            except ApplyError as exc:  # OMERO.web's log is a FIFO: the files are back all the same; say what to do
                emit(Output("rollback", str(exc)))
            for kind in _system_servers([e.path for e in m.entries]):
                result = servercheck.reload_system(kind)  # a running nginx/Apache serves the restored files
                if result is not None:
                    omero.log.server(result.what, result.ok, result.output)
                    emit(Output("rollback", f"{result.what}: {'done' if result.ok else result.output}"))
            m.status, m.rolled_back_by = "rolled-back", own.id
            target.save()
            own.finish("done", answers_after=dep.answers.read_text() if dep.answers.exists() else None)
        emit(StepDone("rollback", ", ".join(restored)))
    emit(Finished(True, f"Restored the backup {target.id} of {m.created}. This rollback can itself be undone: "
                        f"`omerowizard rollback --omerodir {dep.omerodir} --to {own.id}`."))
    return True


def _system_servers(paths: list[str]) -> list[str]:
    """The system web servers whose configuration holds one of these paths."""
    from omerowizard import platforms

    kinds = []
    for kind in ("nginx", "apache"):
        root = platforms.server_layout(kind).conf_root + "/"
        if any(p.startswith(root) for p in paths):
            kinds.append(kind)
    return kinds


def list_backups(dep) -> list[str]:
    out = []
    for b in backup_mod.all_backups(dep):
        m = b.manifest
        head = f"{b.id}  {m.kind:8} {m.status}"
        if m.restores:
            head += f" (restored {m.restores})"
        if m.rolled_back_by:
            head += f" (rolled back by {m.rolled_back_by})"
        out.append(head)
        out += [f"    holds: {h}" for h in b.holds()]
        changed = backup_mod.answers_summary(m.answers_before, m.answers_after) if m.answers_after is not None else []
        if changed:
            out.append("    answers that run changed: " + "; ".join(changed))
    return out or [f"No backups of {dep.omerodir}."]
