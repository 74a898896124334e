"""``omerowizard install-omero``: install OMERO.web the way its docs do, once.

Creates the OMERO.web user, a virtual environment with an interpreter that user can
run, zeroc-ice 3.6.5 (a wheel the administrator gives with ``--wheel``, a cached one, a
binary wheel if one exists, else built from the sdist with the Python 3.11 fixes on all
cores and cached, so a machine builds it once), omero-web and the packages the optional
features need, and OMERODIR owned by the user; then checks ``omero version`` as that user.
A second run finds everything and changes nothing.

An installation can be cancelled (``cancel_running``: Ctrl-C after a confirmation, SIGHUP,
SIGTERM, or the Textual app's dialog): the process groups it started (pip and every compiler)
are ended and its temporary directories, where pip also keeps its own, are removed.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from omerowizard.model.errors import InstallError, UsageError
from omerowizard.model.secrets import mask_text
from omerowizard.system import locations, processes, safefs
from omerowizard.system.distributions import packages
from omerowizard.system.omero import CommandLog, Omero, OmeroTarget
from omerowizard.system.processes import end_running, user_exists
from omerowizard.system.safefs import trusted_path
from omerowizard.system.venv import FEATURE_PACKAGES, base_interpreter, normalise, pip_install, pip_user, python_version

ICE_VERSION = "3.6.5"
# the sha256 of zeroc-ice 3.6.5's sdist on PyPI (zeroc-ice-3.6.5.tar.gz): a build runs its setup.py, so only
# that exact source is built (pip --require-hashes), never one anybody could have changed
ICE_SDIST_SHA256 = "4235ffeb605bcd4e22e716577f7d61e4aa1bc82f65276bb542701a81b7933356"
WHEEL_NAME = re.compile(r"^zeroc_ice-" + re.escape(ICE_VERSION) + r"-[^-]+-[^-]+-[^-]+\.whl$")
Say = Callable[[str], None]


class InstallCancelled(InstallError):
    """The installation was cancelled; what it had started is ended and its temporary files removed."""

    def __init__(self, why: str, exit_code: int = 130):
        super().__init__(f"installation cancelled ({why}): the build was stopped and its temporary files removed; "
                         "nothing else was undone (run install-omero again to go on)")
        self.exit_code = exit_code


_ACTIVE: set["Installer"] = set()


def cancel_running(why: str = "cancelled") -> bool:
    """Cancel every installation running in this process (from any thread or a signal handler).
    True if there was one."""
    found = list(_ACTIVE)
    for installer in found:
        installer.cancel(why)
    return bool(found)


def check_wheel(value: str) -> Path:
    """``--wheel FILE``, checked before anything changes (exit 2 with what is allowed)."""
    allowed = f"a zeroc-ice {ICE_VERSION} wheel file, such as zeroc_ice-{ICE_VERSION}-cp311-cp311-linux_x86_64.whl"
    path = Path(value).expanduser()
    problem = None
    if not WHEEL_NAME.match(path.name):
        problem = "is not named like a zeroc-ice wheel"
    elif not path.exists():
        problem = "does not exist"
    elif not path.is_file():
        problem = "is not a file"
    if problem:
        raise UsageError(f"--wheel (command line): {value!r} {problem} (allowed: {allowed})")
    return path.resolve()


@contextlib.contextmanager
def cancel_on_signals(confirm: Callable[[], bool] | None = None) -> Iterator[None]:
    """While installing from the command line (main thread): SIGHUP and SIGTERM cancel the
    installation; Ctrl-C cancels it once ``confirm`` says so (at once without ``confirm``)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def ends(signum, frame):
        name = signal.Signals(signum).name
        cancel_running(name)
        raise InstallCancelled(name, 128 + signum)

    def interrupted(signum, frame):
        if confirm is not None:
            try:
                if not confirm():
                    return
            except (KeyboardInterrupt, EOFError, OSError):
                pass  # a second Ctrl-C, or nobody to answer: yes
        cancel_running("Ctrl-C")
        raise InstallCancelled("Ctrl-C", 130)

    old = {sig: signal.signal(sig, handler) for sig, handler in
           ((signal.SIGHUP, ends), (signal.SIGTERM, ends), (signal.SIGINT, interrupted))}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def confirm_on_terminal() -> bool:
    """Asked on Ctrl-C while installing from the command line."""
    if not sys.stdin.isatty():
        return True
    sys.stdout.write("\nStop the installation? The build so far is lost and its temporary files removed. [y/N] ")
    sys.stdout.flush()
    answer = sys.stdin.readline().strip().lower()
    if answer in {"y", "yes"}:
        return True
    print("Going on.", flush=True)
    return False


@dataclass
class InstallOptions:
    user: str = "omero-web"
    venv: Path = Path("/opt/omero/web/venv3")
    omerodir: Path = Path("/opt/omero/web/OMERO.web")
    omero_web_version: str | None = None
    features: list[str] = field(default_factory=list)
    python: str | None = None
    wheel: Path | None = None  # a zeroc-ice wheel the administrator already has
    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)  # compilers run at once


@dataclass
class InstallReport:
    changed: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    omero_version: str = ""  # omero-py's, as `omero version` prints it
    versions: dict[str, str] = field(default_factory=dict)  # omero-web and omero-py


def parse_features(text: str) -> list[str]:
    items = [w.strip() for w in text.split(",") if w.strip()]
    bad = [w for w in items if w not in FEATURE_PACKAGES]
    if bad:
        raise UsageError(f"--with (command line): unknown feature {', '.join(bad)} "
                         f"(allowed: {', '.join(FEATURE_PACKAGES)})")
    return items


class Installer:
    def __init__(self, options: InstallOptions, say: Say = print, log: CommandLog | None = None):
        self.o = options
        self.say = say
        self.log = log or CommandLog()
        self.report = InstallReport()
        self.cancelled: str | None = None
        self._tmpdirs: set[Path] = set()

    # ------------------------------------------------------------------ steps
    def run(self) -> InstallReport:
        _ACTIVE.add(self)
        try:
            for step in (self.ensure_user, self.ensure_venv, self.ensure_ice, self.ensure_omero_web,
                         self.ensure_features, self.ensure_omerodir, self.verify):
                self._stop_if_cancelled()
                step()
        except InstallCancelled:
            raise
        except Exception:
            self._stop_if_cancelled()  # a step that failed because it was cancelled says so
            raise
        finally:
            _ACTIVE.discard(self)
            self._remove_tmpdirs()
        if self.report.changed:
            self.say(f"OMERO.web installed ({self.versions_text()}): {'; '.join(self.report.changed)}.")
        else:
            self.say(f"OMERO.web is already installed in {self.o.venv} ({self.versions_text()}): nothing changed.")
        return self.report

    def versions_text(self) -> str:
        return ", ".join(f"{name} {version}" for name, version in self.report.versions.items())

    # ------------------------------------------------------------------ cancelling
    def cancel(self, why: str = "cancelled") -> None:
        """End what the installation runs (pip and its compilers) and remove its temporary files."""
        self.cancelled = why
        end_running()
        self._remove_tmpdirs()

    def _stop_if_cancelled(self) -> None:
        if self.cancelled:
            raise InstallCancelled(self.cancelled)

    def _tmpdir(self) -> Path:
        tmp = Path(tempfile.mkdtemp(prefix="omerowizard-ice-"))
        self._tmpdirs.add(tmp)
        return tmp

    def _remove_tmpdirs(self) -> None:
        for tmp in list(self._tmpdirs):
            shutil.rmtree(tmp, ignore_errors=True)
            self._tmpdirs.discard(tmp)

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
            ok = processes.run([cand, "-c", "import sys, venv; assert sys.version_info >= (3, 10)"], user=self.o.user,
                               env={"HOME": "/"}, separate_errors=True).returncode == 0
            if ok:
                return cand
            tried.append(cand)
        raise InstallError(
            f"no Python 3.10+ with venv that user {self.o.user!r} can run (tried {', '.join(tried)}); "
            "install python3-venv, or pass --python PATH readable by that user")

    def ensure_venv(self) -> None:
        venv = self.o.venv
        if (venv / "bin" / "python").exists() and python_version(venv) is not None:
            return self._present(f"virtual environment {venv}")
        python = self._python_for_user()
        venv.parent.mkdir(parents=True, exist_ok=True)
        self._check([python, "-m", "venv", str(venv)], f"create the virtual environment {venv}")
        self._pip(["--upgrade", "pip", "setuptools", "wheel"])
        self._done(f"created virtual environment {venv} with {python}")

    def _pip(self, args: list[str]) -> None:
        try:
            pip_install(self.o.venv, args, on_line=lambda line: self.say(f"    {line}"), log=self.log)
        finally:
            self._stop_if_cancelled()

    def _pytag(self) -> str:
        found = python_version(self.o.venv)
        if found is None:
            raise InstallError(f"cannot tell the Python version of {self.o.venv} (no pyvenv.cfg, no lib/pythonX.Y)")
        major, minor = found.split(".")
        return f"cp{major}{minor}"

    def ensure_ice(self) -> None:
        dists = packages(self.o.venv)
        if dists.get("zeroc-ice", "").startswith(ICE_VERSION):
            return self._present(f"zeroc-ice {dists['zeroc-ice']}")
        if self.o.wheel is not None:
            self._pip([str(self.o.wheel)])
            return self._done(f"installed zeroc-ice {ICE_VERSION} from the wheel {self.o.wheel}")
        cached = self.cached_ice_wheel()
        if cached:
            self._pip([str(cached)])
            return self._done(f"installed zeroc-ice {ICE_VERSION} from the cached wheel {cached}")
        try:
            self._pip(["--only-binary", ":all:", f"zeroc-ice=={ICE_VERSION}"])
            return self._done(f"installed the binary wheel of zeroc-ice {ICE_VERSION}")
        except InstallCancelled:
            raise
        except InstallError:
            self.say(f"  no binary wheel of zeroc-ice {ICE_VERSION} for this Python: building it from source")
        wheel = self.build_ice_wheel()
        self._pip([str(wheel)])
        self._done(f"built and installed zeroc-ice {ICE_VERSION} (wheel cached in {wheel.parent})")

    def wheel_cache(self) -> Path:
        """The wheel cache (root: the machine's, checked so that no other user can plant a wheel there)."""
        path = locations.wheel_cache_path()
        if os.geteuid() == 0:
            why = trusted_path(path)
            if why:
                raise InstallError(f"the wheel cache {path} is not safe for root: {why}. Make it root's "
                                   "(chown root: and chmod 755), or set OMEROWIZARD_WHEEL_CACHE to a directory that is")
        return locations.wheel_cache()

    def cached_ice_wheel(self) -> Path | None:
        tag = self._pytag()
        for wheel in sorted(self.wheel_cache().glob(f"zeroc_ice-{ICE_VERSION}-{tag}-{tag}-*.whl")):
            if os.geteuid() == 0 and trusted_path(wheel):
                raise InstallError(f"the cached wheel {wheel} is not safe for root: {trusted_path(wheel)}")
            return wheel
        return None

    def build_ice_wheel(self) -> Path:
        cache = self.wheel_cache()
        tmp = self._tmpdir()
        # pip's own temporary directories (the build environment, the unpacked source) go below
        # ours, so that a cancelled build leaves nothing behind
        env = {"TMPDIR": str(tmp), "MAKEFLAGS": f"-j{self.o.jobs}"}
        try:
            python = self.build_python(tmp)
            pinned = tmp / "zeroc-ice.txt"
            pinned.write_text(f"zeroc-ice=={ICE_VERSION} --hash=sha256:{ICE_SDIST_SHA256}\n")
            self._check([python, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--require-hashes",
                         "--disable-pip-version-check", "-d", str(tmp), "-r", str(pinned)],
                        "download the zeroc-ice sdist", env=env)
            sdist = next(tmp.glob("zeroc-ice-*.tar.gz"))
            with tarfile.open(sdist) as tar:
                tar.extractall(tmp, filter="data") if hasattr(tarfile, "data_filter") else tar.extractall(tmp)
            src = tmp / f"zeroc-ice-{ICE_VERSION}"
            patch_ice_sources(src, jobs=self.o.jobs)
            self.say(f"  compiling zeroc-ice {ICE_VERSION} on {self.o.jobs} core{'s' if self.o.jobs != 1 else ''} "
                     "(minutes; once per machine; Ctrl-C cancels)")
            start = time.monotonic()
            compiled = 0

            def progress(line: str) -> None:
                nonlocal compiled
                source = compiled_source(line)
                if source:
                    compiled += 1
                    elapsed = int(time.monotonic() - start)
                    self.say(f"    [{elapsed // 60}:{elapsed % 60:02d}] compiled {compiled} of about 217: {source}")

            argv = [python, "-m", "pip", "wheel", "-v", "--no-deps", "--disable-pip-version-check", "-w", str(cache),
                    str(src)]
            result = processes.run(argv, on_line=progress, log=self.log, env=env)
            self._stop_if_cancelled()
            if result.returncode != 0:
                tail = "\n".join(result.output.strip().splitlines()[-20:])
                raise InstallError(f"building zeroc-ice {ICE_VERSION} failed (exit {result.returncode}):\n{tail}")
        except (OSError, StopIteration, tarfile.TarError):
            self._stop_if_cancelled()  # the files went away because the build was cancelled
            raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            self._tmpdirs.discard(tmp)
        wheel = self.cached_ice_wheel()
        if wheel is None:
            raise InstallError(f"pip reported success but no zeroc-ice wheel is in {cache}")
        return wheel

    def build_python(self, tmp: Path) -> str:
        """The Python that builds zeroc-ice (as this process: the sdist is PyPI's, checked by its hash, unpacked in
        a directory only this process can write): the environment's own when root may run it, else a fresh
        environment in ``tmp`` made from the same interpreter (root never runs the Python of an environment
        another user can change; the wheel is then installed there as that user)."""
        own = str(self.o.venv / "bin" / "python")
        if os.geteuid() != 0 or pip_user(self.o.venv) is None:
            return own
        base = base_interpreter(self.o.venv)
        why = processes.path_problem(base) if base else f"{self.o.venv}/pyvenv.cfg names no interpreter"
        if base is None or why:
            raise InstallError(f"cannot build zeroc-ice for {self.o.venv} as root: {why}. Give a zeroc-ice wheel with "
                               "--wheel, or make the environment from an interpreter root owns (/usr/bin/python3)")
        build = tmp / "build-venv"
        self.say(f"  {self.o.venv} belongs to {pip_user(self.o.venv)}: building in a fresh environment of {base}")
        self._check([base, "-m", "venv", str(build)], f"create a build environment with {base}")
        return str(build / "bin" / "python")

    def ensure_omero_web(self) -> None:
        dists = packages(self.o.venv)
        want = self.o.omero_web_version
        have = dists.get("omero-web")
        if have and (want is None or have == want):
            return self._present(f"omero-web {have}")
        self._pip([f"omero-web=={want}" if want else "omero-web"])
        self._done(f"installed omero-web {packages(self.o.venv).get('omero-web')}")

    def ensure_features(self) -> None:
        dists = packages(self.o.venv)
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
                    os.chown(name, pw.pw_uid, pw.pw_gid, follow_symlinks=False)  # a link is chowned, never its target
        self._done(f"created OMERODIR {d} owned by {self.o.user}")

    def verify(self) -> None:
        omero = Omero(OmeroTarget(self.o.user, self.o.venv, self.o.omerodir), log=self.log)
        self.report.omero_version = omero.version()
        dists = installed_versions(self.o.venv)
        self.report.versions = {name: dists[name] for name in ("omero-web", "omero-py") if name in dists}
        # `omero version` prints omero-py's version (the CLI's), not omero-web's
        self.say(f"  omero version (as {self.o.user}): {self.report.omero_version} (omero-py)")

    def _check(self, argv: list[str], what: str, env: dict[str, str] | None = None, as_owner: bool = False) -> None:
        result = processes.run(argv, log=self.log, env=env, as_owner=as_owner)
        self._stop_if_cancelled()
        if result.returncode != 0:
            raise InstallError(f"could not {what}: `{' '.join(argv)}` exited {result.returncode}\n"
                               f"{mask_text(result.output.strip())}")


_COMPILE = re.compile(r"(?:^|[\s/-])(?:gcc|g\+\+|c\+\+|cc)\s.*?\s-c\s+(\S+)")


def compiled_source(line: str) -> str | None:
    """The source file a compiler command line (as pip -v prints it) compiles, if it is one."""
    m = _COMPILE.search(line)
    return Path(m.group(1)).name if m else None


def installed_versions(venv: Path) -> dict[str, str]:
    return packages(venv)


# setuptools' own parallel option (build_ext -j) runs one extension per process, and zeroc-ice
# is one extension of about 217 sources: this compiles that extension's sources on all cores
PARALLEL_COMPILE = '''\
# --- added by omerowizard: compile the sources of an extension on {jobs} cores ---
import setuptools as _omw_setuptools  # noqa: F401  (setuptools' distutils, not the standard library's)
from distutils import ccompiler as _omw_ccompiler


def _omw_compile(self, sources, output_dir=None, macros=None, include_dirs=None, debug=0, extra_preargs=None,
                 extra_postargs=None, depends=None):
    from concurrent.futures import ThreadPoolExecutor
    macros, objects, extra_postargs, pp_opts, build = self._setup_compile(
        output_dir, macros, include_dirs, sources, depends, extra_postargs)
    cc_args = self._get_cc_args(pp_opts, debug, extra_preargs)

    def one(obj):
        if obj in build:
            src, ext = build[obj]
            self._compile(obj, src, ext, cc_args, extra_postargs, pp_opts)

    with ThreadPoolExecutor({jobs}) as pool:
        list(pool.map(one, objects))
    return objects


_omw_ccompiler.CCompiler.compile = _omw_compile
# --- end of omerowizard's addition ---
'''


def patch_ice_sources(src: Path, jobs: int = 1) -> None:
    """The two Python 3.11 fixes zeroc-ice 3.6.5 needs (see shared/omero-facts.md), and with
    ``jobs`` > 1 a setup.py that compiles its sources that many at a time."""
    slice_cpp = src / "src" / "Slice.cpp"
    text = slice_cpp.read_text()
    slice_cpp.write_text(text.replace("#include <eval.h>\n", ""))
    util_cpp = src / "src" / "Util.cpp"
    text = util_cpp.read_text()
    util_cpp.write_text(text.replace("PyThreadState_GET()->frame", "PyEval_GetFrame()"))
    setup_py = src / "setup.py"
    if jobs > 1 and setup_py.exists():
        text = setup_py.read_text()
        if "added by omerowizard" not in text:
            setup_py.write_text(PARALLEL_COMPILE.format(jobs=int(jobs)) + text)
