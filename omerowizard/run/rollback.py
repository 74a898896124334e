"""`omerowizard rollback`: restore a backup of a deployment (the newest apply's by default), taking its own
backup first so that a rollback can itself be rolled back; `--list` and `--dry-run` change nothing."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import yaml

from omerowizard.catalogue.masking import answer_value
from omerowizard.model.errors import WizardError
from omerowizard.model.events import Emit, Finished, Output, StepDone, StepFailed, StepStarted
from omerowizard.features.application_server import login_url
from omerowizard.plan.changes import bluegreen
from omerowizard.plan.changes.web import web_after_rollback
from omerowizard.run import planning
from omerowizard.run.signals import signals_ignored
from omerowizard.state import probe as probe_mod
from omerowizard.system import backups as backup_mod
from omerowizard.system import platforms
from omerowizard.system import webservers as servercheck
from omerowizard.system.backups import Backup
from omerowizard.system.lock import DeploymentLock
from omerowizard.system.omero import Omero


class RollbackRefused(WizardError):
    exit_code = 1


class AlreadyRestored(RollbackRefused):
    """The backup a rollback would restore was restored by the last rollback, and nothing changed since."""


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
        raise AlreadyRestored(f"Backup {target.id} was already restored by the rollback {m.rolled_back_by} and nothing "
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
    if bluegreen.route_of(target) is not None and m.was_running:
        out.append("  OMERO.web switched back, without downtime, to a master "
                   + (f"in {bluegreen.venv_of(target)} (kept by the upgrade: nothing is reinstalled)"
                      if bluegreen.venv_of(target) != str(omero.target.venv) else "with the restored configuration"))
    elif m.was_running and running:
        out.append("  OMERO.web takes the restored configuration as an apply would: a graceful reload, a change of "
                   "workers or a switch without downtime behind our web server, else a restart that keeps the "
                   "sessions; then its login page is checked")
    else:
        out.append(f"  omero web {'start' if m.was_running else 'stop'}" if (m.was_running or running)
                   else "  OMERO.web stays stopped")
    current = dep.answers.read_text() if dep.answers.exists() else None
    diff = answers_summary(current, m.answers_before)
    out.append("  saved answers: " + ("back to those before that run: " + "; ".join(diff) if diff else "unchanged"))
    return out


def rollback(dep, omero: Omero, emit: Emit, to: str | None = None, dry_run: bool = False) -> bool:
    """`omerowizard rollback`: restore a backup of this deployment (the newest apply by default). It takes
    its own backup first, so a rollback can be rolled back; the saved answers and the file record move
    with it."""
    with DeploymentLock(Path(dep.omerodir)):
        try:
            target = rollback_target(dep, to)
        except AlreadyRestored as exc:  # nothing to do is not a failure
            emit(Finished(True, str(exc), changed=False))
            return True
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
        before = omero.config_read()  # what OMERO.web runs with now: the rollback's change is measured against it
        for e in m.entries:
            e.restored, e.error = False, None
        m.cron_restored = False
        with signals_ignored():
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
            for kind in _system_servers([e.path for e in m.entries]):
                result = servercheck.reload_system(kind)  # a running nginx/Apache serves the restored files
                if result is not None:
                    omero.log.server(result.what, result.ok, result.output)
                    emit(Output("rollback", f"{result.what}: {'done' if result.ok else result.output}"))
            a = planning.saved(dep.omerodir)
            version = probe_mod.probe_deployment(omero).omero_web_version
            try:
                done = web_after_rollback(omero, target, before, bluegreen.route_for(a, version) if a else None,
                                          lambda line: emit(Output("rollback", line)), login_url(a) if a else None)
                emit(Output("rollback", f"OMERO.web: {done}"))
            except WizardError as exc:  # e.g. OMERO.web's log is a FIFO: the files are back all the same; say so
                emit(Output("rollback", str(exc)))
            m.status, m.rolled_back_by = "rolled-back", own.id
            target.save()
            own.finish("done", answers_after=dep.answers.read_text() if dep.answers.exists() else None)
        emit(StepDone("rollback", ", ".join(restored)))
    emit(Finished(True, f"Restored the backup {target.id} of {m.created}. This rollback can itself be undone: "
                        f"`omerowizard rollback --omerodir {dep.omerodir} --to {own.id}`."))
    return True


def _system_servers(paths: list[str]) -> list[str]:
    """The system web servers whose configuration holds one of these paths."""

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
        width = max(shutil.get_terminal_size((80, 24)).columns, 40)
        for h in b.holds():
            out += _wrap(f"holds: {h}", width, "    ", "      ")
        changed = answers_summary(m.answers_before, m.answers_after) if m.answers_after is not None else []
        if changed:  # an answer a line (a list of forty origins is one answer), wrapped to the terminal
            out.append("    answers that run changed:")
            for line in changed:
                out += _wrap(line, width, "      ", "        ")
    return out or [f"No backups of {dep.omerodir}."]


def _wrap(text: str, width: int, first: str, rest: str) -> list[str]:
    return textwrap.wrap(text, width, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False) or [first]


def answers_summary(before: str | None, after: str | None) -> list[str]:
    """The answers a run changed, as "key: old -> new" lines (from the two answers files)."""

    def flat(text: str | None) -> dict:
        try:
            data = yaml.safe_load(text) if text else {}
        except yaml.YAMLError:
            return {}
        out: dict = {}

        def walk(node, prefix=""):
            if isinstance(node, dict):
                for k, v in node.items():
                    walk(v, f"{prefix}{k}.")
            else:
                out[prefix.rstrip(".")] = node
        walk(data if isinstance(data, dict) else {})
        return out

    a, b = flat(before), flat(after)

    def shown(values: dict, k: str) -> str:  # masked by key: whichever run set the secret
        return answer_value(k, values[k]) if k in values else "(default)"

    return [f"{k}: {shown(a, k)} -> {shown(b, k)}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
