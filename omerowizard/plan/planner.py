"""make_plan: the plan is a pure function of the answers and the measured state (equal answers and state give an empty plan)."""

from __future__ import annotations

import dataclasses

from omerowizard.catalogue import KEYS
from omerowizard.catalogue import config as omeroconfig
from omerowizard.catalogue.answers import Answers
from omerowizard.features.apps import packages as apps
from omerowizard.features.apps.catalogue import PROTECTED
from omerowizard.features.apps.entries import removed_apps
from omerowizard.features.upgrade import beside_path, plan_upgrade
from omerowizard.plan import files, frontdoor
from omerowizard.plan.changes.config import ConfigChange
from omerowizard.plan.changes.packages import PackageChange, PackageRemoval
from omerowizard.features import web_server
from omerowizard.features.web_server.site import upstream_in
from omerowizard.plan.changes.bluegreen import Route
from omerowizard.plan.changes.web import WebChange
from omerowizard.plan.plan import Plan
from omerowizard.state.probe import State
from omerowizard.system.venv import normalise


def make_plan(answers: Answers, state: State, previous: Answers | None = None) -> Plan:
    plan = Plan(answers, state)
    if answers.platform == "windows":
        return _windows_plan(plan)
    wanted = omeroconfig.wanted_config(answers, state.config, state.django_version or (5, 2), previous)
    for key, new in wanted.values.items():
        old = state.config.get(key)
        if new is None and old is None:
            continue
        if new is not None and omeroconfig.same(key, old, new) and old is not None:
            continue
        if new is None and key in omeroconfig.DEFAULTS and omeroconfig.same(key, old, None):
            continue  # set explicitly to OMERO's default: same effect, leave it
        plan.add(ConfigChange(key, old, new, wanted.why[key]))
    plan.notes += wanted.notes
    plan.notes += list(answers.warnings)
    plan.notes += [f"not read (root reads no link and waits for no FIFO there): {x}" for x in state.skipped]

    plan.add(plan_upgrade(answers, state.packages, state.upgrade))
    if plan.upgrade and state.sharing_venv:
        others = ", ".join(state.sharing_venv)
        plan.notes.append(f"Warning: the deployments in {others} run from the same environment {answers.omero.venv}: "
                          f"this {plan.upgrade.verb} to omero-web {plan.upgrade.new} changes their OMERO.web too "
                          "(restart them, and run omerowizard --omerodir DIR on each to check them)")
    for dist, why in omeroconfig.packages(answers):
        if normalise(dist) not in state.packages and not plan.upgrade:  # an upgrade installs them with omero-web
            plan.add(PackageChange(dist, why))
    plan_app_packages(plan, previous)

    web = None
    if answers.start:
        if not state.running:
            web = WebChange("start", "OMERO.web is not running")
        elif plan.upgrade:
            web = upgrade_change(plan, state)
        elif plan.config or plan.packages:
            web = web_change(plan, state)
    elif state.running and (plan.config or plan.packages or plan.upgrade):
        plan.notes.append("start is false: the changes take effect at the next `omero web restart`.")
    # a switch writes the site with the running upstream, and moves it to the new master once that answers
    files.plan_files(plan, upstream=web.route.upstream if web is not None and web.route is not None else None)
    frontdoor.plan_server(plan)
    plan.add(web)
    plan.door, plan.door_why = frontdoor.door(plan)
    return plan


def web_change(plan: Plan, state: State) -> WebChange:
    """How a running OMERO.web takes the planned config and packages, without a failed request where it can: a
    graceful reload (Django settings), a change of the number of workers on the running master, a blue/green
    switch (gunicorn's own settings) when the web server in front is ours; else a restart, and the review says
    why."""
    keys = [c.key for c in plan.config if restart_reason(c.key)]
    reasons = tuple(f"{k} changed: {restart_reason(k)}" for k in keys)
    if state.development_running or plan.answers.web_server.kind == "development":
        return WebChange("restart", "the configuration changed",
                         reasons or ("Django's development server cannot reload",),
                         not_switched="Django's development server has no web server in front of it to switch"
                         if reasons else "")
    static = [c.key for c in plan.config if c.key in KEYS and KEYS[c.key].static]
    collect = bool(static or plan.packages)
    if keys == [WORKERS]:
        n = plan.answers.application_server.workers
        if len(plan.config) == 1 and not plan.packages:
            return WebChange("scale", "only the number of workers changed: the running master adds or stops "
                                      "workers", workers=n)
        return WebChange("reload", "Django settings and the number of workers changed: new workers read them, the "
                                   "old ones finish their requests", collectstatic=collect, workers=n)
    if keys:
        route, why_not = switch_route(plan, state)
        if route is not None:
            return WebChange("switch", "gunicorn's own settings changed", reasons, collectstatic=collect, route=route)
        plan.notes.append(f"OMERO.web restarts (users see the maintenance page meanwhile): {why_not}")
        return WebChange("restart", "gunicorn's own settings changed", reasons, not_switched=why_not)
    return WebChange("reload", "only Django settings changed: new workers read them, the old ones finish "
                               "their requests", collectstatic=collect)


WORKERS = "omero.web.wsgi_workers"


def upgrade_change(plan: Plan, state: State) -> WebChange:
    """New code is never a mere reload: blue/green into a new environment beside the running one when the web
    server is ours (the upgrade then installs there), else a restart after an upgrade in place."""
    u = plan.upgrade
    reasons = (f"omero-web {u.old} -> {u.new}: an upgrade is never a mere reload",)
    why = f"new code: the {u.verb} of omero-web"
    route, why_not = switch_route(plan, state)
    if route is None:
        plan.notes.append(f"OMERO.web restarts after the {u.verb} (users see the maintenance page meanwhile): "
                          f"{why_not}")
        return WebChange("restart", why, reasons, not_switched=why_not)
    beside = beside_path(plan.answers.omero.venv, u.new)
    plan.changes[plan.changes.index(u)] = dataclasses.replace(u, beside=beside)
    return WebChange("switch", why, reasons, collectstatic=True, route=route, venv=beside)


def switch_route(plan: Plan, state: State) -> tuple[Route | None, str]:
    """The site and the running web server a blue/green switch rewrites and reloads; else None and why not (the
    web server is not this run's to switch)."""
    a = plan.answers
    ws = a.web_server
    if a.platform != "unix" or ws.kind == "none":
        return None, "no web server on this host to switch (web_server.kind none: the front end is elsewhere)"
    if ws.kind not in {"nginx", "apache", "nginx-development"}:
        return None, f"web_server.kind {ws.kind} has no web server here to switch"
    if not web_server.native(a):
        return None, "the web-server files are for another host"
    if a.nodes.members:
        return None, "several nodes share the upstream (nodes.members): the rolling playbook restarts one node at a time"
    place = web_server.web_server_file(a, state.host.distribution, state.omero_web_version)
    if place is None:
        return None, "there is no web-server file"
    fact = state.file(place.path)
    kind = "apache" if ws.kind == "apache" else "nginx"
    if not fact.writable:
        return None, f"{place.path} is staged for an administrator: this run cannot switch the web server"
    if fact.content is None or upstream_in(fact.content, kind) is None:
        return None, f"{place.path} does not proxy to the running OMERO.web yet"
    if state.front is None:
        return None, f"no running {'Apache httpd' if kind == 'apache' else 'nginx'} includes {place.path}"
    return Route(kind, place.path, place.link, state.front, upstream_in(fact.content, kind)), ""


def _windows_plan(plan: Plan) -> Plan:
    """Windows: the wizard renders the IIS files and the scheduled task (staged, with the commands
    to install them); the OMERO config and start belong to the OMERO.web host, so none are planned."""

    a = plan.answers
    plan.notes.append("Windows: only the IIS files and the scheduled task are produced here (staged, with the "
                      "commands to install them). OMERO.web 5.3 and later do not run on Windows: configure and start "
                      f"the OMERO.web application server at {a.application_server.host}:{a.application_server.port} "
                      "on its Unix host with omerowizard there.")
    plan.notes += list(a.warnings)
    files.plan_files(plan)
    return plan


def plan_app_packages(plan: Plan, previous: Answers | None) -> None:
    """The package changes of the apps: installs (with the version pip's dry run would install), and the
    uninstalls asked for by apps.uninstall_removed."""
    a, state = plan.answers, plan.state
    if a.platform != "unix" or not state.installed:
        return
    measured = state.apps_measured
    todo = apps.to_install(a, state.packages)
    if todo and not plan.upgrade:
        if measured is None or measured.error:
            why = measured.error if measured is not None else "pip's dry run did not run"
            hint = "" if why.startswith(("apps.find_links", "pip's dry run was not started")) else (
                ". pip must reach the package index, or a directory of wheels given as apps.find_links")
            plan.refusals.append(f"web apps: {why}{hint}")
        install = measured.install if measured is not None else {}
        for p in todo:
            old = state.packages.get(p.package)
            new = install.get(p.package)
            if new is None and old is not None:
                continue  # pip keeps the installed one
            version = f"{old} -> {new}" if old else (new or "?")
            deps = sorted(f"{n} {('%s -> ' % state.packages[n]) if n in state.packages else ''}{v}"
                          for n, v in install.items()
                          if n not in {q.package for q in todo} and state.packages.get(n) != v)
            why = f"web app {p.name}: {p.package} {version}"
            if deps and p is todo[-1]:
                why += "; with " + ", ".join(deps)
            plan.add(PackageChange(p.requirement, why, version=new or "", app=p.name))
    if a.apps.uninstall_removed:
        for p in removed_apps(a, previous, state.config):
            if p.package not in state.packages:
                continue
            if p.package in PROTECTED:
                plan.notes.append(f"{p.package} is not uninstalled: OMERO.web needs it")
                continue
            users = [u for u in apps.required_by(state.target.venv, p.package) if u != p.package]
            if users:
                plan.notes.append(f"{p.package} is not uninstalled: {', '.join(users)} require it")
                continue
            plan.add(PackageRemoval(p.package, f"web app {p.name} removed (apps.uninstall_removed)",
                                    version=state.packages[p.package], app=p.name))


def restart_reason(key: str) -> str | None:
    """Why a change to ``key`` needs a restart (its feature says); None when a graceful reload applies it. A key
    no feature knows (extra_config) is a Django setting."""
    spec = KEYS.get(key)
    return spec.restart if spec is not None and spec.restart else None

