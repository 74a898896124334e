"""Day two's commands: ``status`` (is it healthy?), ``doctor`` (and if not, why, and the fix), ``logs`` (OMERO.web's
log and the web server's error log merged by time, ``-f`` to follow) and ``support-bundle`` (a 0600 tarball for a
bug report). Front ends only: the checks are ``omerowizard.state.health``."""

from __future__ import annotations

import argparse
import datetime as _dt
import io
import json
import sys
import tarfile
import time
from pathlib import Path

from omerowizard.model.errors import UsageError, WizardError
from omerowizard.model.health import PROBLEM, SKIPPED, WARNING, HealthContext
from omerowizard.state import health
from omerowizard.state.health import DeploymentHealth, Report, answers_of, bundle, logs
from omerowizard.system import safefs
from omerowizard.system.deployments import Deployment, all_deployments, running_omerodirs, slug
from omerowizard.system.watch import Watcher

LABEL = {"ok": "ok", WARNING: "WARNING", PROBLEM: "PROBLEM", SKIPPED: "skipped"}


# ---------------------------------------------------------------------------- choosing the deployments
def chosen(omerodir: str | None, all_: bool = False) -> list[str]:
    """The OMERODIRs a command is about: the one named, every one this host knows (--all), else the only one."""
    if omerodir and all_:
        raise UsageError("--omerodir and --all (command line): choose one deployment or all of them")
    if omerodir:
        return [Deployment(omerodir).omerodir]
    known = [d.omerodir for d in all_deployments()]
    if all_:
        known += [o for o in running_omerodirs() if o not in known]
        if not known:
            raise UsageError("no OMERO.web deployment is known on this host (none applied by omerowizard, none "
                             "running): name one with --omerodir DIR")
        return known
    if len(known) == 1:
        return known
    if not known:
        raise UsageError("no OMERO.web deployment is known on this host (none applied by omerowizard, none running): "
                         "name one with --omerodir DIR")
    raise UsageError("there are several deployments on this host; choose one with --omerodir, or --all:\n"
                     + "\n".join(f"  --omerodir {o}" for o in known))


def examine(omerodir: str, deep: bool) -> DeploymentHealth:
    a, has_saved = answers_of(omerodir)
    return health.examine(a, deep=deep, has_saved=has_saved)


def report(command: str, omerodirs: list[str]) -> Report:
    return Report(command, [examine(o, deep=command == "doctor") for o in omerodirs])


# ---------------------------------------------------------------------------- printing
def lines(rep: Report, verbose: bool = False) -> list[str]:
    out: list[str] = []
    for d in rep.deployments:
        if out:
            out.append("")
        out.append(f"OMERO.web in {d.omerodir}: {d.headline()}")
        v = d.versions
        if v:
            apps = ", ".join(f"{app} {ver or '(version not found)'}" for app, ver in v.get("apps", {}).items())
            out.append(f"  omero-web {v.get('omero-web') or '?'}, Django {v.get('django') or '?'}, omero-py "
                       f"{v.get('omero-py') or '?'}" + (f"; apps: {apps}" if apps else ""))
        for f in d.findings:
            if f.status == SKIPPED and not verbose:
                continue
            out.append(f"  {LABEL[f.status]:<8} {f.check}: {f.summary}")
            if f.status in (PROBLEM, WARNING):
                shown = f.details if f.status == PROBLEM or verbose else ()
                out += [f"{'':11}| {line}" for line in shown]
                if f.fix:
                    out.append(f"{'':11}fix: {f.fix}")
                if f.command:
                    out.append(f"{'':11}run: {f.command}")
        if d.answers_file is None:
            out.append("  note: omerowizard never applied this deployment: the checks assumed its defaults "
                       "(web server, ports)")
    if rep.command == "status" and rep.verdict == "degraded":
        out.append("")
        out.append("`omerowizard doctor` diagnoses further (each web app imported, the OMERO.servers, the logs, the "
                   "security advisories).")
    return out


def status_command(args: argparse.Namespace) -> int:
    if args.schema:
        sys.stdout.write(health.schema_text())
        return 0
    return _health_command("status", args)


def doctor_command(args: argparse.Namespace) -> int:
    return _health_command("doctor", args)


def _health_command(command: str, args: argparse.Namespace) -> int:
    rep = report(command, chosen(args.omerodir, getattr(args, "all", False)))
    if args.json:
        sys.stdout.write(json.dumps(rep.as_dict(), indent=1) + "\n")
    else:
        print("\n".join(lines(rep, verbose=getattr(args, "verbose", False))))
    return rep.exit_status


# ---------------------------------------------------------------------------- logs
def logs_command(args: argparse.Namespace) -> int:
    [omerodir] = chosen(args.omerodir)
    a, has_saved = answers_of(omerodir)
    ctx = HealthContext(a, {}, {}, a.omero.user, a.omero.venv, omerodir, has_saved=has_saved)
    if args.lines < 0:
        raise UsageError(f"--lines (command line): {args.lines} is not a number of lines (allowed: 0 or more)")
    sources = logs.sources(a)
    offsets = {s.path: safefs.size(s.path) for s in sources}  # what -f prints starts here
    shown, notes = logs.recent(ctx, args.lines) if args.lines else ([], [])
    for note in notes:
        print(f"omerowizard: {note}", file=sys.stderr)
    print("# " + "; ".join(f"{s.name}: {s.path}" for s in sources), flush=True)
    for e in shown:
        print(e.shown(), flush=True)
    if args.follow:
        follow(sources, offsets=offsets)
    return 0


def follow(sources: list[logs.Source], stop: float | None = None, offsets: dict[str, int] | None = None) -> None:
    """Print what is appended to each log (after ``offsets``, default their ends now), merged by time, until
    interrupted (or ``stop`` seconds): woken by inotify on the logs' directories (a short timeout notices a rotated
    file too), never a fixed sleep loop."""
    offsets = dict(offsets) if offsets is not None else {s.path: safefs.size(s.path) for s in sources}
    partial = {s.path: "" for s in sources}
    end = None if stop is None else time.monotonic() + stop
    with Watcher(str(Path(s.path).parent) for s in sources) as watcher:
        while end is None or time.monotonic() < end:
            watcher.wait(1.0 if end is None else max(0.0, min(1.0, end - time.monotonic())))
            fresh = []
            for s in sources:
                try:
                    size = safefs.size(s.path)
                    if size < offsets[s.path]:
                        offsets[s.path], partial[s.path] = 0, ""  # rotated or truncated: read it from the start
                    data = safefs.read_since(s.path, offsets[s.path])
                except (OSError, WizardError):
                    continue
                if not data:
                    continue
                offsets[s.path] += len(data)
                text = partial[s.path] + data.decode("utf-8", "replace")
                complete, _, partial[s.path] = text.rpartition("\n")
                if complete:
                    fresh.append(logs.entries(complete, s.name))
            for e in logs.merge(*fresh):
                print(e.shown(), flush=True)


# ---------------------------------------------------------------------------- support bundle
def bundle_command(args: argparse.Namespace) -> int:
    [omerodir] = chosen(args.omerodir)
    a, has_saved = answers_of(omerodir)
    status = health.examine(a, deep=False, has_saved=has_saved)
    doctor = health.examine(a, deep=True, has_saved=has_saved)
    config, _ = health.read_config(omerodir)
    members = bundle.gather(a, config, Report("doctor", [doctor]).as_dict(), Report("status", [status]).as_dict(),
                            has_saved)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.output or f"omerowizard-support-{slug(omerodir)}-{stamp}.tar.gz").absolute()
    data = tarball(members, f"omerowizard-support-{stamp}")
    safefs.write_bytes(str(out), data, mode=0o600)
    print(f"Wrote {out} (mode 0600, {len(data)} bytes, {len(members)} files): status and doctor as JSON, config.xml "
          "and the web-server files with secrets redacted, pip freeze, the last lines of each log, the command log "
          "of the last runs, the versions of the OS, Python and the web servers.")
    print("Look inside before you share it: tar -tzvf " + str(out))
    return 0


def tarball(members: list[tuple[str, bytes]], top: str) -> bytes:
    buf = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(f"{top}/{name.lstrip('/')}")
            info.size, info.mtime, info.mode = len(data), now, 0o600
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
