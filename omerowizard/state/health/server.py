"""OMERO.web's own processes: the gunicorn master named by ``var/django.pid`` (read without following a link,
verified from /proc as system/gunicorn.py does before it signals one), its workers against the configured
number, a stale pid file after a crash, and Django's development server."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from omerowizard.catalogue.config import effective
from omerowizard.model import health as h
from omerowizard.model.health import Finding, HealthContext
from omerowizard.system import gunicorn, procinfo
from omerowizard.system.deployments import Deployment
from omerowizard.system.gunicorn import ReloadError

BOOTING_GRACE = 5.0  # seconds a new worker may take before it counts as "still booting"


@dataclass(frozen=True)
class Processes:
    """What runs, for the other checks: the master's pid and start time (None: not running)."""

    master: int | None = None
    started: float | None = None  # when the master started (seconds since the epoch)
    development: int | None = None


def check(ctx: HealthContext) -> tuple[list[Finding], Processes]:
    a = ctx.answers
    omerodir = Path(ctx.omerodir)
    if a.web_server.kind == "development":
        return _development(ctx)
    pidfile = omerodir / "var" / "django.pid"
    try:
        pid = gunicorn.read_pidfile(omerodir)
    except ReloadError as exc:
        text = str(exc)
        if "No such file" in text or "cannot open" in text:
            return [_not_running(ctx, f"OMERO.web is not running (no {pidfile})")], Processes()
        return [h.problem("gunicorn", f"OMERO.web's pid file cannot be used: {text}",
                          f"remove {pidfile} as {ctx.user}, then apply the saved answers (it starts OMERO.web)",
                          ctx.repair)], Processes()
    proc = procinfo.read(pid)
    if proc is None:
        orphans = sorted(p.pid for p in procinfo.gunicorns_of(str(omerodir)))
        if orphans:
            return [h.problem(
                "gunicorn", f"{pidfile} names pid {pid}, which is not running: the gunicorn master was killed; its "
                            f"orphaned workers {orphans} still hold the application port until they notice (within "
                            "half of omero.web.wsgi_timeout), and nothing replaces them",
                f"wait for them to exit (or stop them: `kill {' '.join(map(str, orphans))}`), then apply the saved "
                "answers: OMERO.web is started again (`omero web start` removes the stale pid file)",
                f"kill {' '.join(map(str, orphans))}", pid=pid, stale=True, orphans=orphans)], Processes()
        return [h.problem(
            "gunicorn", f"{pidfile} names pid {pid}, which is not running: OMERO.web stopped without removing its "
                        "pid file (a crash, or a kill); nothing answers on the application port",
            "apply the saved answers: OMERO.web is started again (`omero web start` removes the stale pid file)",
            ctx.repair, pid=pid, stale=True)], Processes()
    why = gunicorn.why_not_ours(pid, omerodir, ctx.user)
    if why:
        return [h.problem(
            "gunicorn", f"{pidfile} names pid {pid}, which is not OMERO.web's gunicorn: {why} (the pid of a crashed "
                        "OMERO.web, reused by another process)",
            f"remove {pidfile} as {ctx.user} (never stop pid {pid}), then apply the saved answers", ctx.repair,
            pid=pid, stale=True)], Processes()
    found = [h.ok("gunicorn", f"the gunicorn master runs (pid {pid}, since {_ago(proc.started)})", pid=pid)]
    if not proc.serving:
        found = [h.problem(
            "gunicorn", f"the gunicorn master (pid {pid}) is {proc.state_text} (state {proc.state}): it neither "
                        "replaces a worker that dies nor answers signals",
            f"let it continue (`kill -CONT {pid}`), or restart OMERO.web (`omero web restart` as {ctx.user})",
            f"kill -CONT {pid}", pid=pid, state=proc.state)]
    found.append(_workers(ctx, pid))
    return found, Processes(pid, proc.started)


def _workers(ctx: HealthContext, master: int) -> Finding:
    try:
        wanted = int(effective(ctx.config, "omero.web.wsgi_workers") or "5")
    except ValueError:
        wanted = 5
    pids = sorted(gunicorn.workers(master))
    procs = [p for p in (procinfo.read(pid) for pid in pids) if p is not None]
    serving = [p for p in procs if p.serving]
    stopped = [p for p in procs if not p.serving]
    booting = [p.pid for p in serving if gunicorn.booted(p.pid) is False and time.time() - p.started > BOOTING_GRACE]
    data = {"configured": wanted, "running": len(serving), "pids": [p.pid for p in serving]}
    text = f"{len(serving)} of {wanted} workers serve" + (f" (pids {', '.join(str(p.pid) for p in serving)})"
                                                          if serving else "")
    if len(serving) < wanted or stopped:
        extra = "; " + ", ".join(f"worker {p.pid} is {p.state_text}" for p in stopped) if stopped else ""
        return h.problem("workers", f"{text}, {wanted} configured (omero.web.wsgi_workers){extra}: requests queue "
                                    "on fewer workers",
                         f"the gunicorn master replaces a dead worker at once unless it cannot; restart OMERO.web "
                         f"(`omero web restart` as {ctx.user}) if the count stays low", **data)
    if booting:
        return h.warning("workers", f"{text}; workers {booting} have not finished booting after "
                                    f"{BOOTING_GRACE:g} s (Django still importing, or stuck)",
                         f"read the log (`omerowizard logs --omerodir {ctx.omerodir}`)", **data)
    return h.ok("workers", f"{text}, as configured", **data)


def _not_running(ctx: HealthContext, what: str) -> Finding:
    if not ctx.answers.start:
        return h.ok("gunicorn", f"{what}, as the answers say (start: false)", running=False)
    return h.problem("gunicorn", what, "apply the saved answers: OMERO.web is started", ctx.repair, running=False)


def _development(ctx: HealthContext) -> tuple[list[Finding], Processes]:
    pidfile = Deployment(ctx.omerodir).dev_pidfile
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return [_not_running(ctx, "Django's development server is not running")], Processes()
    proc = procinfo.read(pid)
    if proc is None or not proc.serving:
        return [_not_running(ctx, f"Django's development server (pid {pid}, {pidfile}) is not running")], Processes()
    return [h.ok("gunicorn", f"Django's development server runs (pid {pid}, since {_ago(proc.started)})",
                 pid=pid)], Processes(development=pid, started=proc.started)


def _ago(when: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))
