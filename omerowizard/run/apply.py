"""Apply: the only code that changes the machine.

Runs a plan's changes in order with the fewest processes (one ``omero config load`` for
every set), starts or restarts OMERO.web with its output streamed, checks the login
page, and reports each step as an event.
"""

from __future__ import annotations

import threading

from omerowizard.catalogue import FEATURES
from omerowizard.features.application_server import login_url, public_url
from omerowizard.model.errors import ApplyError, WizardError
from omerowizard.model.events import Emit, Finished, Output, StepDone, StepFailed, StepStarted
from omerowizard.plan.changes.web import CHECK as WEB_CHECK
from omerowizard.plan.changes.web import web_as_before
from omerowizard.plan.plan import STEP as FRONT_DOOR_STEP
from omerowizard.plan.plan import VERIFY_AFTER, Plan
from omerowizard.run import preflight
from omerowizard.run.frontdoor import check as front_door_check
from omerowizard.run.planning import plan_for
from omerowizard.run.signals import Interrupted, signals_ignored, signals_raise
from omerowizard.state.health.logs import where as logs_where
from omerowizard.system import backups as backup_mod
from omerowizard.system import children, processes, safefs
from omerowizard.system.backups import Backup
from omerowizard.system.deployments import Deployment, write_private
from omerowizard.system.lock import DeploymentLock
from omerowizard.system.network import check_login_page
from omerowizard.system.omero import Omero

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
    """One apply: the lock, the repair of a killed run, preflight, the backup, each kind of change in order,
    the features' checks, the front door; on any failure the backup is restored and the kinds undo what a
    backup of files cannot (the model.change.Run that each kind's apply is given)."""

    def __init__(self, plan: Plan, omero: Omero, emit: Emit, lock_wait: float = 0.0, source: str = "(not said)"):
        self.plan = plan
        self.source = source  # where the answers came from, for the run log
        self.omero = omero
        self.emit = emit
        self.lock_wait = lock_wait
        self.backup: Backup | None = None
        self.touched = False  # whether this run changed anything yet (a repair or the first step)
        self.cancel = threading.Event()  # set by interrupt_current(): stop at once, restore
        self.checked: list[str] = []  # what this run requested and saw answer, for the final message
        self.not_checked: list[str] = []  # and what it could not request, with why
        self.memo: dict = {}  # what a kind's apply leaves for its undo
        self.done: list = []  # the kinds whose apply started, in order (their undo runs after a failure)

    def step(self, name: str):
        return _Step(self, name)

    def say(self, step: str, line: str) -> None:
        self.emit(Output(step, line))

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
            with signals_raise():
                with DeploymentLock(self.omero.target.omerodir, wait=self.lock_wait) as lock:
                    if lock.stale_pid:
                        self.say("lock", f"a previous run (pid {lock.stale_pid}) ended without releasing its lock; "
                                         "it was cleared")
                    if lock.note:
                        self.say("lock", lock.note)
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
        name = "repair an interrupted run"
        ended = children.end_leftovers(dep.children)
        if ended:
            self.touched = True
            self.say(name, f"ended the omero process group(s) {ended} that a killed run left running")
        todo = backup_mod.unfinished(dep)
        if not todo and not ended:
            return False
        self.touched = True
        with self.step(name):
            for b in todo:
                how = "was killed mid-apply" if b.manifest.status == "applying" else "could not finish its restore"
                restored, failed = b.restore()
                b.restore_state(dep)
                what = f"the run of pid {b.manifest.pid} ({b.manifest.created})"
                self.say(name, f"{what} {how}; restored: {', '.join(restored) or 'nothing left to restore'}")
                if failed:
                    raise ApplyError(f"could not restore everything {what} changed: {'; '.join(failed)}; the next run "
                                     f"tries again (backup {b.directory})")
                web_as_before(self.omero, b.manifest.was_running, lambda line: self.say(name, line), backup=b)
            safefs.remove_unused_temps(str(self.omero.target.config_xml))
        self.replan("the repair put back what the interrupted run had changed")
        return True

    def replan(self, why: str) -> None:
        """The plan was made from a state that has changed since: measure again and plan again."""
        self.plan, _ = plan_for(self.plan.answers)
        self.say("plan", f"planned again: {why}")

    def _apply(self) -> bool:
        plan = self.plan
        t = self.omero.target
        dep = self.omero.deployment
        kinds = plan.kinds()
        paths = [str(t.config_xml)] + [p for kind, changes in kinds for p in kind.backup_paths(changes, plan)]
        self.backup = Backup.create(deployment=dep, user=t.user, venv=t.venv, was_running=plan.state.running,
                                    paths=paths, crontab=any(kind.crontab for kind, _ in kinds))
        self.say("preflight", f"backup of what this run touches: {self.backup.directory}")
        self.touched = True
        try:
            for kind, changes in kinds:
                if kind.begin is not None:
                    kind.begin(changes, self)
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
                                      f"Backup: {self.backup.directory}\nFull log of omero commands: {self.omero.log.path}\n"
                                      + logs_where(plan.answers)))
            if isinstance(exc, (Interrupted, KeyboardInterrupt)):
                raise KeyboardInterrupt from None
            return False
        text = save_answers(plan)
        self.backup.finish("done", answers_after=text)
        backup_mod.prune(dep)
        self.emit(Finished(True, self.final_message(url), url))
        return True

    def _steps(self) -> str | None:
        """Run each kind of change in order, the features' checks once OMERO.web runs with the changes, then the
        front door; return the public URL when it was requested through the front door (else None). What was
        and was not checked is kept in ``checked`` / ``not_checked`` for the final message."""
        plan = self.plan
        self.checked, self.not_checked = [], []
        verified = False
        for kind, changes in plan.kinds():
            if kind.order > VERIFY_AFTER and not verified:
                self.verify()
                verified = True
            self.done.append((kind, changes))
            kind.apply(changes, self)
        if not verified:
            self.verify()
        return self.check_front_door()

    def verify(self) -> None:
        """The features check what they configured, once OMERO.web runs with it (the web apps answer, the session
        store answers)."""
        if self.plan.web:
            for feature in FEATURES:
                feature.verify(self)

    def check_front_door(self) -> str | None:
        """Request the login page and a static file through the web server, as a browser would."""
        plan = self.plan
        d, why = plan.door, plan.door_why
        if d is None:
            if plan.answers.web_server.kind == "development" and self.memo.get("login checked"):
                return public_url(plan.answers)  # Django's development server is the front door: its login page
            self.not_checked.append(f"the public URL through the web server: {why}")
            if not self.memo.get("login checked") and plan.state.running and plan.answers.platform == "unix":
                self.check_login_page()  # a run that did not touch OMERO.web (the web-server files only)
            return None
        with self.step(FRONT_DOOR_STEP) as s:
            ok, lines = front_door_check(d)
            for line in lines:
                self.say(FRONT_DOOR_STEP, line)
            if not ok:
                raise ApplyError(f"OMERO.web does not answer through {d.via}:\n  " + "\n  ".join(lines))
            s.detail = f"{d.public_url}: the login page and a static file answer 200 through {d.via}"
        self.checked.append(f"through {d.via}, the login page {d.url(d.login_path)} and the static file "
                            f"{d.url(d.static_path)} answered 200")
        return d.public_url

    def check_login_page(self) -> None:
        """The login page of the running OMERO.web on the application server, when nothing else was requested:
        what answers is checked; what does not is said (this run did not change OMERO.web, so it does not fail)."""
        url = login_url(self.plan.answers)
        with self.step(WEB_CHECK) as s:
            ok, why = check_login_page(url, timeout=10)
            s.detail = f"{url} answers 200" if ok else f"{url} did not answer 200 ({why})"
        if ok:
            self.memo["login checked"] = url
            self.checked.append(f"the login page {url} answered 200 on the application server")
        else:
            self.not_checked.append(f"the login page {url}: it did not answer 200 ({why})")

    def final_message(self, url: str | None) -> str:
        """What a successful run proved, and what it did not: a URL is claimed only when it was requested. What
        was not checked comes first, so a short screen never hides it below what was."""
        lines = [f"Done. OMERO.web answers at {url}" if url else "Done."]
        if self.not_checked:
            lines.append("Not checked: " + "; ".join(self.not_checked) + ".")
        if self.checked:
            lines.append("Checked: " + "; ".join(self.checked) + ".")
        lines.append(logs_where(self.plan.answers))
        return "\n".join(lines)

    def _restore(self) -> str:
        """Put back everything the backup holds, undo what the kinds did that a backup of files cannot (a web
        server this run started), and OMERO.web as it was; never raises."""
        assert self.backup is not None
        with signals_ignored():
            self.emit(StepStarted("restore"))
            restored, failed = self.backup.restore()
            try:
                self.backup.restore_state(self.omero.deployment)
            except OSError as exc:
                failed.append(f"the record of written files: {exc}")
            if failed:
                self.emit(StepFailed("restore", "could not restore: " + "; ".join(failed)))
            try:
                web_as_before(self.omero, self.plan.state.running, lambda line: self.say("restore", line),
                              backup=self.backup)
                for kind, changes in reversed(self.done):
                    if kind.undo is not None:
                        kind.undo(changes, self)
            except Exception as exc:  # noqa: BLE001 - report, never raise while restoring
                failed.append(f"OMERO.web or the web server: {exc}")
            if failed:
                return (", ".join(restored) or "nothing") + f"; NOT restored: {'; '.join(failed)}. The next run " \
                    f"tries again (the backup is in {self.backup.directory}; `omerowizard rollback` also restores it)"
            self.emit(StepDone("restore", ", ".join(restored)))
            return ", ".join(restored) + (", OMERO.web " + ("restarted" if self.plan.state.running else "stopped"))


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


def save_answers(plan: Plan) -> str:
    """The applied answers, kept in the deployment's state (0600) so the next run starts from them."""

    a = plan.answers
    dep = Deployment(a.omero.omerodir)
    dep.remember(a.omero.user, a.omero.venv)
    text = a.to_yaml(f"# omerowizard answers of the deployment in {dep.omerodir}: the last applied "
                     "(`omerowizard apply` accepts this file)\n")
    write_private(dep.answers, text)
    return text


def apply_plan(plan: Plan, omero: Omero, emit: Emit, lock_wait: float = 0.0, source: str = "(not said)") -> bool:
    return Applier(plan, omero, emit, lock_wait, source).run()


