"""Which deployment a run is about, its saved answers, and its plan: what every front end (the
answers file, the plain prompts, the Textual app) and apply's re-planning share. No UI here."""

from __future__ import annotations

import os
from pathlib import Path

from omerowizard.catalogue import answers as answers_mod
from omerowizard.catalogue.answers import Answers
from omerowizard.model.errors import UsageError
from omerowizard.plan.plan import Plan
from omerowizard.plan.planner import make_plan
from omerowizard.state.probe import probe
from omerowizard.system.deployments import Deployment, all_deployments
from omerowizard.system.omero import Omero, OmeroTarget


def target_of(a: Answers) -> OmeroTarget:
    return OmeroTarget(a.omero.user, Path(a.omero.venv), Path(a.omero.omerodir))


def saved(omerodir: str | None) -> Answers | None:
    """The last applied answers of the deployment in ``omerodir`` (None: none, or no deployment)."""
    if not omerodir:
        return None
    path = Deployment(omerodir).ensure().answers
    if not path.exists():
        return None
    try:
        return answers_mod.load_file(path)
    except answers_mod.AnswersError:
        return None


def choose(omerodir: str | None) -> Deployment | None:
    """The deployment a command is about: the one named, else the only one this host's state knows;
    None when there is none (a new deployment). Several and none named: refused, listing them."""
    if omerodir:
        return Deployment(omerodir)
    known = all_deployments()
    if len(known) == 1:
        return known[0]
    if len(known) > 1:
        raise UsageError("there are several deployments on this host; choose one with --omerodir:\n"
                         + "\n".join(f"  --omerodir {d.omerodir}" for d in known))
    return None


def in_active_venv(a: Answers) -> Answers:
    """The answers with the environment OMERO.web runs from: the one they name, or the one a blue/green upgrade
    put beside it (Deployment.active_venv), so that the plan, the files it renders (the systemd unit, the
    clearsessions line) and the saved answers follow the running one."""
    if a.platform != "unix":
        return a
    active = Deployment(a.omero.omerodir).active_venv(a.omero.venv)
    if active == a.omero.venv:
        return a
    nested = a.to_nested()
    nested["omero"]["venv"] = active
    return answers_mod.validate(nested, "<answers in the active environment>")


def plan_for(a: Answers) -> tuple[Plan, Omero]:
    """Probe what the answers touch, then plan: the one way every front end (and apply's re-planning) plans."""
    a = in_active_venv(a)
    omero = Omero(target_of(a))
    state = probe(a, omero)
    prev = saved(a.omero.omerodir)
    if prev is not None and target_of(prev) != target_of(a):
        prev = None
    return make_plan(a, state, previous=prev), omero


def current_answers(user: str | None = None, venv: str | None = None, omerodir: str | None = None) -> Answers:
    """The saved answers of the chosen deployment (or the defaults), with the installation paths given
    on the command line, else those the deployment's record holds."""
    dep = choose(omerodir)
    if dep is not None and omerodir and dep.identity() is None and not dep.answers.exists() \
            and not os.path.isdir(dep.omerodir):
        known = all_deployments()
        raise UsageError(f"--omerodir {omerodir}: no deployment there (no such directory, and no run of omerowizard "
                         "recorded one)" + ("; the deployments of this host: " + ", ".join(d.omerodir for d in known)
                                            if known else ""))
    base = (saved(dep.omerodir) if dep else None) or answers_mod.defaults()
    nested = base.to_nested()
    ident = dep.identity() if dep else None
    if dep:
        nested["omero"]["omerodir"] = dep.omerodir
    if ident:
        nested["omero"]["user"], nested["omero"]["venv"] = ident.user, ident.venv
    if user:
        nested["omero"]["user"] = user
    if venv:
        nested["omero"]["venv"] = venv
    return answers_mod.validate(nested, "<saved answers>")
