"""The README's two set-up commands on a fresh, minimal Debian 12.

A minbase root (``mmdebstrap --variant=minbase bookworm``: Debian's essential packages and apt, no
Python, no pip, no git) is built once and cached outside the checkout; each test unpacks it, copies
this checkout in as root would unpack a release tarball, and runs the README's commands in it with
``chroot``. ``/proc``, ``/dev`` and ``/sys`` are bound into the root only inside a private mount
namespace (``unshare --mount``) that ends with the command, so the host never sees a mount below the
root, and removing the root can never reach the host's ``/dev``.
"""

from __future__ import annotations

import fcntl
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import parts
from tests.e2e.test_tui_tmux import Tmux

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("OMEROWIZARD_FRESH_ROOT_CACHE", "/var/cache/omerowizard"))
TARBALL = CACHE / "debian-bookworm-minbase.tar"
CHECKOUT = "/root/omerowizard"  # where the code is unpacked in the root
TMP = "/var/tmp"  # where the roots are unpacked (not tmp_path: pytest removes old ones by itself)
# a root shell's environment: nothing of this test run's (its PYTHONPATH, its Python) leaks in
ENV = {"HOME": "/root", "LANG": "C.UTF-8", "USER": "root", "LOGNAME": "root",
       "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
# this machine's network reaches the package registries through a proxy with its own certificate
# authority: the root trusts what the host trusts (a real host reaches them directly)
NETWORK_CA = "/etc/omerowizard-test-network-ca.pem"
CA_VARIABLES = ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
# what pip downloads in the roots is kept between them (a warm run fetches no wheel twice)
PIP_CACHE = CACHE / "fresh-root-pip-cache"
# bind the kernel's file systems and the pip cache into the root in this namespace, then enter it
# ($0 the root, $1 mount, $2 chroot: the host's, $3 the pip cache)
ENTER = ('set -e; for d in proc sys dev; do "$1" --rbind "/$d" "$0/$d"; done; mkdir -p "$0/root/.cache/pip"; '
         '"$1" --bind "$3" "$0/root/.cache/pip"; chroot=$2; shift 3; exec "$chroot" "$0" "$@"')


def readme_commands() -> list[str]:
    """The commands of the README's "Set up" block, in order (comments dropped)."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Set up"):]
    section = section[:section.index("\n## ", 1)]
    start = section.index("```sh\n") + len("```sh\n")
    block = section[start:section.index("```", start)]
    return [line.split(" #")[0].strip() for line in block.splitlines() if line.strip() and not line.startswith("#")]


def minbase_tarball() -> Path:
    """The cached minbase root; built with mmdebstrap when missing (about 30 s here)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    st = CACHE.stat()
    assert st.st_uid == 0 and not st.st_mode & 0o022, f"{CACHE} must be root's and not writable by others"
    with open(CACHE / "debian-bookworm-minbase.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test run building it at the same time
        if not TARBALL.exists():
            mmdebstrap = parts.require("mmdebstrap")
            partial = TARBALL.with_name(TARBALL.name + ".partial")
            started = time.monotonic()
            proc = subprocess.run([mmdebstrap, "--variant=minbase", "--format=tar", "bookworm", str(partial)],
                                  capture_output=True, text=True, timeout=900)
            assert proc.returncode == 0, f"mmdebstrap failed:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}"
            partial.rename(TARBALL)
            print(f"built {TARBALL} in {time.monotonic() - started:.0f} s")
    return TARBALL


def mounts_below(root: Path) -> list[str]:
    """Mount points at or below root, as this process's mount namespace sees them."""
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return [p for p in points if p == str(root) or p.startswith(f"{root}/")]


class FreshRoot:
    """An unpacked minbase root holding a copy of this checkout in /root/omerowizard."""

    def __init__(self, path: Path):
        self.path = path
        self.unshare = parts.require("unshare")
        self.mount, self.chroot = parts.which("mount"), parts.which("chroot")  # Debian's essential packages
        assert self.mount and self.chroot, "missing part: mount or chroot (Debian's mount, coreutils)"
        self.env = dict(ENV)
        ca = next((os.environ[v] for v in CA_VARIABLES if os.environ.get(v)), None)
        if ca and Path(ca).is_file():
            shutil.copyfile(ca, path / NETWORK_CA.lstrip("/"))
            self.env.update({v: NETWORK_CA for v in CA_VARIABLES})
        self.env.update({v: os.environ[v] for v in PROXY_VARIABLES if v in os.environ})
        PIP_CACHE.mkdir(mode=0o700, exist_ok=True)

    def argv(self, command: str, login: bool = False, **extra_env: str) -> list[str]:
        """argv that runs ``command`` with bash in the root, as root: in the checkout, or in a login shell."""
        env = {**self.env, **extra_env}
        if login:  # a login shell's PATH is root's profile's, not this one
            env["PATH"] = "/usr/bin:/bin"
            inner = ["/bin/bash", "-l", "-c", command]
        else:
            inner = ["/bin/bash", "-c", f"cd {CHECKOUT} && {command}"]
        return ["env", "-i", *(f"{k}={v}" for k, v in env.items()), self.unshare, "--mount", "--propagation",
                "private", "--", "/bin/sh", "-c", ENTER, str(self.path), self.mount, self.chroot, str(PIP_CACHE),
                *inner]

    def run(self, command: str, login: bool = False, timeout: float = 900) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(command, login), capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=timeout)


def remove_root(path: Path) -> None:
    """Removes an unpacked root; never one with anything mounted below it."""
    left = mounts_below(path)
    assert not left, f"still mounted below {path}: {left}; not removing it"
    subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=True)


@pytest.fixture
def fresh_root() -> Iterator[FreshRoot]:
    tarball = minbase_tarball()
    for old in Path(TMP).glob("omerowizard-fresh-root-*"):  # left by a run that was killed (hours ago)
        if time.time() - old.stat().st_mtime > 3 * 3600:
            remove_root(old)
    # the root in a folder of its own, whose time is this run's (tar gives the root the tarball's)
    holder = Path(tempfile.mkdtemp(prefix="omerowizard-fresh-root-", dir=TMP))
    path = holder / "root"
    path.mkdir()
    try:
        started = time.monotonic()
        subprocess.run(["tar", "-xf", str(tarball), "-C", str(path)], check=True)
        path.chmod(0o755)  # the root's "/"
        copy_checkout(path / CHECKOUT.lstrip("/"))
        print(f"root unpacked with the checkout in {time.monotonic() - started:.1f} s")
        yield FreshRoot(path)
    finally:
        remove_root(holder)  # the root's mounts lived and ended in the commands' own namespaces


def copy_checkout(dest: Path) -> None:
    """This checkout's files (tracked and new, not ignored) as root unpacks the README's `git archive` tarball:
    root's, 0664/0775 (git archive's umask 002; the group is root's)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if not source.is_file() or source.is_symlink():
            continue  # deleted in the working tree
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        target.chmod(0o775 if os.access(source, os.X_OK) else 0o664)
    for d in [dest, *(p for p in dest.rglob("*") if p.is_dir())]:
        d.chmod(0o775)


def test_readme_install_command_on_a_fresh_debian_reaches_the_wizard_and_puts_omerowizard_on_roots_path(
        fresh_root: FreshRoot):
    install = readme_commands()[0]
    assert install.startswith("bash scripts/install"), f"the README's first command is not the installer: {install}"
    no_pip = fresh_root.run("/usr/bin/python3 -m pip --version || dpkg -s python3")
    assert no_pip.returncode != 0, "a minimal Debian should have neither Python nor pip"

    # the README's first command, verbatim, in a terminal of 80x24: it installs, then the wizard draws its first screen
    started = time.monotonic()
    tmux = Tmux(fresh_root.argv(install, TERM="xterm-256color"), env={}, cwd=Path("/"))
    try:
        screen = tmux.wait("Welcome to omerowizard", timeout=600)
        installed = time.monotonic() - started
        tmux.keys("C-c")
        screen = tmux.wait("[exit status", timeout=60)
    finally:
        tmux.close()
    assert "No changes were made." in screen and "[exit status 130]" in screen, screen
    print(f"README install command to the wizard's first screen: {installed:.0f} s")

    # a fresh login shell of root finds it on its PATH, run by Debian's Python from its own environment
    login = fresh_root.run("command -v omerowizard; readlink -f \"$(command -v omerowizard)\"; omerowizard --help",
                           login=True)
    assert login.returncode == 0, login.stdout + login.stderr
    lines = login.stdout.splitlines()
    assert lines[0] == "/usr/local/bin/omerowizard" and lines[1] == "/opt/omerowizard/venv/bin/omerowizard", lines[:2]
    assert "install-omero" in login.stdout and "rollback" in login.stdout
    cfg = (fresh_root.path / "opt/omerowizard/venv/pyvenv.cfg").read_text()
    assert re.search(r"^home = /usr/bin$", cfg, re.M), cfg
    # nothing went into Debian's Python: still no pip there (PEP 668)
    assert fresh_root.run("/usr/bin/python3 -m pip --version").returncode != 0

    # a rerun in a newer checkout upgrades in place; without a terminal it says how to start the wizard
    init = fresh_root.path / CHECKOUT.lstrip("/") / "omerowizard" / "__init__.py"
    version = re.search(r'__version__ = "([^"]+)"', init.read_text())[1]
    init.write_text(init.read_text().replace(f'"{version}"', f'"{version}+newer"'))
    again = fresh_root.run(install)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"omerowizard {version}+newer (was {version}): /usr/local/bin/omerowizard" in again.stdout, again.stdout
    assert "no terminal here, so the wizard does not start: run `omerowizard`" in again.stdout, again.stdout
    assert fresh_root.run("omerowizard --version", login=True).stdout.strip() == f"omerowizard {version}+newer"


def test_readme_test_command_makes_its_environment_with_debians_python_on_a_fresh_debian(fresh_root: FreshRoot):
    test = readme_commands()[1]
    assert shlex.split(test) == ["bash", "scripts/test"], f"the README's second command is not the tests: {test}"
    started = time.monotonic()
    setup = fresh_root.run(f"{test} --setup-only")
    took = time.monotonic() - started
    assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-3000:]
    assert "the test environment is ready: /var/cache/omerowizard/test-venv (pytest " in setup.stdout, setup.stdout
    print(f"README test command's environment step: {took:.0f} s")
    cfg = (fresh_root.path / "var/cache/omerowizard/test-venv/pyvenv.cfg").read_text()
    assert re.search(r"^home = /usr/bin$", cfg, re.M), cfg
    # nginx & co. are not installed by the environment step alone (the full run installs them)
    assert fresh_root.run("dpkg -s nginx").returncode != 0

    # the environment runs this checkout's tests: a unit file, through the same environment
    venv_python = "/var/cache/omerowizard/test-venv/bin/python"
    unit = fresh_root.run(f"PYTHONPATH={CHECKOUT} {venv_python} -m pytest -q -p no:cacheprovider "
                          f"tests/unit/test_answers.py")
    assert unit.returncode == 0 and re.search(r"\d+ passed", unit.stdout), unit.stdout[-3000:] + unit.stderr[-2000:]
    # made again only when its inputs change: a second run reuses it
    started = time.monotonic()
    again = fresh_root.run(f"{test} --setup-only")
    assert again.returncode == 0 and "making the test environment" not in again.stdout, again.stdout + again.stderr
    print(f"second environment step (reused): {time.monotonic() - started:.1f} s")
