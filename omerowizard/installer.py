"""``omerowizard install-omero``: install OMERO.web the way its docs do, once.

Creates the OMERO.web user, a virtual environment with an interpreter that user can
run, zeroc-ice 3.6.5 (a binary wheel if one exists, else built from the sdist with the
Python 3.11 fixes and cached, so a machine builds it once), omero-web and the packages
the optional features need, and OMERODIR owned by the user; then checks
``omero version`` as that user. A second run finds everything and changes nothing.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from omerowizard import locations
from omerowizard.errors import InstallError
from omerowizard.omero import CommandLog, Omero, OmeroTarget, as_user_argv, run_streamed, user_exists
from omerowizard.venv import FEATURE_PACKAGES, inspect, normalise, pip_install

ICE_VERSION = "3.6.5"
Say = Callable[[str], None]


@dataclass
class InstallOptions:
    user: str = "omero-web"
    venv: Path = Path("/opt/omero/web/venv3")
    omerodir: Path = Path("/opt/omero/web/OMERO.web")
    omero_web_version: str | None = None
    features: list[str] = field(default_factory=list)
    python: str | None = None


@dataclass
class InstallReport:
    changed: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    omero_version: str = ""


def parse_features(text: str) -> list[str]:
    items = [w.strip() for w in text.split(",") if w.strip()]
    bad = [w for w in items if w not in FEATURE_PACKAGES]
    if bad:
        raise InstallError(f"--with: unknown feature {', '.join(bad)} (allowed: {', '.join(FEATURE_PACKAGES)})")
    return items


class Installer:
    def __init__(self, options: InstallOptions, say: Say = print, log: CommandLog | None = None):
        self.o = options
        self.say = say
        self.log = log or CommandLog()
        self.report = InstallReport()

    # ------------------------------------------------------------------ steps
    def run(self) -> InstallReport:
        self.ensure_user()
        self.ensure_venv()
        self.ensure_ice()
        self.ensure_omero_web()
        self.ensure_features()
        self.ensure_omerodir()
        self.verify()
        if self.report.changed:
            self.say(f"OMERO.web installed: {'; '.join(self.report.changed)}.")
        else:
            self.say(f"OMERO.web {self.report.omero_version} is already installed in {self.o.venv}: nothing changed.")
        return self.report

    def _done(self, what: str) -> None:
        self.report.changed.append(what)
        self.say(f"  done: {what}")

    def _present(self, what: str) -> None:
        self.report.present.append(what)
        self.say(f"  already there: {what}")

    def ensure_user(self) -> None:
        user = self.o.user
        if user == "root":
            raise InstallError("--user root: OMERO.web must run as its own account, not root (e.g. omero-web)")
        if user_exists(user):
            return self._present(f"user {user}")
        if os.geteuid() != 0:
            raise InstallError(f"the user {user!r} does not exist and only root can create it: run as root, or create it first")
        self._check(["useradd", "--system", "--create-home", "--shell", "/bin/bash", user], f"create user {user}")
        self._done(f"created system user {user}")

    def _python_for_user(self) -> str:
        candidates = [self.o.python] if self.o.python else ["/usr/bin/python3", sys.executable, shutil.which("python3") or ""]
        tried = []
        for cand in filter(None, candidates):
            argv = as_user_argv(self.o.user, [cand, "-c", "import sys, venv; assert sys.version_info >= (3, 10)"], {"HOME": "/"})
            ok = subprocess.run(argv, capture_output=True, cwd="/").returncode == 0
            if ok:
                return cand
            tried.append(cand)
        raise InstallError(
            f"no Python 3.10+ with venv that user {self.o.user!r} can run (tried {', '.join(tried)}); "
            "install python3-venv, or pass --python PATH readable by that user")

    def ensure_venv(self) -> None:
        venv = self.o.venv
        if (venv / "bin" / "python").exists() and inspect(venv) is not None:
            return self._present(f"virtual environment {venv}")
        python = self._python_for_user()
        venv.parent.mkdir(parents=True, exist_ok=True)
        self._check([python, "-m", "venv", str(venv)], f"create the virtual environment {venv}")
        self._pip(["--upgrade", "pip", "setuptools", "wheel"])
        self._done(f"created virtual environment {venv} with {python}")

    def _pip(self, args: list[str]) -> None:
        pip_install(self.o.venv, args, on_line=lambda line: self.say(f"    {line}"), log=self.log)

    def _pytag(self) -> str:
        found = inspect(self.o.venv)
        assert found is not None
        major, minor = found[0].split(".")
        return f"cp{major}{minor}"

    def ensure_ice(self) -> None:
        dists = inspect(self.o.venv)[1]  # type: ignore[index]
        if dists.get("zeroc-ice", "").startswith(ICE_VERSION):
            return self._present(f"zeroc-ice {dists['zeroc-ice']}")
        cached = self.cached_ice_wheel()
        if cached:
            self._pip([str(cached)])
            return self._done(f"installed zeroc-ice {ICE_VERSION} from the cached wheel {cached}")
        try:
            self._pip(["--only-binary", ":all:", f"zeroc-ice=={ICE_VERSION}"])
            return self._done(f"installed the binary wheel of zeroc-ice {ICE_VERSION}")
        except InstallError:
            self.say(f"  no binary wheel of zeroc-ice {ICE_VERSION} for this Python: building it from source")
        wheel = self.build_ice_wheel()
        self._pip([str(wheel)])
        self._done(f"built and installed zeroc-ice {ICE_VERSION} (wheel cached in {wheel.parent})")

    def cached_ice_wheel(self) -> Path | None:
        tag = self._pytag()
        for wheel in sorted(locations.wheel_cache().glob(f"zeroc_ice-{ICE_VERSION}-{tag}-{tag}-*.whl")):
            return wheel
        return None

    def build_ice_wheel(self) -> Path:
        cache = locations.wheel_cache()
        with tempfile.TemporaryDirectory(prefix="omerowizard-ice-") as tmp:
            self._check([str(self.o.venv / "bin" / "python"), "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                         "--disable-pip-version-check", "-d", tmp, f"zeroc-ice=={ICE_VERSION}"], "download the zeroc-ice sdist")
            sdist = next(Path(tmp).glob("zeroc-ice-*.tar.gz"))
            with tarfile.open(sdist) as tar:
                tar.extractall(tmp, filter="data") if hasattr(tarfile, "data_filter") else tar.extractall(tmp)
            src = Path(tmp) / f"zeroc-ice-{ICE_VERSION}"
            patch_ice_sources(src)
            self.say(f"  compiling zeroc-ice {ICE_VERSION} (about 6 to 7 minutes on 2 cores; once per machine)")
            start = time.monotonic()
            compiled = 0

            def progress(line: str) -> None:
                nonlocal compiled
                source = compiled_source(line)
                if source:
                    compiled += 1
                    elapsed = int(time.monotonic() - start)
                    self.say(f"    [{elapsed // 60}:{elapsed % 60:02d}] compiled {compiled} of about 217: {source}")

            argv = [str(self.o.venv / "bin" / "python"), "-m", "pip", "wheel", "-v", "--no-deps",
                    "--disable-pip-version-check", "-w", str(cache), str(src)]
            result = run_streamed(argv, on_line=progress, log=self.log)
            if result.returncode != 0:
                tail = "\n".join(result.output.strip().splitlines()[-20:])
                raise InstallError(f"building zeroc-ice {ICE_VERSION} failed (exit {result.returncode}):\n{tail}")
        wheel = self.cached_ice_wheel()
        if wheel is None:
            raise InstallError(f"pip reported success but no zeroc-ice wheel is in {cache}")
        return wheel

    def ensure_omero_web(self) -> None:
        dists = inspect(self.o.venv)[1]  # type: ignore[index]
        want = self.o.omero_web_version
        have = dists.get("omero-web")
        if have and (want is None or have == want):
            return self._present(f"omero-web {have}")
        self._pip([f"omero-web=={want}" if want else "omero-web"])
        self._done(f"installed omero-web {inspect(self.o.venv)[1].get('omero-web')}")  # type: ignore[index]

    def ensure_features(self) -> None:
        dists = inspect(self.o.venv)[1]  # type: ignore[index]
        missing = [FEATURE_PACKAGES[f] for f in self.o.features if normalise(FEATURE_PACKAGES[f]) not in dists]
        for f in self.o.features:
            if normalise(FEATURE_PACKAGES[f]) in dists:
                self._present(f"{FEATURE_PACKAGES[f]} (for {f})")
        if missing:
            self._pip(missing)
            self._done(f"installed {', '.join(missing)}")

    def ensure_omerodir(self) -> None:
        d = self.o.omerodir
        pw = pwd.getpwnam(self.o.user)
        if d.is_dir() and d.stat().st_uid == pw.pw_uid:
            return self._present(f"OMERODIR {d} owned by {self.o.user}")
        d.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            for root, dirs, files in os.walk(d):
                for name in [root, *(os.path.join(root, x) for x in dirs + files)]:
                    os.chown(name, pw.pw_uid, pw.pw_gid)
        self._done(f"created OMERODIR {d} owned by {self.o.user}")

    def verify(self) -> None:
        omero = Omero(OmeroTarget(self.o.user, self.o.venv, self.o.omerodir), log=self.log)
        self.report.omero_version = omero.version()
        self.say(f"  omero version (as {self.o.user}): {self.report.omero_version}")

    def _check(self, argv: list[str], what: str) -> None:
        result = run_streamed(argv, log=self.log)
        if result.returncode != 0:
            raise InstallError(f"could not {what}: `{' '.join(argv)}` exited {result.returncode}\n{result.output.strip()}")


_COMPILE = re.compile(r"(?:^|[\s/-])(?:gcc|g\+\+|c\+\+|cc)\s.*?\s-c\s+(\S+)")


def compiled_source(line: str) -> str | None:
    """The source file a compiler command line (as pip -v prints it) compiles, if it is one."""
    m = _COMPILE.search(line)
    return Path(m.group(1)).name if m else None


def patch_ice_sources(src: Path) -> None:
    """The two Python 3.11 fixes zeroc-ice 3.6.5 needs (see shared/omero-facts.md)."""
    slice_cpp = src / "src" / "Slice.cpp"
    text = slice_cpp.read_text()
    slice_cpp.write_text(text.replace("#include <eval.h>\n", ""))
    util_cpp = src / "src" / "Util.cpp"
    text = util_cpp.read_text()
    util_cpp.write_text(text.replace("PyThreadState_GET()->frame", "PyEval_GetFrame()"))
