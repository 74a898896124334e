"""Backups of everything a run touches, and restoring them.

Before the first change, apply (and rollback) copies config.xml, every file the plan writes, this
deployment's clearsessions line and its saved answers and file record into a timestamped
directory of the deployment's state (``deployments.Deployment.backups``), with a manifest that
says how far the run got. A run that was killed leaves a manifest that says "applying"; a
restore that could not finish (a full disk) leaves "failed-restore" with each item's progress.
The next run finds either and restores what is left before it plans.

Restoring puts back exactly what the run changed: whole files it wrote (through ``safefs``, never
following a link the OMERO.web user planted), and in the crontab only this deployment's managed
line; lines that others added or changed since are kept. Each item is restored on its own: one
that fails is reported and retried by the next run, the others are restored all the same.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import json
import os
import shutil
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path

from omerowizard.model import secrets as masking
from omerowizard.model.errors import ApplyError, WizardError
from omerowizard.system import crontab as cron
from omerowizard.system import hostlock, safefs
from omerowizard.system.deployments import Deployment, write_private
from omerowizard.system.distributions import packages
from omerowizard.system.lock import pid_alive
from omerowizard.system.omero import parse_config_bytes
from omerowizard.system.venv import pip_install, pip_uninstall

KEEP_DEFAULT = 20  # backups kept per deployment (OMEROWIZARD_KEEP_BACKUPS)


class RollbackError(WizardError):
    pass


@dataclass
class Entry:
    path: str
    existed: bool
    copy: str | None = None  # file name inside the backup directory
    owner: str | None = None  # "uid:gid"
    mode: int | None = None
    link_target: str | None = None  # when the path was a symlink
    restored: bool = False
    error: str | None = None


@dataclass
class Manifest:
    created: str
    pid: int
    omerodir: str
    user: str
    venv: str
    was_running: bool
    entries: list[Entry] = field(default_factory=list)
    cron_saved: bool = False  # this deployment's clearsessions line was saved
    cron_line: str | None = None  # ... and was this (None: there was none)
    cron_restored: bool = False
    kind: str = "apply"  # apply | rollback
    status: str = "applying"  # applying | done | restored | failed-restore | rolled-back
    answers_before: str | None = None  # the saved answers when the run started
    answers_after: str | None = None  # the answers the run applied (set when it finished)
    record_before: dict | None = None  # the record of written files when the run started
    restores: str | None = None  # a rollback's backup: the id of the backup it restored
    rolled_back_by: str | None = None  # the id of the rollback that restored this backup
    finished: str | None = None
    extra: dict = field(default_factory=dict)  # what other steps add
    # issue 16: the OMERO.web environment's distributions an upgrade replaces, at their versions before it;
    # restore reinstalls exactly these ({distribution: version}; empty: no upgrade in this run)
    packages: dict[str, str] = field(default_factory=dict)
    packages_restored: bool = False
    # issue 15: every distribution of the environment before a run installed or uninstalled web apps; restore
    # uninstalls what is there now and was not then, and reinstalls what changed ({distribution: version})
    environment: dict[str, str] = field(default_factory=dict)
    environment_restored: bool = False
    # the distributions this run added to the environment (recorded before each pip run from pip's dry run, and
    # after it from what is new): restore uninstalls only these, never one installed by hand since
    added: list[str] = field(default_factory=list)
    find_links: str | None = None  # the sources the run's pip used (apps.find_links): a reinstall uses the same

    def save(self, directory: Path) -> None:
        write_private(directory / "manifest.json", json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, directory: Path) -> "Manifest":
        data = json.loads((directory / "manifest.json").read_text())
        data["entries"] = [Entry(**e) for e in data.get("entries", [])]
        if "crontab" in data:  # the first version saved the whole crontab: keep only what counts now
            data.pop("crontab")
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


class Backup:
    def __init__(self, directory: Path, manifest: Manifest):
        self.directory = directory
        self.manifest = manifest

    @property
    def id(self) -> str:
        return self.directory.name

    @classmethod
    def create(cls, *, deployment: Deployment, user: str, venv: Path | str, was_running: bool,
               paths: list[Path | str], crontab: bool, kind: str = "apply") -> "Backup":
        """Copy what the run will touch. Raises ApplyError (nothing changed yet) when it cannot."""
        deployment.ensure()
        deployment.backups.mkdir(mode=0o700, exist_ok=True)
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        directory = deployment.backups / stamp
        directory.mkdir(mode=0o700)
        m = Manifest(created=stamp, pid=os.getpid(), omerodir=deployment.omerodir, user=user, venv=str(venv),
                     was_running=was_running, kind=kind)
        try:
            seen: set[str] = set()
            for i, p in enumerate(paths):
                if str(p) in seen:
                    continue
                seen.add(str(p))
                m.entries.append(_save(str(p), directory, f"file-{i}"))
            if crontab:
                text = cron.read(user)  # "" when the user has none; None when this process may not read it
                if text is not None:
                    lines = cron.managed_lines(text, deployment.omerodir)
                    m.cron_saved, m.cron_line = True, ("\n".join(lines) if lines else None)
            m.answers_before = deployment.answers.read_text() if deployment.answers.exists() else None
            m.record_before = deployment.record()
            m.save(directory)
        except OSError as exc:
            shutil.rmtree(directory, ignore_errors=True)
            raise ApplyError(f"cannot back up what this run would change ({exc.strerror or exc}): nothing was "
                             f"changed; free space in {deployment.backups}") from None
        return cls(directory, m)

    def record_packages(self, versions: dict[str, str], find_links: str | None = None) -> None:
        """Before an upgrade: the versions to reinstall on restore (saved at once, in case the run is killed),
        and the sources pip installs them from."""
        self.manifest.packages = dict(versions)
        self.manifest.find_links = find_links
        self.save()

    def record_environment(self, versions: dict[str, str], find_links: str | None = None) -> None:
        """Before web apps are installed or uninstalled: the whole environment, to come back to on restore."""
        self.manifest.environment = dict(versions)
        self.manifest.find_links = find_links
        self.save()

    def record_added(self, names: list[str] | set[str]) -> None:
        """Distributions this run adds to the environment (before pip runs: what its dry run said; after: what
        is new), saved at once: a restore uninstalls these and nothing else."""
        new = sorted(set(self.manifest.added) | {n for n in names if n not in self.manifest.environment})
        if new != self.manifest.added:
            self.manifest.added = new
            self.save()

    def save(self) -> None:
        self.manifest.save(self.directory)

    def finish(self, status: str = "done", answers_after: str | None = None) -> None:
        self.manifest.status = status
        self.manifest.finished = _dt.datetime.now().isoformat(timespec="seconds")
        if answers_after is not None:
            self.manifest.answers_after = answers_after
        self.save()

    # -- restoring ---------------------------------------------------------------------------
    def restore(self) -> tuple[list[str], list[str]]:
        """Put back every saved thing that is not back yet. Returns (restored, failed), one line each;
        never stops at the first failure. The manifest records each item's progress."""
        restored: list[str] = []
        failed: list[str] = []
        m = self.manifest
        try:
            with hostlock.held("the restore of the web-server files and the crontab"):  # the host's, shared
                self._restore_files_and_cron(restored, failed)
        except hostlock.HostLockError as exc:
            failed.append(str(exc))
        if m.packages and not m.packages_restored:

            pins = [f"{name}=={version}" for name, version in sorted(m.packages.items())]
            try:
                pip_install(Path(m.venv), pins, find_links=m.find_links)
                m.packages_restored = True
                restored.append("packages " + ", ".join(pins))
            except (OSError, WizardError) as exc:
                failed.append(f"packages {', '.join(pins)}: {exc}")
        if m.environment and not m.environment_restored:
            try:
                restored += restore_environment(Path(m.venv), m.environment, m.added, m.find_links)
                m.environment_restored = True
            except (OSError, WizardError) as exc:
                failed.append(f"the packages of {m.venv}: {exc}")
        m.status = "failed-restore" if failed else "restored"
        self._save_quietly()
        return restored, failed

    def _restore_files_and_cron(self, restored: list[str], failed: list[str]) -> None:
        for e in self.manifest.entries:
            if e.restored:
                continue
            try:
                _restore(e, self.directory)
                e.restored, e.error = True, None
                restored.append(e.path + ("" if e.existed else " (removed: it did not exist before)"))
            except (OSError, WizardError) as exc:
                e.error = str(exc)
                failed.append(f"{e.path}: {exc}")
            self._save_quietly()
        m = self.manifest
        if m.cron_saved and not m.cron_restored:
            try:
                cron.restore_line(m.user, m.omerodir, m.cron_line)
                m.cron_restored = True
                restored.append(f"clearsessions line in the crontab of {m.user}")
            except (OSError, WizardError) as exc:
                failed.append(f"crontab of {m.user}: {exc}")

    def restore_state(self, deployment: Deployment) -> None:
        """The saved answers and the file record as they were when this backup was taken."""
        m = self.manifest
        if m.answers_before is None:
            deployment.answers.unlink(missing_ok=True)
        else:
            write_private(deployment.answers, m.answers_before)
        deployment.save_record(m.record_before or {})

    def _save_quietly(self) -> None:
        try:
            self.save()
        except OSError:
            pass  # a full disk: the next run finds the older manifest and restores again (idempotent)

    # -- describing ------------------------------------------------------------------------------
    def holds(self) -> list[str]:
        m = self.manifest
        out = [e.path + ("" if e.existed else " (absent)") + (f" -> {e.link_target}" if e.link_target else "")
               for e in m.entries]
        if m.cron_saved:
            out.append(f"clearsessions line of {m.user}: {m.cron_line or '(none)'}")
        return out

    def restore_lines(self) -> list[str]:
        """What restoring this backup would change now (the plan of a rollback)."""
        out: list[str] = []
        for e in self.manifest.entries:
            now = _current(e.path)
            if e.link_target is not None:
                if now != ("link", e.link_target):
                    out.append(f"  link    {e.path} -> {e.link_target}")
            elif not e.existed:
                if now is not None:
                    out.append(f"  remove  {e.path} (it did not exist before)")
            else:
                before = (self.directory / (e.copy or "")).read_bytes()
                if now != ("file", before):
                    out.append(f"  restore {e.path}")
                    out += _config_diff(e.path, now, before)
        m = self.manifest
        if m.cron_saved:
            text = cron.read(m.user) or ""
            lines = cron.managed_lines(text, m.omerodir)
            if ("\n".join(lines) or None) != m.cron_line:
                out.append(f"  crontab of {m.user}: clearsessions line {('-> ' + m.cron_line) if m.cron_line else 'removed'}")
        return out


def _current(path: str):
    st = safefs.lstat(path)
    if st is None:
        return None
    if stat.S_ISLNK(st.st_mode):
        return ("link", safefs.readlink(path))
    try:
        return ("file", safefs.read_bytes(path))
    except (OSError, WizardError):
        return ("other", None)


def _config_diff(path: str, now, before: bytes) -> list[str]:
    if not path.endswith("config.xml"):
        return []

    old = parse_config_bytes(now[1]) if now and now[0] == "file" and now[1] is not None else {}
    new = parse_config_bytes(before) or {}
    old = old or {}
    out = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            a = masking.config_value(key, old[key]) if key in old else "(unset)"
            b = masking.config_value(key, new[key]) if key in new else "(unset)"
            out.append(f"      {key}: {a} -> {b}")
    return out


def _save(path: str, directory: Path, name: str) -> Entry:
    st = safefs.lstat(path)
    if st is None:
        return Entry(path, False)
    if stat.S_ISLNK(st.st_mode):
        return Entry(path, True, link_target=safefs.readlink(path))
    if not stat.S_ISREG(st.st_mode):
        raise ApplyError(f"{path} is not a regular file: nothing was changed")
    data = safefs.read_bytes(path)
    assert data is not None
    fd = os.open(directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return Entry(path, True, copy=name, owner=f"{st.st_uid}:{st.st_gid}", mode=st.st_mode & 0o7777)


def _restore(e: Entry, directory: Path) -> None:
    if not e.existed:
        safefs.unlink(e.path)
        return
    if e.link_target is not None:
        safefs.symlink(e.link_target, e.path)
        return
    assert e.copy is not None
    data = (directory / e.copy).read_bytes()
    ids = tuple(int(x) for x in e.owner.split(":")) if e.owner and os.geteuid() == 0 else None
    safefs.write_bytes(e.path, data, e.mode if e.mode is not None else 0o644, ids=ids)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- finding backups
def all_backups(deployment: Deployment) -> list[Backup]:
    """This deployment's backups, newest first."""
    if not deployment.backups.is_dir():
        return []
    out = []
    for d in sorted(deployment.backups.iterdir(), reverse=True):
        try:
            out.append(Backup(d, Manifest.load(d)))
        except (ValueError, TypeError, OSError, KeyError):
            continue
    return out


def find(deployment: Deployment, backup_id: str) -> Backup | None:
    return next((b for b in all_backups(deployment) if b.id == backup_id), None)


def unfinished(deployment: Deployment) -> list[Backup]:
    """Backups of runs that did not finish: killed mid-apply ("applying" with a dead pid) or whose
    restore stopped part-way ("failed-restore"); newest first."""
    out = []
    for b in all_backups(deployment):
        m = b.manifest
        if m.status == "failed-restore":
            out.append(b)
        elif m.status == "applying" and (m.pid == os.getpid() or not pid_alive(m.pid)):  # own pid: an earlier process's
            out.append(b)
    return out


def prune(deployment: Deployment, keep: int | None = None) -> list[str]:
    """Remove all but the newest ``keep`` finished backups; unfinished ones are never removed."""
    if keep is None:
        try:
            keep = int(os.environ.get("OMEROWIZARD_KEEP_BACKUPS", KEEP_DEFAULT))
        except ValueError:
            keep = KEEP_DEFAULT
    keep = max(keep, 1)
    finished = [b for b in all_backups(deployment) if b.manifest.status in {"done", "restored", "rolled-back"}]
    removed = []
    for b in finished[keep:]:
        shutil.rmtree(b.directory, ignore_errors=True)
        removed.append(b.id)
    return removed


def unified(path: str, old: str, new: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), f"{path} (now)",
                                        f"{path} (restored)"))


def restore_environment(venv: Path, before: dict[str, str], added_by_run: list[str] | None = None,
                        find_links: str | None = None) -> list[str]:
    """Bring the environment back to the distributions ``before``: uninstall those the run recorded as added
    (``added_by_run``; one installed by hand since stays), reinstall (without their dependencies, which are
    restored the same way) those removed or changed, from the sources the run used."""

    now = packages(venv)
    added = sorted(n for n in (added_by_run or ()) if n in now and n not in before)
    changed = sorted(f"{n}=={v}" for n, v in before.items() if now.get(n) != v)
    out = []
    if added:
        pip_uninstall(venv, added)
        out.append("uninstalled " + ", ".join(f"{n} {now[n]}" for n in added))
    if changed:
        pip_install(venv, changed, extra=["--no-deps"], find_links=find_links)
        out.append("reinstalled " + ", ".join(changed))
    return out
