"""The commands that ask no questions and never need a terminal: apply, answers, playbook, rollback, schema,
install-omero."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from omerowizard.catalogue import answers as answers_mod
from omerowizard.catalogue.answers import schema_text
from omerowizard.catalogue.infer import answers_from_config
from omerowizard.install.installer import (
    Installer,
    InstallOptions,
    cancel_on_signals,
    check_wheel,
    confirm_on_terminal,
    parse_features,
)
from omerowizard.model.errors import UsageError, WizardError
from omerowizard.model.events import Event, Finished, as_line
from omerowizard.plan.plan import Plan
from omerowizard.run import preflight
from omerowizard.run.apply import Applier
from omerowizard.run.planning import current_answers, plan_for, saved, target_of
from omerowizard.run.rollback import list_backups, rollback
from omerowizard.system import backups as backup
from omerowizard.system.deployments import Deployment
from omerowizard.system.omero import Omero
from omerowizard.ui import playbook
from omerowizard.ui.jsonreport import Report, plan_dict


def print_plan(plan: Plan, out=sys.stdout, show_diff: bool = False) -> None:
    for line in plan.lines():
        print(line, file=out)
    if show_diff:
        for diff in plan.diffs():
            print(diff, file=out, end="")
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

    if omerodir and Deployment(omerodir).omerodir != a.omero.omerodir:
        raise UsageError(f"--omerodir {omerodir} is not the deployment of {path} (omero.omerodir: {a.omero.omerodir})")
    plan, omero = plan_for(a)
    if not plan.empty or dry_run:  # an empty plan: the apply says "Nothing to change" (once)
        print_plan(plan, out=out, show_diff=show_diff)
    if report is not None:
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


# ---------------------------------------------------------------------------- the commands (cli.COMMANDS)
def schema_command(args: argparse.Namespace) -> int:
    return print_to_pipe(schema_text())


def apply_command(args: argparse.Namespace) -> int:
    if args.json:
        return apply_json(args)
    return run_apply(args.file, dry_run=args.dry_run, show_diff=args.show_diff, wait=args.wait, omerodir=args.omerodir)


def answers_command(args: argparse.Namespace) -> int:
    return print_answers(args.user, args.venv, args.omerodir)


def playbook_command(args: argparse.Namespace) -> int:
    return write_playbook(args.user, args.venv, args.omerodir, args.output, force=args.force, host=args.host)


def rollback_command(args: argparse.Namespace) -> int:
    return run_rollback(args.user, args.venv, args.omerodir, to=args.to, dry_run=args.dry_run, list_only=args.list)


def apply_json(args: argparse.Namespace) -> int:
    """`omerowizard apply --json`: whatever happens (bad answers, a failed step, Ctrl-C), standard output
    gets exactly one JSON document whose exit_status is the process's."""
    rep = Report(dry_run=args.dry_run)
    try:
        status = run_apply(args.file, dry_run=args.dry_run, show_diff=args.show_diff, wait=args.wait,
                           omerodir=args.omerodir, report=rep)
    except WizardError as exc:
        print(exc.render(), file=sys.stderr)
        rep.error(exc)
        status = exc.exit_code
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        rep.ok, rep.message = False, rep.message or "Interrupted."
        status = 130
    sys.stdout.write(rep.document(status) + "\n")
    sys.stdout.flush()
    return status


def print_to_pipe(text: str) -> int:
    """Print ``text``; a reader that stops early (`omerowizard schema | head`) is not an error."""
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        # nobody reads the rest: point stdout at /dev/null so the flush at exit does not fail again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return 0


def install_command(args: argparse.Namespace) -> int:
    """`omerowizard install-omero`: every option is checked before anything changes."""
    wheel = check_wheel(args.wheel) if args.wheel else None
    if args.jobs < 1:
        raise UsageError(f"--jobs (command line): {args.jobs} is not a number of cores (allowed: 1 or more)")
    opts = InstallOptions(user=args.user, venv=Path(args.venv), omerodir=Path(args.omerodir),
                          omero_web_version=args.omero_web_version, features=parse_features(args.features),
                          python=args.python, wheel=wheel, jobs=args.jobs)
    with cancel_on_signals(confirm_on_terminal):
        Installer(opts, say=lambda line: print(line, flush=True)).run()
    return 0

