"""Benchmarks of a deployment with omerowizard against doing it by hand (issue 8).

Run from the checkout, as root, on a machine with the e2e OMERO.web (``bash scripts/test`` or
``omerowizard install-omero --user omero-web --venv /opt/omerowizard-e2e/venv3 --with redis,cors``)::

    python3 -m bench.run [--repeat 5] [--warmup 1] [--json bench/results/latest.json]

Every figure is the median of ``--repeat`` runs after ``--warmup`` runs, each measured in the
same run as its baseline (the two alternate, so a busy machine slows both alike):

1. ``omerowizard apply`` of a full answers file (nginx, Redis, CORS with two origins, prefix,
   cookies; ``start: false``) on a fresh OMERODIR, against the OMERO 5.3 page's commands for the
   same end config run as a shell script. Both routes are checked to store the same config first.
2. ``omerowizard apply`` again, finding nothing to change, against one ``omero config get``.
3. ``omerowizard`` until its first screen shows "Welcome to omerowizard" in a pseudo-terminal,
   against a bare Textual app that draws one label.
4. ``omerowizard --help`` against ``python -c pass``.
5. ``omerowizard apply --dry-run`` of the same file on a fresh OMERODIR, against one
   ``omero config get``.
"""

from __future__ import annotations

import argparse
import compileall
import datetime as _dt
import importlib.metadata
import importlib.util
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bench import manual
from bench.services import Redis, free_port
from bench.terminal import time_to_text
from bench.timing import BenchError, Series, machine, ratio, timed

REPO = Path(__file__).resolve().parent.parent
WELCOME = "Welcome to omerowizard"
DEFAULT_JSON = REPO / "bench" / "results" / "latest.json"


@dataclass
class Figure:
    number: int
    name: str
    subject: Series
    baseline: Series
    goal: str = ""
    status: str = "measured"  # measured | not yet available
    notes: list[str] = field(default_factory=list)
    faster_is_ratio: bool = False  # figure 1: the goal is a speed-up (baseline / subject)

    @property
    def ratio(self) -> float | None:
        return ratio(self.subject.median, self.baseline.median)

    @property
    def speedup(self) -> float | None:
        return ratio(self.baseline.median, self.subject.median)

    @property
    def goal_met(self) -> bool | None:
        if self.status != "measured" or self.ratio is None:
            return None
        if self.number == 1:
            return self.speedup >= 5
        if self.number == 2:
            return self.ratio <= 1.5
        if self.number == 3:
            return self.ratio <= 2 and self.subject.median < 1.0
        return None  # figures 4 and 5 are reported, with no goal

    def ratio_text(self) -> str:
        if self.ratio is None:
            return "n/a"
        if self.faster_is_ratio:
            return f"{self.speedup:.1f}x faster"
        return f"{self.ratio:.2f}x"

    def as_dict(self) -> dict:
        return {"number": self.number, "name": self.name, "status": self.status,
                "subject": self.subject.as_dict(), "baseline": self.baseline.as_dict(),
                "ratio": round(self.ratio, 3) if self.ratio is not None else None,
                "speedup": round(self.speedup, 3) if self.speedup is not None else None,
                "ratio_text": self.ratio_text(), "goal": self.goal, "goal_met": self.goal_met, "notes": self.notes}


class Bench:
    def __init__(self, venv: Path, user: str, root: Path, repeat: int, warmup: int, say=print):
        self.venv, self.user, self.repeat, self.warmup, self.say = venv, user, repeat, warmup, say
        self.omero_exe = venv / "bin" / "omero"
        self.pw = pwd.getpwnam(user)
        self.dirs = root / f"bench-{uuid.uuid4().hex[:10]}"  # the OMERODIRs (omero-web must reach them)
        self.dirs.mkdir(parents=True, mode=0o755)
        self.work = Path(tempfile.mkdtemp(prefix="omerowizard-bench-"))  # answers files, homes, nginx files
        self.redis = Redis(self.work / "redis")
        self.deployment = manual.Deployment(app_port=free_port(), redis=self.redis.url)
        self.manual_script = self.dirs / "manual.sh"
        self._n = 0
        self.wizard = _wizard_command()
        self.deployed: tuple[Path, Path, Path] | None = None  # (omerodir, answers file, home) after figure 1

    # -- set-up ----------------------------------------------------------------------------
    def open(self) -> None:
        self.redis.start()

    def close(self) -> None:
        self.redis.stop()
        shutil.rmtree(self.dirs, ignore_errors=True)
        shutil.rmtree(self.work, ignore_errors=True)

    def fresh(self, kind: str) -> tuple[Path, Path, Path]:
        """A fresh OMERODIR (owned by the OMERO.web user), an answers file for it and an empty home."""
        self._n += 1
        omerodir = self.dirs / f"{kind}-{self._n}"
        omerodir.mkdir(mode=0o755)
        os.chown(omerodir, self.pw.pw_uid, self.pw.pw_gid)
        nginx = self.work / f"{kind}-{self._n}-omero-web.conf"
        answers = self.work / f"{kind}-{self._n}.yml"
        data = self.deployment.answers(self.user, str(self.venv), str(omerodir), str(nginx))
        answers.write_text(yaml.safe_dump(data, sort_keys=False))
        home = self.work / f"{kind}-{self._n}-home"
        return omerodir, answers, home

    def env(self, home: Path, **extra: str) -> dict[str, str]:
        return {**os.environ, "OMEROWIZARD_HOME": str(home), **extra}

    def as_user(self, omerodir: Path, *argv: str) -> list[str]:
        """How an administrator runs omero: as the OMERO.web user, with OMERODIR and the venv on PATH."""
        return ["runuser", "-u", self.user, "--", "env", f"OMERODIR={omerodir}", f"HOME={self.pw.pw_dir}",
                f"PATH={self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", *argv]

    def config_get(self, omerodir: Path) -> dict[str, str]:
        _, out = timed(self.as_user(omerodir, str(self.omero_exe), "config", "get", "--show-password"))
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line and not line.startswith(" "))

    def runs(self):
        """Indexes of all runs; ``keep(i)`` says whether run ``i`` counts (warm-ups do not)."""
        return range(self.warmup + self.repeat)

    def keep(self, i: int) -> bool:
        return i >= self.warmup

    def progress(self, fig: int, i: int) -> None:
        what = "warm-up" if not self.keep(i) else f"run {i - self.warmup + 1}/{self.repeat}"
        self.say(f"figure {fig}: {what}", file=sys.stderr, flush=True)

    # -- figures ---------------------------------------------------------------------------
    def figure1(self) -> Figure:
        d = self.deployment
        wiz = Series("omerowizard apply (full answers file, start: false)", " ".join([*self.wizard, "apply", "ANSWERS.yml"]))
        man = Series(f"the 5.3 page's {manual.process_count(d)} omero commands as a shell script",
                     f"runuser -u {self.user} -- sh manual.sh")
        fig = Figure(1, "apply a full answers file on a fresh OMERODIR", wiz, man, goal="at least 5x faster",
                     faster_is_ratio=True)
        for i in self.runs():
            self.progress(1, i)
            omerodir, answers, home = self.fresh("apply")
            manual_dir, _, _ = self.fresh("manual")
            self.manual_script.write_text(manual.script(d, str(manual_dir / "omero-web.conf")))
            order = [("wizard", omerodir), ("manual", manual_dir)]
            for who, where in (order if i % 2 == 0 else order[::-1]):
                if who == "wizard":
                    t, _ = timed([*self.wizard, "apply", str(answers)], env=self.env(home), cwd=str(self.work),
                                 expect="Done.")
                    if self.keep(i):
                        wiz.runs.append(t)
                else:
                    t, _ = timed(self.as_user(where, "sh", str(self.manual_script)), cwd="/")
                    if self.keep(i):
                        man.runs.append(t)
            if i == 0:
                fig.notes += self.same_config(omerodir, manual_dir, home)
            self.deployed = (omerodir, answers, home)
        return fig

    def same_config(self, wizard_dir: Path, manual_dir: Path, home: Path) -> list[str]:
        """Both routes must end at the same stored config, or the comparison means nothing."""
        ours, theirs = self.config_get(wizard_dir), self.config_get(manual_dir)
        if ours != theirs:
            keys = sorted(set(ours) | set(theirs))
            diff = "\n".join(f"  {k}: omerowizard={ours.get(k)!r} manual={theirs.get(k)!r}"
                             for k in keys if ours.get(k) != theirs.get(k))
            raise BenchError(f"omerowizard and the manual commands stored different configs:\n{diff}")
        # the deployment's own command log, in omerowizard's state below this run's home
        logs = list((home / "state" / "deployments").glob("*/commands.log"))
        text = "".join(p.read_text() for p in logs if wizard_dir.name in p.parent.name)
        # each command is logged at its start (" start $ ") and at its end (" $ "): count the ends
        calls = sum(1 for line in text.splitlines() if line.startswith("--- ") and " $ " in line
                    and " start $ " not in line)
        notes = [f"both routes store the same {len(ours)} keys (checked with omero config get)",
                 f"omero processes: omerowizard {calls}, manual {manual.process_count(self.deployment)}"]
        nginx = self.work / f"{wizard_dir.name}-omero-web.conf"
        notes.append("omerowizard wrote the nginx file itself" if nginx.exists()
                     else "omerowizard wrote no nginx file (web-server files not implemented yet); "
                          "the manual route's `omero web config nginx` is still timed")
        return notes

    def figure2(self) -> Figure:
        assert self.deployed is not None
        omerodir, answers, home = self.deployed
        wiz = Series("omerowizard apply, nothing to change", " ".join([*self.wizard, "apply", "ANSWERS.yml"]))
        base = Series("one omero config get", f"runuser -u {self.user} -- omero config get")
        fig = Figure(2, "rerun that finds nothing to change", wiz, base, goal="at most 1.5x")
        for i in self.runs():
            self.progress(2, i)
            t1, _ = timed([*self.wizard, "apply", str(answers)], env=self.env(home), cwd=str(self.work),
                          expect="Nothing to change")
            t2, _ = timed(self.as_user(omerodir, "omero", "config", "get"), cwd="/")
            if self.keep(i):
                wiz.runs.append(t1)
                base.runs.append(t2)
        return fig

    def figure5(self) -> Figure:
        wiz = Series("omerowizard apply --dry-run (fresh OMERODIR)",
                     " ".join([*self.wizard, "apply", "--dry-run", "ANSWERS.yml"]))
        base = Series("one omero config get", f"runuser -u {self.user} -- omero config get")
        fig = Figure(5, "dry run of the same file on a fresh OMERODIR", wiz, base, goal="(reported)")
        for i in self.runs():
            self.progress(5, i)
            omerodir, answers, home = self.fresh("dryrun")
            t1, out = timed([*self.wizard, "apply", "--dry-run", str(answers)], env=self.env(home),
                            cwd=str(self.work), expect="Dry run: nothing was changed.")
            if i == 0:
                planned = sum(1 for line in out.splitlines() if line.startswith("  set "))
                fig.notes.append(f"the dry run plans {planned} config sets")
                if (omerodir / "etc" / "grid" / "config.xml").exists():
                    fig.notes.append("the dry run left an empty etc/grid/config.xml (its `omero config get` "
                                     "creates one)")
            t2, _ = timed(self.as_user(omerodir, "omero", "config", "get"), cwd="/")
            if self.keep(i):
                wiz.runs.append(t1)
                base.runs.append(t2)
        return fig

    def figure4(self) -> Figure:
        wiz = Series("omerowizard --help", " ".join([*self.wizard, "--help"]))
        base = Series("python -c pass", f"{sys.executable} -c pass")
        fig = Figure(4, "start-up: --help", wiz, base, goal="(reported)")
        reps = max(3 * self.repeat, 3)
        for i in range(self.warmup + reps):
            t1, _ = timed([*self.wizard, "--help"], expect="usage: omerowizard")
            t2, _ = timed([sys.executable, "-c", "pass"])
            if i >= self.warmup:
                wiz.runs.append(t1)
                base.runs.append(t2)
        return fig

    def figure3(self) -> Figure:
        wiz = Series("omerowizard until its first screen is drawn", " ".join([*self.wizard, "--answers", "ANSWERS.yml"]))
        base = Series("a bare Textual app drawing one label", f"{sys.executable} bench/bare_textual.py")
        fig = Figure(3, "first screen in a real terminal (pty, 120x40)", wiz, base,
                     goal="at most 2x, and under 1 s")
        if not tui_available():
            fig.status = "not yet available"
            fig.notes.append("omerowizard/ui/tui/app.py (run_app) does not exist yet: nothing to measure")
        assert self.deployed is not None
        _, answers, home = self.deployed
        term = {"TERM": "xterm-256color", "COLORTERM": "truecolor"}
        for i in self.runs():
            self.progress(3, i)
            if fig.status == "measured":
                got = time_to_text([*self.wizard, "--answers", str(answers)], WELCOME, self.env(home, **term),
                                   cwd=str(self.work))
                if got.seconds is None:
                    raise BenchError(f"omerowizard never drew {WELCOME!r} (exit status {got.exit_status}); "
                                     f"last output:\n{got.tail}")
                if self.keep(i):
                    wiz.runs.append(got.seconds)
            got = time_to_text([sys.executable, str(REPO / "bench" / "bare_textual.py")], WELCOME,
                               {**os.environ, **term}, cwd=str(self.work))
            if got.seconds is None:
                raise BenchError(f"the bare Textual app never drew its label; last output:\n{got.tail}")
            if self.keep(i):
                base.runs.append(got.seconds)
        return fig


def tui_available() -> bool:
    try:
        spec = importlib.util.find_spec("omerowizard.ui.tui.app")
    except ModuleNotFoundError:
        return False
    return spec is not None


def _wizard_command() -> list[str]:
    """The installed ``omerowizard`` script of this interpreter (not a pyenv shim, which adds a shell)."""
    script = Path(sys.executable).parent / "omerowizard"
    return [str(script)] if script.exists() else [sys.executable, "-m", "omerowizard"]


def _versions(venv: Path) -> dict:
    out = {}
    for name in ("omerowizard", "textual"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    paths = [str(p) for p in venv.glob("lib/python3*/site-packages")]
    for dist in importlib.metadata.distributions(path=paths):
        if dist.metadata["Name"] in {"omero-web", "omero-py", "Django"}:
            out[dist.metadata["Name"].lower()] = dist.version
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
    except OSError:
        commit = ""
    out["git_commit"] = commit or None
    return out


def table(figures: list[Figure]) -> str:
    rows = ["| # | measurement | omerowizard (median) | baseline | baseline (median) | ratio | goal | met |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for f in figures:
        if f.status != "measured":
            ours = f.status
        else:
            ours = f"{f.subject.median:.3f} s"
        base = f"{f.baseline.median:.3f} s" if f.baseline.median is not None else "n/a"
        met = {True: "yes", False: "NO", None: "-"}[f.goal_met]
        rows.append(f"| {f.number} | {f.name} | {ours} | {f.baseline.label} | {base} | "
                    f"{f.ratio_text() if f.status == 'measured' else 'n/a'} | {f.goal} | {met} |")
    return "\n".join(rows)


def preflight(venv: Path, user: str) -> None:
    problems = []
    if os.geteuid() != 0:
        problems.append("run the benchmarks as root (omero runs as the OMERO.web user through runuser)")
    if not (venv / "bin" / "omero").exists():
        problems.append(f"no OMERO.web at {venv}: install it with `bash scripts/test` or `omerowizard install-omero "
                        f"--user {user} --venv {venv} --with redis,cors`")
    try:
        pwd.getpwnam(user)
    except KeyError:
        problems.append(f"the user {user!r} does not exist (omerowizard install-omero creates it)")
    if not shutil.which("runuser"):
        problems.append("runuser is missing (apt-get install util-linux)")
    if problems:
        raise BenchError("cannot benchmark here:\n  " + "\n  ".join(problems))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=5, help="timed runs per figure (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs first (default 1)")
    p.add_argument("--json", default=str(DEFAULT_JSON), help=f"where to write the results (default {DEFAULT_JSON})")
    p.add_argument("--venv", default=os.environ.get("OMEROWIZARD_BENCH_VENV", "/opt/omerowizard-e2e/venv3"))
    p.add_argument("--user", default="omero-web")
    p.add_argument("--root", default=os.environ.get("OMEROWIZARD_E2E_ROOT", "/opt/omerowizard-e2e"),
                   help="where the benchmark's OMERODIRs go (removed afterwards)")
    p.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    args = p.parse_args(argv)
    if args.repeat < 1 or args.warmup < 0:
        p.error("--repeat must be at least 1 and --warmup at least 0")
    venv = Path(args.venv)
    # as after `pip install`: omerowizard's modules run from compiled bytecode, not recompiled each start
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    for where in importlib.util.find_spec("omerowizard").submodule_search_locations or []:
        compileall.compile_dir(where, quiet=1)
    try:
        preflight(venv, args.user)
        info = machine()
        bench = Bench(venv, args.user, Path(args.root), args.repeat, args.warmup)
        try:
            bench.open()
            figures = [bench.figure1(), bench.figure2(), bench.figure5(), bench.figure4(), bench.figure3()]
        finally:
            bench.close()
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    figures.sort(key=lambda f: f.number)
    info["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": info,
        "versions": _versions(venv),
        "repeat": args.repeat,
        "warmup": args.warmup,
        "figures": [f.as_dict() for f in figures],
    }
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"omerowizard benchmarks, {result['date']}, {info['nproc']} x {info['cpu']}, Python {info['python']}, "
          f"load {info['loadavg_at_start']} -> {info['loadavg_at_end']}")
    print(table(figures))
    for f in figures:
        for note in f.notes:
            print(f"note {f.number}: {note}")
    print(f"results written to {out}")
    missed = [f for f in figures if f.goal_met is False]
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
