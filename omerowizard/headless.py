"""``omerowizard apply`` and ``omerowizard answers``: no questions, never a terminal."""

from __future__ import annotations

import sys
from pathlib import Path

from omerowizard import answers as answers_mod
from omerowizard import locations
from omerowizard.answers import Answers
from omerowizard.events import Event, Finished, as_line
from omerowizard.omero import Omero, OmeroTarget
from omerowizard.plan import Plan, make_plan
from omerowizard.probe import probe


def target_of(a: Answers) -> OmeroTarget:
    return OmeroTarget(a.omero.user, Path(a.omero.venv), Path(a.omero.omerodir))


def saved() -> Answers | None:
    path = locations.saved_answers()
    if not path.exists():
        return None
    try:
        return answers_mod.load_file(path)
    except answers_mod.AnswersError:
        return None


def plan_for(a: Answers) -> tuple[Plan, Omero]:
    omero = Omero(target_of(a))
    state = probe(omero)
    measure_upgrade(a, state, omero)
    prev = saved()
    if prev is not None and target_of(prev) != target_of(a):
        prev = None
    return make_plan(a, state, previous=prev), omero


def measure_upgrade(a: Answers, state, omero: Omero) -> None:
    """pip's dry run for the omero-web release the answers ask for (nothing is written); a release pip
    cannot install is a bad answer (exit 2, nothing changed)."""
    from omerowizard import upgrade
    from omerowizard.errors import AnswersError, InstallError, Problem

    if not state.installed:
        return
    try:
        state.upgrade = upgrade.measure(a, omero.target.venv, state.packages, log=omero.log)
    except InstallError as exc:
        raise AnswersError([Problem("omero.web_version", f"{a.omero.web_version!r} cannot be installed: {exc}",
                                    value=a.omero.web_version,
                                    allowed="a release of omero-web on the package index that pip can install here")])


def print_plan(plan: Plan, out=sys.stdout, show_diff: bool = False) -> None:
    for line in plan.lines():
        print(line, file=out)
    if show_diff:
        for f in plan.files:
            print(f.diff(), file=out, end="")
    for note in plan.notes:
        print(f"note: {note}", file=out)


def emit_lines(event: Event) -> None:
    line = as_line(event)
    if line is not None:
        stream = sys.stderr if isinstance(event, Finished) and not event.ok else sys.stdout
        print(line, file=stream, flush=True)


def run_apply(path: str, dry_run: bool = False, show_diff: bool = False, wait: float = 0.0) -> int:
    from omerowizard import preflight
    from omerowizard.apply import apply_plan

    a = answers_mod.load_file(path)
    plan, omero = plan_for(a)
    print_plan(plan, show_diff=show_diff)
    if dry_run:
        if not plan.empty:
            for check in preflight.checks(plan):
                if not check.ok:
                    print(f"preflight would fail: {check.name}: {check.message}")
        print("Dry run: nothing was changed.")
        return 0
    if plan.empty:
        return 0
    return 0 if apply_plan(plan, omero, emit_lines, lock_wait=wait) else 1


def run_rollback(user: str | None, venv: str | None, omerodir: str | None) -> int:
    from omerowizard.apply import rollback

    a = current_answers(user, venv, omerodir)
    omero = Omero(target_of(a))
    return 0 if rollback(Path(a.omero.omerodir), omero, emit_lines) else 1


def current_answers(user: str | None = None, venv: str | None = None, omerodir: str | None = None) -> Answers:
    """The saved answers (or the defaults), with the installation paths given on the command line."""
    base = saved() or answers_mod.defaults()
    nested = base.to_nested()
    if user:
        nested["omero"]["user"] = user
    if venv:
        nested["omero"]["venv"] = venv
    if omerodir:
        nested["omero"]["omerodir"] = omerodir
    return answers_mod.validate(nested, "<saved answers>")


def print_answers(user: str | None, venv: str | None, omerodir: str | None) -> int:
    """The answers of the live deployment: the saved answers (or defaults) overlaid with what its
    config.xml says; where the two differ, the live value is printed and the difference noted."""
    from omerowizard.infer import answers_from_config

    base = current_answers(user, venv, omerodir)
    omero = Omero(target_of(base))
    config = omero.config_read() if omero.target.executable.exists() else {}
    live = answers_mod.validate(answers_from_config(config, base.to_nested()), "<live config>")
    source = "saved answers" if saved() else "defaults (no saved answers)"
    header = f"# omerowizard answers of the deployment in {live.omero.omerodir}: its live OMERO config,\n"
    header += f"# with the {source} for what the config does not hold (web server, paths, jobs)\n"
    before, after = base.flat(), live.flat()
    differ = [k for k in after if before.get(k) != after.get(k)]
    if differ and saved():
        header += "# NOTE: the live config differs from the saved answers in: " + ", ".join(differ) + "\n"
    sys.stdout.write(live.to_yaml(header))
    return 0
