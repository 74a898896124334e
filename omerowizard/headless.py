"""``omerowizard apply`` and ``omerowizard answers``: no questions, never a terminal."""

from __future__ import annotations

import sys
from pathlib import Path

from omerowizard import answers as answers_mod
from omerowizard.deployments import Deployment
from omerowizard.errors import UsageError
from omerowizard.events import Event, Finished, as_line
from omerowizard.omero import Omero
from omerowizard.plan import Plan
from omerowizard.planning import (choose, current_answers, measure_upgrade, plan_for, saved,  # noqa: F401 (re-exported)
                                  target_of)


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


def run_apply(path: str, dry_run: bool = False, show_diff: bool = False, wait: float = 0.0,
              omerodir: str | None = None, report=None) -> int:
    """``report`` (a jsonreport.Report, for ``--json``): the human lines go to standard error and the
    report is filled with the plan, the preflight results, the steps, the URL and the backup id."""
    out = sys.stderr if report is not None else sys.stdout
    a = answers_mod.load_file(path)  # first: bad answers are refused before the rest is even imported
    from omerowizard import backup, preflight
    from omerowizard.apply import Applier

    if omerodir and Deployment(omerodir).omerodir != a.omero.omerodir:
        raise UsageError(f"--omerodir {omerodir} is not the deployment of {path} (omero.omerodir: {a.omero.omerodir})")
    plan, omero = plan_for(a)
    print_plan(plan, out=out, show_diff=show_diff)
    if report is not None:
        from omerowizard.jsonreport import plan_dict
        report.dry_run, report.plan = dry_run, plan_dict(plan)
    unfinished = backup.unfinished(omero.deployment)
    if unfinished:
        print(f"note: a run of {a.omero.omerodir} did not finish (backup {unfinished[0].directory}); "
              "apply repairs it first, then plans again", file=out)
    if dry_run:
        # 0 only when the apply would proceed: check modes (CI, configuration management) rely on it
        checks = [] if plan.empty else preflight.checks(plan)
        failed = preflight.failures(checks)
        for check in preflight.warnings(checks):
            print(f"warning: {check.name}: {check.message}", file=out)
        for check in failed:
            print(f"preflight would fail: {check.name}: {check.message}", file=out)
        message = "Dry run: nothing was changed." + (" The apply would stop at preflight." if failed else "")
        print(message, file=out)
        if report is not None:
            report.preflight_failures = [f"{c.name}: {c.message}" for c in failed]
            report.preflight_warnings = [f"{c.name}: {c.message}" for c in preflight.warnings(checks)]
            report.changed = not plan.empty or bool(unfinished)
            report.message = "\n".join([f"preflight would fail: {c.name}: {c.message}" for c in failed] + [message])
        return 1 if failed else 0
    # an empty plan still goes to apply: it repairs a run that did not finish before it says so
    def emit(event: Event) -> None:
        if report is None:
            emit_lines(event)
            return
        line = as_line(event)
        if line is not None:
            print(line, file=sys.stderr, flush=True)
        report.event(event)

    applier = Applier(plan, omero, emit, lock_wait=wait, source=f"the answers file {Path(path).resolve()}")
    ok = applier.run()
    if report is not None:
        report.plan = plan_dict(applier.plan)  # apply plans again after repairing an interrupted run
        report.backup = applier.backup.id if applier.backup is not None else None
    return 0 if ok else 1


def run_rollback(user: str | None, venv: str | None, omerodir: str | None, to: str | None = None,
                 dry_run: bool = False, list_only: bool = False) -> int:
    from omerowizard.apply import list_backups, rollback

    a = current_answers(user, venv, omerodir)
    dep = Deployment(a.omero.omerodir)
    if list_only:
        print("\n".join(list_backups(dep)))
        return 0
    omero = Omero(target_of(a))
    return 0 if rollback(dep, omero, emit_lines, to=to, dry_run=dry_run) else 1


def live_answers(user: str | None, venv: str | None, omerodir: str | None):
    """(the answers of the live deployment, the keys where they differ from its saved answers, whether it has
    saved answers): its saved answers (or defaults) overlaid with what its config.xml says."""
    from omerowizard.infer import answers_from_config

    base = current_answers(user, venv, omerodir)
    omero = Omero(target_of(base))
    config = omero.config_read() if omero.target.executable.exists() else {}
    live = answers_mod.validate(answers_from_config(config, base.to_nested()), "<live config>")
    has_saved = saved(base.omero.omerodir) is not None
    before, after = base.flat(), live.flat()
    differ = [k for k in after if before.get(k) != after.get(k)]
    return live, differ, has_saved


def print_answers(user: str | None, venv: str | None, omerodir: str | None) -> int:
    """The answers of the live deployment: its saved answers (or defaults) overlaid with what its
    config.xml says; where the two differ, the live value is printed and the difference noted."""
    live, differ, has_saved = live_answers(user, venv, omerodir)
    source = "saved answers" if has_saved else "defaults (no saved answers)"
    header = f"# omerowizard answers of the deployment in {live.omero.omerodir}: its live OMERO config,\n"
    header += f"# with the {source} for what the config does not hold (web server, paths, jobs)\n"
    if differ and has_saved:
        header += "# NOTE: the live config differs from the saved answers in: " + ", ".join(differ) + "\n"
    header += "# (each text is tagged !unsafe: Ansible, given this file, takes it as it is and never templates it)\n"
    sys.stdout.write(live.to_yaml(header, unsafe=True))
    return 0


def write_playbook(user: str | None, venv: str | None, omerodir: str | None, output: str, force: bool = False,
                   host: str | None = None) -> int:
    """`omerowizard playbook`: the Ansible skeleton that reproduces the live deployment."""
    from omerowizard import playbook

    live, differ, has_saved = live_answers(user, venv, omerodir)
    written = playbook.write(live, output, force=force, host=host)
    out = Path(output).absolute()
    print(f"Wrote an Ansible playbook and inventory for the deployment in {live.omero.omerodir} to {out}:")
    shown = [w for w in written if "/collections/" not in w]
    for w in shown:
        print(f"  {w}")
    print(f"  {out}/collections/ (the collection omerowizard.omero_web, {len(written) - len(shown)} files)")
    if not has_saved:
        print("note: this deployment has no saved answers: the web server, paths and jobs are omerowizard's defaults")
    elif differ:
        print("note: the live config differs from the saved answers in: " + ", ".join(differ) + " (the live values "
              "were written)")
    if any(w.endswith(playbook.VAULT) for w in written):
        print(f"Secrets are in {out}/{playbook.VAULT} (0600): encrypt it with `ansible-vault encrypt {playbook.VAULT}`.")
    print(f"Check, then apply: cd {out} && ansible-playbook site.yml --check --diff && ansible-playbook site.yml")
    return 0
