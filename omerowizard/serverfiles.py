"""Web-server files and scheduled jobs: planned as differences, applied safely.

``plan_files`` compares the files the answers ask for (``sitefiles``) with what is on disk,
and the clearsessions line (``cron``) with the OMERO.web user's crontab; equal gives nothing.
``apply_files`` writes atomically, keeps the previous version as a backup, runs the server's
own check, restores every file it wrote when a check fails, and reloads a running server only
after the checks passed. What this process may not write (not root, or Windows files made on
Unix) goes to a staging directory, with the exact commands an administrator runs.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import stat
from collections.abc import Callable
from pathlib import Path, PurePosixPath, PureWindowsPath

from omerowizard import cron, hostlock, locations, platforms, safefs, servercheck, sitefiles
from omerowizard.deployments import Deployment, owner_of
from omerowizard.errors import AnswersError, ApplyError, Problem, WizardError
from omerowizard.omero import CommandLog
from omerowizard.plan import FileChange, JobChange, Plan

Say = Callable[[str], None]


# ---------------------------------------------------------------------------- planning
def plan_files(plan: Plan) -> None:
    a, state = plan.answers, plan.state
    default_server, default_changes = _plan_default_site(plan)
    try:
        wanted = sitefiles.wanted_files(a, state.omero_web_version, plan.notes, default_server=default_server)
    except sitefiles.NoTaskTrigger:
        raise AnswersError([Problem("sessions.clearsessions",
                                    f"{a.sessions.clearsessions!r} has no Task Scheduler equivalent on Windows",
                                    allowed="daily | hourly | off | 'M H * * *' | 'M * * * *'")]) from None
    native = platforms.native(a)
    dep = Deployment(a.omero.omerodir)
    record = dep.record()
    for w in wanted:
        staged = not native or not writable(w.path)
        if w.path in state.files:  # already probed (or given by a test)
            old = state.files[w.path]
        else:
            try:
                old = read_text(staging_path(w.path) if not native else Path(w.path), w.encoding)
            except IsADirectoryError:
                plan.refusals.append(f"{w.path} is a directory: set web_server.config_path to a file path")
                continue
            except WizardError as exc:
                plan.refusals.append(str(exc))
                continue
            state.files[w.path] = old
        if old == w.content and link_ok(w):
            continue
        adopted = False
        if native and not staged:
            other = owner_of(w.path, dep)
            if other is not None:
                plan.refusals.append(f"{w.path} belongs to the deployment in {other.omerodir} (its runs wrote it): "
                                     "choose another web_server.config_path for this one")
                continue
            if old is not None and w.path not in record:
                if not a.web_server.replace_existing:
                    plan.refusals.append(f"{w.path} exists and omerowizard did not write it: set "
                                         "web_server.replace_existing: true to replace it (the backup keeps it), or "
                                         "choose another web_server.config_path")
                adopted = True
        plan.files.append(FileChange(w.path, old, w.content, w.why, w.mode, w.link, staged, w.encoding, w.check,
                                     w.system, w.commands, w.owner, w.modules, adopted=adopted))
    plan.files += default_changes
    if native:
        _plan_removals(plan, {w.path for w in wanted}, record)
    _plan_job(plan)


def _plan_default_site(plan: Plan) -> tuple[bool, list[FileChange]]:
    """Which site answers requests by IP address or unknown names on OMERO.web's ports (the default site).

    With ``web_server.default_site``, Debian's stock default site on the same port is disabled (its
    sites-enabled link only, a change that apply backs up and rollback restores) and, for nginx, OMERO.web's
    site says ``default_server``; another site that already holds the port is left alone and named in a note.
    Returns (render default_server, the link changes)."""
    a = plan.answers
    ws = a.web_server
    if a.platform != "unix" or ws.kind not in {"nginx", "apache"} or not platforms.native(a):
        return False, []
    place = platforms.web_server_file(a)
    if place is None or not place.system:
        return False, []  # a file an administrator includes by hand: it must not claim default_server there
    ports = sorted({ws.port} | ({ws.https.port} if ws.https else set()))
    stock = platforms.stock_site(ws.kind)
    changes: list[FileChange] = []
    disabled = None
    if stock and os.path.islink(stock.link) and set(ports) & set(stock.ports):
        if ws.default_site:
            disabled = stock.link
            changes.append(FileChange(
                stock.link, os.readlink(stock.link), None,
                f"Debian's stock default site answers port {', '.join(map(str, sorted(set(ports) & set(stock.ports))))} "
                "by IP address, by other names and over IPv6: OMERO.web is to be the default site (web_server.default_site)",
                staged=not writable(stock.link), check=ws.kind, system=True, link_only=True))
    own = place.link or place.path
    holders = sorted({h for port in ports for h in platforms.default_site_holders(ws.kind, port, own)} - {disabled})
    via = "nginx" if ws.kind == "nginx" else "Apache"
    if holders:
        if ws.default_site:
            plan.notes.append(f"{', '.join(holders)} is already the default site of port {', '.join(map(str, ports))} "
                              f"in {via}: OMERO.web answers there only to {ws.server_name}. Disable that site (or its "
                              "default_server) to make OMERO.web the default site; omerowizard leaves it alone.")
        else:
            plan.notes.append(f"web_server.default_site is false: requests to port {', '.join(map(str, ports))} by IP "
                              f"address or another name reach {', '.join(holders)}, not OMERO.web; browsers must use "
                              f"{ws.server_name}.")
    return ws.default_site and ws.kind == "nginx" and not holders, changes


def link_ok(w) -> bool:
    return w.link is None or safefs.readlink(w.link) == w.path


def read_text(path: Path, encoding: str = "utf-8") -> str | None:
    """A file's text, read without following a link planted where another user can write
    (UnsafePath names it); None when it is missing. IsADirectoryError for a directory."""
    st = safefs.lstat(str(path))
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(str(path))
    try:
        data = safefs.read_bytes(str(path))
    except (FileNotFoundError, NotADirectoryError):
        return None
    if data is None:
        return None
    try:
        return data.decode(encoding).replace("\r\n", "\n") if encoding == "utf-16" else data.decode(encoding)
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace")


def writable(path: str) -> bool:
    """May this process write ``path`` (and its link)? Root may; others need the nearest existing directory."""
    if os.geteuid() == 0:
        return True
    p = Path(path)
    if p.exists():
        return os.access(p, os.W_OK) and os.access(p.parent, os.W_OK)
    parent = p.parent
    while not parent.exists():
        parent = parent.parent
    return os.access(parent, os.W_OK | os.X_OK)


def _plan_removals(plan: Plan, wanted: set[str], record: dict[str, dict]) -> None:
    """Files an earlier run of this deployment wrote that these answers no longer ask for (e.g.
    nginx -> apache). Only this deployment's record counts: another deployment's files are never
    touched."""
    for path, entry in record.items():
        if path in wanted:
            continue
        try:
            current = read_text(Path(path))
        except (OSError, WizardError) as exc:
            plan.notes.append(f"{path} was written by an earlier run and cannot be read now ({exc}): left in place.")
            continue
        if current is None:
            continue
        if _digest(current) != entry.get("sha256"):
            plan.notes.append(f"{path} was written by an earlier run and edited since: left in place.")
            continue
        plan.files.append(FileChange(path, current, None, "no longer needed with these answers",
                                     link=entry.get("link"), staged=not writable(path),
                                     check=entry.get("check"), system=bool(entry.get("system"))))


def _plan_job(plan: Plan) -> None:
    a = plan.answers
    if a.platform != "unix":
        return
    new = cron.wanted_line(a)
    user = a.omero.user
    try:
        text = plan.state.crontab if plan.state.crontab is not None else cron.read(user)
    except ApplyError as exc:
        plan.notes.append(f"clearsessions: {exc}")
        text = None
    plan.state.crontab = text
    if text is None:
        if new is not None:
            plan.jobs.append(JobChange(user, None, new, cron.why(a), staged=True))
            plan.notes.append(f"cannot edit the crontab of {user} from here: the line is printed for an administrator.")
        return
    lines = cron.managed_lines(text, a.omero.omerodir)
    old = "\n".join(lines) if lines else None
    if old != new:
        plan.jobs.append(JobChange(user, old, new, cron.why(a)))


# ---------------------------------------------------------------------------- the record of written files
def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------------------- applying files
def staging_dir() -> Path:
    return locations.state_dir() / "staging"


def staging_path(path: str) -> Path:
    if path.startswith("/"):
        return staging_dir() / PurePosixPath(path).relative_to("/")
    win = PureWindowsPath(path)
    return staging_dir().joinpath(win.drive.rstrip(":"), *win.parts[1:])


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


def apply_files(plan: Plan, say: Say, log: CommandLog | None = None) -> None:
    log = log or CommandLog()
    a = plan.answers
    direct = [f for f in plan.files if not f.staged]
    staged = [f for f in plan.files if f.staged]
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


def _check_all(plan: Plan, files: list[FileChange], say: Say) -> None:
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


def _reload(plan: Plan, files: list[FileChange], say: Say, log: CommandLog) -> None:
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


def admin_commands(plan: Plan, files: list[FileChange]) -> list[str]:
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


def _stage(plan: Plan, files: list[FileChange], say: Say, log: CommandLog | None = None) -> None:
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


# ---------------------------------------------------------------------------- applying jobs
def apply_jobs(plan: Plan, say: Say, log: CommandLog | None = None) -> None:
    log = log or CommandLog()
    a = plan.answers
    for job in plan.jobs:
        if job.staged:
            say(f"cannot edit the crontab of {job.user}. As root, run `crontab -u {job.user} -e` and "
                + (f"add this line:\n  {job.new}" if job.new else f"remove the line ending with {cron.marker(a.omero.omerodir)}"))
            continue
        cron.set_job(job.user, a.omero.omerodir, job.new)
        log.crontab(job.user, job.new)
        say(f"crontab of {job.user}: " + (f"{job.new}" if job.new else "clearsessions line removed"))
