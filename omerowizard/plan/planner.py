"""make_plan: the plan is a pure function of the answers and the measured state (equal answers and state give an empty plan)."""

from __future__ import annotations

from omerowizard.catalogue import KEYS
from omerowizard.catalogue import config as omeroconfig
from omerowizard.catalogue.answers import Answers
from omerowizard.features.apps import packages as apps
from omerowizard.features.apps.catalogue import PROTECTED
from omerowizard.features.apps.entries import removed_apps
from omerowizard.features.upgrade import plan_upgrade
from omerowizard.plan import files, frontdoor
from omerowizard.plan.changes.config import ConfigChange
from omerowizard.plan.changes.packages import PackageChange, PackageRemoval
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

    files.plan_files(plan)
    frontdoor.plan_server(plan)

    if answers.start:
        if not state.running:
            plan.add(WebChange("start", "OMERO.web is not running"))
        elif plan.upgrade:
            plan.add(WebChange("restart", f"new code: the {plan.upgrade.verb} of omero-web",
                               (f"omero-web {plan.upgrade.old} -> {plan.upgrade.new}: an upgrade is never a mere "
                                "reload",)))
        elif plan.config or plan.packages:
            plan.add(web_change(plan, state))
    elif state.running and (plan.config or plan.packages or plan.upgrade):
        plan.notes.append("start is false: the changes take effect at the next `omero web restart`.")
    plan.door, plan.door_why = frontdoor.door(plan)
    return plan


def web_change(plan: Plan, state: State) -> WebChange:
    """Restart or graceful reload of a running OMERO.web, for the planned config and packages."""
    reasons = tuple(f"{c.key} changed: {restart_reason(c.key)}" for c in plan.config if restart_reason(c.key))
    if reasons:
        return WebChange("restart", "gunicorn's own settings changed", reasons)
    if state.development_running or plan.answers.web_server.kind == "development":
        return WebChange("restart", "the configuration changed", ("Django's development server cannot reload",))
    static = [c.key for c in plan.config if c.key in KEYS and KEYS[c.key].static]
    collect = bool(static or plan.packages)
    return WebChange("reload", "only Django settings changed: new workers read them, the old ones finish "
                               "their requests", collectstatic=collect)


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

