"""Backups of everything a plan touches, and restoring them.

Before the first change, apply copies config.xml, every file the plan writes, and the
OMERO.web user's crontab into a timestamped directory under the state directory, with a
manifest that says whether the run finished. A run that was killed leaves an unfinished
manifest; the next run finds it and restores it before doing anything else.
``omerowizard rollback`` restores the newest backup on request.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from omerowizard import cron, locations
from omerowizard.errors import WizardError


class RollbackError(WizardError):
    pass


@dataclass
class Entry:
    path: str
    existed: bool
    copy: str | None = None  # file name inside the backup directory
    owner: str | None = None
    mode: int | None = None
    link_target: str | None = None  # when the path was a symlink


@dataclass
class Manifest:
    created: str
    pid: int
    omerodir: str
    user: str
    venv: str
    was_running: bool
    entries: list[Entry] = field(default_factory=list)
    crontab: str | None = None  # file name of the saved crontab (None: not saved)
    status: str = "applying"  # applying | done | restored | failed-restore
    # issue 16: the OMERO.web environment's distributions an upgrade replaces, at their versions before it;
    # restore reinstalls exactly these ({distribution: version}; empty: no upgrade in this run)
    packages: dict[str, str] = field(default_factory=dict)

    def save(self, directory: Path) -> None:
        tmp = directory / "manifest.json.tmp"
        tmp.write_text(json.dumps(asdict(self), indent=2))
        os.replace(tmp, directory / "manifest.json")

    @classmethod
    def load(cls, directory: Path) -> "Manifest":
        data = json.loads((directory / "manifest.json").read_text())
        data["entries"] = [Entry(**e) for e in data.get("entries", [])]
        return cls(**data)


def backups_root() -> Path:
    root = locations.state_dir() / "backups"
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    return root


class Backup:
    def __init__(self, directory: Path, manifest: Manifest):
        self.directory = directory
        self.manifest = manifest

    @classmethod
    def create(cls, *, omerodir: Path, user: str, venv: Path, was_running: bool, paths: list[Path],
               crontab: bool) -> "Backup":
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        directory = backups_root() / stamp
        directory.mkdir(mode=0o700)
        m = Manifest(created=stamp, pid=os.getpid(), omerodir=str(omerodir), user=user, venv=str(venv),
                     was_running=was_running)
        seen = set()
        for i, p in enumerate(paths):
            if str(p) in seen:
                continue
            seen.add(str(p))
            m.entries.append(_save(p, directory, f"file-{i}"))
        if crontab:
            text = cron.read(user)  # "" when the user has none; None when this process may not read it
            if text is not None:
                (directory / "crontab").write_text(text)
                m.crontab = "crontab"
        m.save(directory)
        return cls(directory, m)

    def record_packages(self, versions: dict[str, str]) -> None:
        """Before an upgrade: the versions to reinstall on restore (saved at once, in case the run is killed)."""
        self.manifest.packages = dict(versions)
        self.manifest.save(self.directory)

    def finish(self, status: str = "done") -> None:
        self.manifest.status = status
        self.manifest.save(self.directory)

    def restore(self) -> list[str]:
        """Put every saved thing back; returns what was restored (for the report)."""
        restored: list[str] = []
        for e in self.manifest.entries:
            _restore(e, self.directory)
            restored.append(e.path + ("" if e.existed else " (removed: it did not exist before)"))
        if self.manifest.crontab:
            cron.write(self.manifest.user, (self.directory / self.manifest.crontab).read_text())
            restored.append(f"crontab of {self.manifest.user}")
        if self.manifest.packages:
            from omerowizard.venv import pip_install

            pins = [f"{name}=={version}" for name, version in sorted(self.manifest.packages.items())]
            pip_install(Path(self.manifest.venv), pins)
            restored.append("packages " + ", ".join(pins))
        self.finish("restored")
        return restored


def _save(path: Path, directory: Path, name: str) -> Entry:
    if path.is_symlink():
        return Entry(str(path), True, link_target=os.readlink(path))
    if not path.exists():
        return Entry(str(path), False)
    st = path.stat()
    shutil.copy2(path, directory / name)
    return Entry(str(path), True, copy=name, owner=f"{st.st_uid}:{st.st_gid}", mode=st.st_mode & 0o7777)


def _restore(e: Entry, directory: Path) -> None:
    path = Path(e.path)
    if not e.existed:
        if path.is_symlink() or path.is_file():
            path.unlink()
        return
    if e.link_target is not None:
        if path.is_symlink() or path.exists():
            path.unlink()
        path.symlink_to(e.link_target)
        return
    assert e.copy is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.omerowizard-restore")
    shutil.copy2(directory / e.copy, tmp)
    if e.owner and os.geteuid() == 0:
        uid, gid = (int(x) for x in e.owner.split(":"))
        os.chown(tmp, uid, gid)
    if e.mode is not None:
        os.chmod(tmp, e.mode)
    os.replace(tmp, path)


def all_backups() -> list[Path]:
    return sorted((p for p in backups_root().iterdir() if (p / "manifest.json").exists()), reverse=True)


def latest(omerodir: Path | None = None, status: set[str] | None = None) -> Backup | None:
    for directory in all_backups():
        try:
            m = Manifest.load(directory)
        except (ValueError, TypeError, OSError):
            continue
        if omerodir is not None and m.omerodir != str(omerodir):
            continue
        if status is not None and m.status not in status:
            continue
        return Backup(directory, m)
    return None


def interrupted(omerodir: Path) -> Backup | None:
    """The backup of a run on this deployment that died mid-apply (its manifest still says applying)."""
    b = latest(omerodir)
    if b is None or b.manifest.status != "applying":
        return None
    try:
        os.kill(b.manifest.pid, 0)
    except ProcessLookupError:
        return b  # its process is gone: it was killed before it could finish or restore
    except PermissionError:
        pass
    return None  # still running (the lock keeps us apart)
