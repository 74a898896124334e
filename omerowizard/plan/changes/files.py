"""Web-server files (and Debian's sites-enabled links): written atomically, checked by the server, reloaded.

``apply_files`` writes each file through safefs (no link followed, random O_EXCL temporary name), runs the
server's own check, restores every file it wrote when a check fails, and reloads a running server only after
the checks passed, all under the host-wide lock (the system server's directories and reload are the host's).
What this process may not write (not root, or Windows files made on Unix) goes to a staging directory, with
the exact commands an administrator runs. The run's backup holds the previous versions; a failed run
restores them, and the system web servers are reloaded with them (``undo``).
"""

from __future__ import annotations

import difflib
import hashlib
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from omerowizard.features.web_server import site as sitefiles
from omerowizard.model.change import Kind, Run
from omerowizard.model.errors import ApplyError, WizardError
from omerowizard.model.secrets import mask_text
from omerowizard.state.probe import staging_dir, staging_path
from omerowizard.system import hostlock, platforms, safefs
from omerowizard.system import webservers as servercheck
from omerowizard.system.deployments import Deployment
from omerowizard.system.omero import CommandLog

Say = Callable[[str], None]


# ---------------------------------------------------------------------------- the record of written files
def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------------------- applying files
def atomic_write(path: Path, data: bytes, mode: int, owner: str | None = None, owner_root: str | None = None) -> None:
    """Replace ``path`` (safefs: no link followed, random O_EXCL temp name, fchown/fchmod); missing
    directories below ``owner_root`` (OMERODIR) are created for ``owner``."""
    safefs.write_bytes(str(path), data, mode, owner=owner, create_below=owner_root)


def _makedirs(directory: Path, owner: str | None, owner_root: str | None) -> None:
    """Create missing directories; those below ``owner_root`` (OMERODIR) belong to ``owner``."""
    safefs.makedirs(str(directory), owner, owner_root)


def encode(text: str, encoding: str) -> bytes:
    if encoding == "utf-16":
        return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-16")  # BOM + little-endian
    return text.encode(encoding)


class _Written:
    """What apply_files changed, so a failed check can put it all back."""

    def __init__(self) -> None:
        self.undo: list[Callable[[], None]] = []

    def restore(self, say: Say) -> None:
        for undo in reversed(self.undo):
            undo()
        say("restored the previous files")


STEP = "write web-server files"


def apply(changes: Sequence[FileChange], run: Run) -> None:
    with run.step(STEP):
        apply_files(run.plan, lambda line: run.say(STEP, line), run.omero.log, changes)


def backup_paths(changes: Sequence[FileChange], plan: Any) -> list[str]:
    out = []
    for f in changes:
        if not f.staged:
            out.append(f.path)
            if f.link:
                out.append(f.link)
    return out


def undo(changes: Sequence[FileChange], run: Run) -> None:
    """After the backup put the files back: a system nginx or Apache reloaded with the new ones serves the
    restored ones again."""
    kinds = {f.check for f in changes if f.system and f.check in {"nginx", "apache"}}
    for kind in sorted(kinds):
        result = servercheck.reload_system(kind)
        if result is not None:
            run.say("restore", f"{result.what}: {'done' if result.ok else result.output}")


KIND = Kind("files", "Files", order=40, shown=40, steps=lambda changes: [STEP], apply=apply,
            backup_paths=backup_paths, undo=undo)


def apply_files(plan: Any, say: Say, log: CommandLog | None = None,
                files: Sequence[FileChange] | None = None) -> None:
    log = log or CommandLog()
    a = plan.answers
    files = plan.files if files is None else files
    direct = [f for f in files if not f.staged]
    staged = [f for f in files if f.staged]
    written = _Written()
    # the system web server's directories, its check and reload, Debian's default site link and the systemd units
    # are the host's, shared by every deployment: written, checked and reloaded by one run at a time
    with hostlock.held("the web-server files"):
        try:
            for f in direct:
                _write_one(f, a.omero.omerodir, written, say, log)
            _check_all(plan, direct, say)
        except ApplyError:
            written.restore(say)
            log.change("a check failed: restored the files written before it")
            raise
        except (OSError, WizardError) as exc:
            written.restore(say)
            raise ApplyError(f"writing the web-server files failed: {exc}") from exc
        _update_record(Deployment(a.omero.omerodir), direct)
        _reload(plan, direct, say, log)
    if staged:
        _stage(plan, staged, say, log)


def _write_one(f: FileChange, omerodir: str, written: _Written, say: Say, log: CommandLog) -> None:
    """Write (or remove) one file and its link; apply's backup already holds the previous versions,
    and ``written`` can undo this step alone when the server's check fails."""
    path = f.path
    if f.link_only:  # disable a site: remove its link, never the file it points to
        before = safefs.readlink(path)
        if before is not None:
            safefs.unlink(path)
            written.undo.append(lambda: safefs.symlink(before, path))
            log.linked(f.path, None)
            say(f"disabled {f.path} (removed its link to {before})")
        return
    previous = safefs.read_bytes(path)
    if previous is not None:
        mode = safefs.lstat(path).st_mode & 0o777  # type: ignore[union-attr]
        written.undo.append(lambda: safefs.write_bytes(path, previous, mode, owner=f.owner))
    else:
        written.undo.append(lambda: safefs.unlink(path))
    if f.new is None:
        safefs.unlink(path)
        log.removed(f.path)
        say(f"removed {f.path}")
    else:
        atomic_write(Path(path), encode(f.new, f.encoding), f.mode, f.owner, omerodir)
        log.wrote(f.path, f.mode, f.owner)
        say(f"wrote {f.path}")
    if f.link:
        before = safefs.readlink(f.link)
        if f.new is None:
            if before == f.path:
                safefs.unlink(f.link)
                log.linked(f.link, None)
                say(f"removed the link {f.link}")
        elif before != f.path:
            safefs.symlink(f.path, f.link)
            log.linked(f.link, f.path)
            say(f"linked {f.link} -> {f.path}")

        def undo_link(link=f.link, before=before) -> None:
            if before is not None:
                safefs.symlink(before, link)
            else:
                safefs.unlink(link)
        written.undo.append(undo_link)


def _check_all(plan: Any, files: list[FileChange], say: Say) -> None:
    a = plan.answers
    for f in files:
        if f.new is None or f.check is None:
            continue
        if f.check == "nginx":
            results = servercheck.check_nginx(f.path, f.system)
        elif f.check == "apache":
            if f.system and f.modules and platforms.distribution() == "debian":
                enabled = servercheck.enable_apache_modules(f.modules)
                if enabled is not None:
                    say(f"{enabled.what}: {'done' if enabled.ok else enabled.output}")
            results = servercheck.check_apache(f.path, f.system, f.modules)
        elif f.check == "nginx-development":
            site = sitefiles.site_of(a, f.path)
            for d in (site.log_dir, site.run_dir):
                _makedirs(Path(d), a.omero.user, a.omero.omerodir)
            results = servercheck.check_nginx_development(f.path, a.omero.user, site.log_dir)
        elif f.check == "systemd":
            results = servercheck.check_systemd(f.path)
        else:
            continue
        for r in results:
            if not r.ran:
                say(r.what)
                plan.notes.append(r.what + f" ({f.path})")
            elif r.ok:
                say(f"{r.what}: ok")
            else:
                raise ApplyError(f"{r.what} failed, so the previous files were restored:\n{r.output}")


def _reload(plan: Any, files: list[FileChange], say: Say, log: CommandLog) -> None:
    a = plan.answers
    kinds = {f.check for f in files if f.system and f.check in {"nginx", "apache"}}
    for kind in sorted(kinds):
        r = servercheck.reload_system(kind)
        if r is not None:
            log.server(r.what, r.ok, r.output)
        if r is None:
            say(f"{kind} is not running: nothing to reload")
        elif not r.ok:
            raise ApplyError(f"{r.what} failed after the check passed:\n{r.output}")
        else:
            say(f"{r.what}: done")
    for f in files:
        if f.check == "nginx-development" and f.new is not None:
            site = sitefiles.site_of(a, f.path)
            r = servercheck.reload_development(f.path, a.omero.user, site.log_dir, site.run_dir)
            if r is not None:
                log.server(r.what, r.ok, r.output)
                if not r.ok:
                    raise ApplyError(f"{r.what} failed:\n{r.output}")
                say(f"{r.what}: done")
        if f.check == "systemd" and f.new is not None and Path("/run/systemd/system").exists():
            systemctl = servercheck.which("systemctl")
            if systemctl:
                r = servercheck._run([systemctl, "daemon-reload"], "systemctl daemon-reload")
                log.server(r.what, r.ok, r.output)
                say("systemctl daemon-reload: done")


def _update_record(dep: Deployment, files: list[FileChange]) -> None:
    data = dep.record()
    for f in files:
        if f.new is None:
            data.pop(f.path, None)
        else:
            data[f.path] = {"sha256": _digest(f.new), "link": f.link, "check": f.check, "system": f.system}
    dep.save_record(data)


def admin_commands(plan: Any, files: list[FileChange]) -> list[str]:
    """The exact commands an administrator runs to install the staged files."""
    out: list[str] = []
    windows = plan.answers.platform == "windows"
    for f in files:
        src = staging_path(f.path)
        if windows:
            out.append(f"copy {src} (from this machine) to {f.path} on the Windows host" if f.new is not None
                       else f"del \"{f.path}\"")
        elif f.new is None:
            out.append(f"rm -f {shlex.quote(f.path)}" + (f" {shlex.quote(f.link)}" if f.link else ""))
        else:
            out.append(f"install -D -m {f.mode:o} {shlex.quote(str(src))} {shlex.quote(f.path)}")
            if f.owner:
                out.append(f"chown {shlex.quote(f.owner)} {shlex.quote(f.path)}")
            if f.link:
                out.append(f"ln -sfn {shlex.quote(f.path)} {shlex.quote(f.link)}")
        out += list(f.commands)
    checks = {f.check for f in files if f.system}
    if "apache" in checks:
        mods = sorted({m for f in files for m in f.modules})
        if platforms.distribution() == "debian" and mods:
            out.append(f"a2enmod {' '.join(mods)}")
        layout = platforms.server_layout("apache")
        out.append(f"{layout.ctl} -t && {layout.ctl} graceful")
    if "nginx" in checks:
        out.append("nginx -t && nginx -s reload")
    if "systemd" in {f.check for f in files}:
        out.append("systemctl daemon-reload")
    return out


def _stage(plan: Any, files: list[FileChange], say: Say, log: CommandLog | None = None) -> None:
    log = log or CommandLog()
    for f in files:
        if f.new is None:
            continue
        dest = staging_path(f.path)
        atomic_write(dest, encode(f.new, f.encoding), 0o644)
        log.wrote(str(dest), 0o644)
        say(f"staged {f.path} as {dest}")
    commands = admin_commands(plan, files)
    head = ("On the Windows host, as an administrator:" if plan.answers.platform == "windows"
            else "This process may not write these files. As root, run:")
    (staging_dir() / "INSTALL.txt").write_text("\n".join([head, *commands]) + "\n")
    say(head)
    for c in commands:
        say(f"  {c}")


@dataclass(frozen=True)
class FileChange:
    """Write (or remove, when ``new`` is None) one file, checked by ``check`` before it counts."""

    path: str
    old: str | None
    new: str | None
    why: str
    mode: int = 0o644
    link: str | None = None  # a symlink to create pointing at path (Debian sites-enabled)
    staged: bool = False  # written to the staging directory for an administrator to install
    encoding: str = "utf-8"
    check: str | None = None  # the server check that proves it: nginx | apache | nginx-development | systemd
    system: bool = False  # part of the system server's configuration: checked whole, reloaded when running
    commands: tuple[str, ...] = ()  # what an administrator runs after installing it (IIS, Task Scheduler)
    owner: str | None = None  # new directories and the file belong to this user (files inside OMERODIR)
    modules: tuple[str, ...] = ()  # Apache modules the file needs
    adopted: bool = False  # the file exists but no run of this deployment wrote it
    link_only: bool = False  # path is a link (a site enabled in sites-enabled, ``old`` its target): only the link
    #                          is removed, and the backup and undo put the same link back

    kind: ClassVar[Kind] = KIND

    def title(self) -> str:
        return self.describe()

    def details(self) -> tuple[str, ...]:
        return ()

    def values(self) -> None:
        return None

    @property
    def action(self) -> str:
        if self.link_only:
            return "disable"
        if self.new is None:
            return "remove"
        return "create" if self.old is None else ("link" if self.old == self.new else "update")

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "action": self.action, "describe": self.describe(), "why": self.why,
                "staged": self.staged, "link": self.link, "before": _masked(self.old), "after": _masked(self.new),
                "diff": mask_text(self.diff())}

    def describe(self) -> str:
        if self.link_only:
            return f"disable {self.path}: remove its link to {self.old}, the file stays ({self.why})"
        verb = "remove" if self.new is None else ("create" if self.old is None else "update")
        if self.new is not None and self.old == self.new:
            verb = "link"
        if self.adopted:
            return f"replace {self.path}: no run of this deployment wrote it, {origin(self.old)} (kept in the backup) " \
                   f"({self.why})"
        staged = " [staged for an administrator]" if self.staged else ""
        return f"{verb} {self.path} ({self.why}){staged}"

    def diff(self) -> str:
        if self.link_only:
            return f"--- {self.path} (now: a link to {self.old})\n+++ {self.path} (planned: no link)\n"
        return "".join(difflib.unified_diff((self.old or "").splitlines(True), (self.new or "").splitlines(True),
                                            fromfile=f"{self.path} (now)", tofile=f"{self.path} (planned)"))


def origin(content: str | None) -> str:
    """Who wrote a file that no run of this deployment recorded, as far as its header says (the templates' first
    lines say "written by omerowizard"); the deployment whose record holds it is named by the plan instead."""
    head = "\n".join((content or "").splitlines()[:3]).lower()
    if "written by omerowizard" in head:
        return "it was written by omerowizard for another deployment (no deployment of this host records it now)"
    return "omerowizard did not write it"


def _masked(text: str | None) -> str | None:
    return None if text is None else mask_text(text)

