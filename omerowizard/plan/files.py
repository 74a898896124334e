"""The web-server files and the scheduled job a plan changes: the files the answers ask for compared with what
the probe read, and the clearsessions line with the OMERO.web user's crontab; equal gives nothing. Pure: it
reads the State, never the machine."""

from __future__ import annotations

from omerowizard.features import sessions, web_server
from omerowizard.features.sessions import NoTaskTrigger
from omerowizard.features.web_server import site as site_files
from omerowizard.model.errors import AnswersError, Problem
from omerowizard.plan.changes.files import FileChange, origin
from omerowizard.plan.changes.jobs import JobChange
from omerowizard.plan.plan import Plan
from omerowizard.state.probe import staging_path
from omerowizard.system import crontab as cron
from omerowizard.system import platforms


def plan_files(plan: Plan, upstream: str | None = None) -> None:
    """``upstream``: the application server the site proxies to for now (a blue/green switch moves it later)."""
    a, state = plan.answers, plan.state
    default_server, default_changes = _plan_default_site(plan)
    try:
        wanted = site_files.wanted_files(a, state.host, state.omero_web_version, plan.notes,
                                         default_server=default_server, upstream=upstream,
                                         served=state.front is not None)
    except NoTaskTrigger:
        raise AnswersError([Problem("sessions.clearsessions",
                                    f"{a.sessions.clearsessions!r} has no Task Scheduler equivalent on Windows",
                                    allowed="daily | hourly | off | 'M H * * *' | 'M * * * *'")]) from None
    native = web_server.native(a)
    for w in wanted:
        fact = state.file(w.path if native else str(staging_path(w.path)))
        staged = not native or not fact.writable
        if fact.problem:
            plan.refusals.append(fact.problem)
            continue
        old = fact.content
        if old == w.content and link_ok(plan, w):
            continue
        adopted = False
        if native and not staged:
            other = state.owners.get(w.path)
            if other is not None:
                plan.refusals.append(f"{w.path} was written by the deployment in {other} (its runs keep it): "
                                     "choose another web_server.config_path for this one")
                continue
            if old is not None and w.path not in state.record:
                if not a.web_server.replace_existing:
                    plan.refusals.append(f"{w.path} exists and {origin(old)}: set "
                                         "web_server.replace_existing: true to replace it (the backup keeps it), or "
                                         "choose another web_server.config_path")
                adopted = True
        plan.add(FileChange(w.path, old, w.content, w.why, w.mode, w.link, staged, w.encoding, w.check,
                                     w.system, w.commands, w.owner, w.modules, adopted=adopted))
    plan.add(*default_changes)
    if native:
        _plan_removals(plan, {w.path for w in wanted})
    _plan_job(plan)


def _plan_default_site(plan: Plan) -> tuple[bool, list[FileChange]]:
    """Which site answers requests by IP address or unknown names on OMERO.web's ports (the default site).

    With ``web_server.default_site``, Debian's stock default site on the same port is disabled (its
    sites-enabled link only, a change that apply backs up and rollback restores) and, for nginx, OMERO.web's
    site says ``default_server``; another site that already holds the port is left alone and named in a note.
    Returns (render default_server, the link changes)."""
    a, host = plan.answers, plan.state.host
    ws = a.web_server
    if a.platform != "unix" or ws.kind not in {"nginx", "apache"} or not web_server.native(a):
        return False, []
    place = web_server.web_server_file(a, host.distribution)
    if place is None or not place.system:
        return False, []  # a file an administrator includes by hand: it must not claim default_server there
    ports = sorted({ws.port} | ({ws.https.port} if ws.https else set()))
    stock = platforms.stock_site(ws.kind, host.distribution)
    changes: list[FileChange] = []
    disabled = None
    target = host.links.get(stock.link) if stock else None
    if stock and target is not None and set(ports) & set(stock.ports):
        if ws.default_site:
            disabled = stock.link
            changes.append(FileChange(
                stock.link, target, None,
                f"Debian's stock default site answers port {', '.join(map(str, sorted(set(ports) & set(stock.ports))))} "
                "by IP address, by other names and over IPv6: OMERO.web is to be the default site (web_server.default_site)",
                staged=not plan.state.file(stock.link).writable, check=ws.kind, system=True, link_only=True))
    holders = sorted({h for port in ports for h in host.default_site_holders.get((ws.kind, port), ())} - {disabled})
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


def link_ok(plan: Plan, w: site_files.WantedFile) -> bool:
    return w.link is None or plan.state.host.links.get(w.link) == w.path


def _plan_removals(plan: Plan, wanted: set[str]) -> None:
    """Files an earlier run of this deployment wrote that these answers no longer ask for (e.g.
    nginx -> apache). Only this deployment's record counts: another deployment's files are never
    touched."""
    for path, entry in plan.state.record.items():
        if path in wanted:
            continue
        fact = plan.state.file(path)
        if fact.problem:
            plan.notes.append(f"{path} was written by an earlier run and cannot be read now ({fact.problem}): left "
                              "in place.")
            continue
        if fact.content is None:
            continue
        if fact.sha256 != entry.get("sha256"):
            plan.notes.append(f"{path} was written by an earlier run and edited since: left in place.")
            continue
        plan.add(FileChange(path, fact.content, None, "no longer needed with these answers",
                                     link=entry.get("link"), staged=not fact.writable,
                                     check=entry.get("check"), system=bool(entry.get("system"))))


def _plan_job(plan: Plan) -> None:
    a, state = plan.answers, plan.state
    if a.platform != "unix":
        return
    new = sessions.clearsessions_line(a)
    user = a.omero.user
    if state.crontab_problem:
        plan.notes.append(f"clearsessions: {state.crontab_problem}")
    if state.crontab is None:
        if new is not None:
            plan.add(JobChange(user, None, new, sessions.clearsessions_why(a), staged=True))
            plan.notes.append(f"cannot edit the crontab of {user} from here: the line is printed for an administrator.")
        return
    lines = cron.managed_lines(state.crontab, a.omero.omerodir)
    old = "\n".join(lines) if lines else None
    if old != new:
        plan.add(JobChange(user, old, new, sessions.clearsessions_why(a)))
