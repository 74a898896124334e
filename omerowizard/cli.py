"""The ``omerowizard`` command. Imports are lazy so ``--help`` starts fast."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable

from omerowizard import __version__
from omerowizard.model.errors import UsageError, WizardError, report

DESCRIPTION = "Deploy and configure OMERO.web: interactively, line by line, or from an answers file."
# where to read further and ask (the README links the same three)
OME_DOCS = "https://omero.readthedocs.io/en/stable/sysadmins/unix/install-web/web-deployment.html"
FORUM = "https://forum.image.sc/tag/omero"
TRACKER = "the issue tracker of the omerowizard repository"
EPILOG = f"""\
With no subcommand, omerowizard starts the full-screen wizard (or, with --plain or on a
terminal that cannot hold it, plain prompts). Exit status: 0 done, 1 failed while applying
(what was restored is printed), 2 bad answers or usage, 130 interrupted, 141 the output
pipe was closed (as `omerowizard schema | head` does).

The manual: docs/ in omerowizard's source (its README links every page).
OMERO.web deployment, OME's documentation:
  {OME_DOCS}
Questions about OMERO: the image.sc forum, {FORUM}
A problem with omerowizard: report it on {TRACKER}.
"""


INSTALL_OMERODIR = "/opt/omero/web/OMERO.web"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="omerowizard", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"omerowizard {__version__}")
    p.add_argument("--plain", action="store_true", help="ask the questions line by line instead of full screen")
    p.add_argument("--answers", metavar="FILE", help="start the wizard from this answers file instead of the saved one")
    p.add_argument("--omerodir", dest="wizard_omerodir", metavar="DIR",
                   help="the deployment to reconfigure (default: the only one on this host, else a new one)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    a = sub.add_parser("apply", help="apply an answers file without questions (headless)",
                       description="Validate the answers file, compare it with the live deployment, print the plan "
                                   "and apply it. Never waits for a terminal.")
    a.add_argument("file", metavar="ANSWERS.yml")
    a.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    a.add_argument("--show-diff", action="store_true", help="print the full diff of every file in the plan")
    a.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="when another run holds the deployment's lock, wait this long for it (default: refuse at once)")
    a.add_argument("--omerodir", help="refuse unless the answers file is about this OMERODIR")
    a.add_argument("--json", action="store_true",
                   help="print one JSON document on standard output (the plan, each file's diff, preflight, the "
                        "steps, the public URL, the backup id, the message and the exit status; secrets masked) "
                        "and the usual lines on standard error: for programs such as the Ansible module")

    r = sub.add_parser("rollback", help="restore a backup of a deployment (the state before its last apply)",
                       description="Restore what an apply on this deployment backed up before it changed anything: "
                                   "config.xml, the web-server files, its clearsessions line, its saved answers and "
                                   "its record of written files; then OMERO.web is restarted if it was running at "
                                   "that time, or stopped if it was not. A rollback takes its own backup first, so "
                                   "it can be undone with --to.")
    deployment_options(r)
    r.add_argument("--list", action="store_true", help="list the backups (time, kind, what each holds, the answers "
                                                       "that run changed) and change nothing")
    r.add_argument("--to", metavar="ID", help="restore this backup (an id from --list) instead of the newest apply's")
    r.add_argument("--dry-run", action="store_true", help="print what the rollback would change, and change nothing")

    for name, helptext, desc in (
            ("status", "is the deployment healthy? (exit 0 healthy, 1 degraded, each reason named)",
             "At a glance, per deployment: the omero-web, Django, omero-py and web app versions; the gunicorn master "
             "and its workers; the public URL through the web server (the login page and a static file); the session "
             "store; the clearsessions job; the certificate; backups; drift (config.xml keys changed by hand, written "
             "files edited since). Changes nothing. Exit status: 0 healthy, 1 degraded, 2 usage."),
            ("doctor", "status, plus diagnoses, each with its fix",
             "What status checks, plus the diagnoses that cost more: another site shadowing OMERO.web's (Debian's "
             "default site), CSRF behind HTTPS, a stale pid file, static files, errors in OMEROweb.log since the last "
             "start, each web app imported as the OMERO.web user, the omero-web release against the security "
             "advisories, the OMERO.servers of server_list, disk space. Each problem says its fix in one sentence and "
             "the command, usually `omerowizard apply` of the saved answers. Changes nothing.")):
        h = sub.add_parser(name, help=helptext, description=desc)
        h.add_argument("--omerodir", help="the deployment (default: the only one on this host)")
        h.add_argument("--all", action="store_true", help="every deployment this host knows")
        h.add_argument("--json", action="store_true", help="one JSON document (its schema: `omerowizard status "
                                                           "--schema`; docs/operations.md)")
        h.add_argument("--verbose", "-v", action="store_true", help="also the checks that were skipped, and why")
    sub.choices["status"].add_argument("--schema", action="store_true",
                                       help="print the JSON Schema of the --json document and exit")

    lg = sub.add_parser("logs", help="OMEROweb.log and the web server's error log, merged by time",
                        description="Print the newest entries of OMERO.web's log (var/log/OMEROweb.log) and of this "
                                    "deployment's web-server error log, merged by time; -f follows them.")
    lg.add_argument("--omerodir", help="the deployment (default: the only one on this host)")
    lg.add_argument("-f", "--follow", action="store_true", help="keep printing what is appended (Ctrl-C stops)")
    lg.add_argument("-n", "--lines", type=int, default=40, metavar="N", help="entries to print first (default 40)")

    sb = sub.add_parser("support-bundle", help="a 0600 tarball for a bug report, secrets redacted",
                        description="Write a tarball (mode 0600) for a bug report or OME's forum: status and doctor "
                                    "as JSON, config.xml with secrets redacted, the rendered files, pip freeze of the "
                                    "OMERO.web environment, the last lines of each log, the command log of the last "
                                    "runs, the versions of the OS, Python, nginx and Apache.")
    sb.add_argument("--omerodir", help="the deployment (default: the only one on this host)")
    sb.add_argument("-o", "--output", metavar="FILE",
                    help="where to write it (default: ./omerowizard-support-<deployment>-<time>.tar.gz)")

    sub.add_parser("schema", help="print the JSON Schema of the answers file",
                   description="Print the JSON Schema of the answers file (for editors and CI checks).")

    s = sub.add_parser("answers", help="print the answers that describe the current deployment",
                       description="Print the saved answers, checked against the live OMERO config, as a file "
                                   "that `omerowizard apply` accepts.")
    s.add_argument("--user", help="the OMERO.web user (default: from the saved answers, else omero-web)")
    s.add_argument("--venv", help="the OMERO.web virtual environment")
    s.add_argument("--omerodir", help="OMERODIR")

    pb = sub.add_parser("playbook", help="write an Ansible playbook and inventory that reproduce this deployment",
                        description="Write an Ansible playbook and inventory skeleton for the collection "
                                    "omerowizard.omero_web (copied beside them): the deployment's answers as "
                                    "group_vars (shared) and host_vars (this host), secrets in a separate 0600 "
                                    "vault.yml to encrypt with ansible-vault, and the playbooks site.yml (all nodes) "
                                    "and rolling.yml (one node at a time).")
    deployment_options(pb)
    pb.add_argument("--output", default="omero-web-ansible", metavar="DIR",
                    help="where to write it (default: ./omero-web-ansible)")
    pb.add_argument("--host", help="this host's name in the inventory (default: its FQDN)")
    pb.add_argument("--force", action="store_true", help="replace files of an earlier skeleton in DIR")

    i = sub.add_parser("install-omero", help="install OMERO.web (user, virtual environment, zeroc-ice, omero-web)",
                       description="Install OMERO.web as its docs do: the system user, a virtual environment, "
                                   "zeroc-ice 3.6.5 (built once per machine when no wheel exists), omero-web and "
                                   "the packages the chosen features need, and OMERODIR. A second run changes nothing.")
    i.add_argument("--user", default="omero-web", help="the account OMERO.web runs as (default: omero-web)")
    i.add_argument("--venv", default="/opt/omero/web/venv3", help="virtual environment (default: /opt/omero/web/venv3)")
    i.add_argument("--omerodir", help=f"OMERODIR (default: {INSTALL_OMERODIR})")
    i.add_argument("--omero-web-version", metavar="VERSION", help="omero-web version (default: the newest)")
    i.add_argument("--with", dest="features", default="", metavar="FEATURES",
                   help="comma-separated extras: redis, memcached, cors")
    i.add_argument("--python", metavar="PATH", help="interpreter for the environment (default: /usr/bin/python3)")
    i.add_argument("--wheel", metavar="FILE",
                   help="install this zeroc-ice 3.6.5 wheel (e.g. one of OME's prebuilt wheels) instead of building it")
    i.add_argument("--jobs", type=int, default=os.cpu_count() or 1, metavar="N",
                   help="compilers run at once when zeroc-ice is built (default: all cores)")
    return p


# Each command's function, named by module so that it is imported only when the command runs (as the
# entry points of a package are): `--help` loads argparse alone, the headless commands never load the
# full-screen app's Textual, and the full-screen app never loads the plain prompts' questionary.
COMMANDS = {
    "schema": "omerowizard.ui.headless:schema_command",
    "apply": "omerowizard.ui.headless:apply_command",
    "answers": "omerowizard.ui.headless:answers_command",
    "playbook": "omerowizard.ui.headless:playbook_command",
    "rollback": "omerowizard.ui.headless:rollback_command",
    "install-omero": "omerowizard.ui.headless:install_command",
    "status": "omerowizard.ui.status:status_command",
    "doctor": "omerowizard.ui.status:doctor_command",
    "logs": "omerowizard.ui.status:logs_command",
    "support-bundle": "omerowizard.ui.status:bundle_command",
    "plain": "omerowizard.ui.plain:main",
    "full-screen": "omerowizard.ui.tui.app:main",
}


def command(name: str) -> Callable[..., int]:
    module, _, function = COMMANDS[name].partition(":")
    return getattr(importlib.import_module(module), function)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command:
            deployment_named(args)
            return command(args.command)(args)
        return interactive(args)
    except WizardError as exc:
        try:
            return report(exc)
        except OSError:  # the terminal went away (SIGHUP): the exit status still says what happened
            return exc.exit_code
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return pipe_closed()


def deployment_named(args: argparse.Namespace) -> None:
    """`omerowizard --omerodir D COMMAND`: the top-level option names the deployment of the command too (given
    twice, the two must agree)."""
    top = args.wizard_omerodir
    if top and hasattr(args, "omerodir"):
        if args.omerodir and os.path.normpath(args.omerodir) != os.path.normpath(top):
            raise UsageError(f"--omerodir is given twice ({top} before {args.command}, {args.omerodir} after it): "
                             "give it once")
        args.omerodir = top
    elif top:
        raise UsageError(f"--omerodir {top}: `omerowizard {args.command}` is about no deployment")
    if args.command == "install-omero" and not args.omerodir:
        args.omerodir = INSTALL_OMERODIR


def deployment_options(parser: argparse.ArgumentParser) -> None:
    """The options that name a deployment that already ran (its record gives the user and environment)."""
    parser.add_argument("--omerodir", help="the deployment (default: the only one on this host)")
    parser.add_argument("--user", help="the OMERO.web user (default: from the deployment's record)")
    parser.add_argument("--venv", help="the OMERO.web virtual environment (default: from the deployment's record)")


def pipe_closed() -> int:
    """The reader of our output went away (`omerowizard schema | head`): stop quietly, as a
    program killed by SIGPIPE would, instead of a traceback at exit when Python flushes stdout."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 141


def interactive(args: argparse.Namespace) -> int:
    if not sys.stdin.isatty():
        print("omerowizard: standard input is not a terminal, so there is nobody to answer questions.\n"
              "Use `omerowizard apply ANSWERS.yml` for a headless run (`omerowizard schema` documents the file).",
              file=sys.stderr)
        return 2
    if args.plain or not _full_screen_fits():
        if not args.plain:
            print("This terminal cannot hold the full-screen wizard; using plain prompts (--plain).", file=sys.stderr)
        return command("plain")(args.answers, args.wizard_omerodir)
    return command("full-screen")(args.answers, args.wizard_omerodir)


def _full_screen_fits() -> bool:
    term = os.environ.get("TERM", "")
    if term in {"", "dumb", "unknown"} or not sys.stdout.isatty():
        return False
    size = os.get_terminal_size(sys.stdout.fileno())
    return size.columns >= 80 and size.lines >= 24
