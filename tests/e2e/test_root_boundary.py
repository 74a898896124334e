"""Root's boundary for processes (issue 21), against the real pip, real environments and the real omero-web
user: root never runs what the OMERO.web user can write, and pip run by root builds no sdist.

- An sdist ``omero_parade-99.0.tar.gz`` whose setup.py records ``id``, in an ``apps.find_links`` directory
  the OMERO.web user owns: ``omerowizard apply --dry-run`` refuses the directory before any pip runs, naming
  it, and the setup.py never runs as root (on main pip's dry run built it as root first).
- The same sdist in a directory root owns: pip, run by root, takes wheels only, so it is never built.
- ``install-omero --venv THAT`` where THAT is an environment the OMERO.web user made, with ``zz_evil.pth`` in its
  site-packages: root never starts its Python (on main ``venv.inspect`` ran it as root); the installation's
  pip runs there as that user.
- A rollback uninstalls only what its run recorded as added (a package installed by hand since stays) and
  reinstalls from the run's find_links.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import pwd
import shutil
import subprocess
import sys
import tarfile
import uuid
import zipfile
from pathlib import Path

import pytest

from omerowizard.system import backups as backup_mod
from omerowizard.system.deployments import Deployment as State
from omerowizard.system.distributions import packages
from tests.e2e.conftest import E2E_ROOT, USER, WHEEL_CACHE


def as_user(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", USER, "--", *argv], capture_output=True, text=True, check=check, cwd="/")


def user_ids() -> tuple[int, int]:
    pw = pwd.getpwnam(USER)
    return pw.pw_uid, pw.pw_gid


def recording_sdist(directory: Path, mark: Path, name: str = "omero_parade", version: str = "99.0") -> Path:
    """An sdist whose setup.py appends the output of ``id`` to ``mark`` when pip builds it (or reads its
    metadata, which for an sdist means running setup.py)."""
    setup = (f"import subprocess\nwith open({str(mark)!r}, 'a') as fh:\n"
             "    fh.write(subprocess.run(['id'], capture_output=True, text=True).stdout)\n"
             f"from setuptools import setup\nsetup(name={name!r}, version={version!r}, py_modules=[])\n")
    pkg_info = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    path = directory / f"{name}-{version}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for member, text in (("setup.py", setup), ("PKG-INFO", pkg_info)):
            data = text.encode()
            info = tarfile.TarInfo(f"{name}-{version}/{member}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def parade_answers(deployment, link: Path) -> Path:
    return deployment.answers_file({"apps": {"enabled": ["parade"], "find_links": str(link)},
                                    "sessions": {"clearsessions": "off"}})


def test_an_sdist_in_find_links_the_omero_web_user_owns_never_runs_as_root_in_a_dry_run(deployment):
    uid, gid = user_ids()
    link = deployment.omerodir / "wheels"  # OMERODIR is the OMERO.web user's: so is everything made in it
    link.mkdir()
    marks = deployment.omerodir / "marks"
    marks.mkdir()
    mark = marks / "id"
    recording_sdist(link, mark)
    for path in (link, marks, *link.iterdir()):
        os.chown(path, uid, gid)

    proc = deployment.cli("apply", "--dry-run", str(parade_answers(deployment, link)))

    assert not mark.exists() or "uid=0(" not in mark.read_text(), mark.read_text()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout + proc.stderr
    assert f"apps.find_links {link} is not safe for root's pip: {deployment.omerodir} belongs to {USER}" in out, out
    log = deployment.state.command_log.read_text() if deployment.state.command_log.exists() else ""
    assert " pip " not in log and "-m pip" not in log, log  # refused before any pip ran


def test_roots_pip_takes_wheels_only_so_an_sdist_in_a_trusted_find_links_is_never_built(deployment, tmp_path):
    link = E2E_ROOT / "dirs" / f"wheels-{uuid.uuid4().hex[:8]}"  # root's, writable by nobody else
    link.mkdir(mode=0o755)
    marks = deployment.omerodir / "marks"
    marks.mkdir()
    os.chown(marks, *user_ids())
    mark = marks / "id"
    try:
        recording_sdist(link, mark).chmod(0o644)
        proc = deployment.cli("apply", "--dry-run", str(parade_answers(deployment, link)), timeout=600)
    finally:
        shutil.rmtree(link)
    assert not mark.exists(), mark.read_text()  # neither as root nor as anybody: no sdist is built
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "pip install omero-parade (web app parade: omero-parade 0.2.4" in out, out  # the registry's wheel


@pytest.fixture
def user_venv():
    """A virtual environment the OMERO.web user made (Debian's python3 -m venv, with pip), in a directory of
    its own below a root-owned one."""
    base = E2E_ROOT / "dirs" / f"uvenv-{uuid.uuid4().hex[:8]}"
    base.mkdir(mode=0o755)
    os.chown(base, *user_ids())
    venv = base / "venv"
    as_user("/usr/bin/python3", "-m", "venv", str(venv))
    yield venv
    shutil.rmtree(base, ignore_errors=True)


def test_install_omero_never_runs_the_python_of_an_environment_the_omero_web_user_owns(user_venv, tmp_path):
    uid, _ = user_ids()
    site = next(user_venv.glob("lib/python3*/site-packages"))
    mark = user_venv.parent / "pth-ran"
    pth = site / "zz_evil.pth"
    pth.write_text(f"import os; open({str(mark)!r}, 'a').write(str(os.getuid()) + chr(10))\n")
    os.chown(pth, *user_ids())  # the user's file in the user's environment
    env = {**os.environ, "OMEROWIZARD_HOME": str(tmp_path / "home"), "OMEROWIZARD_WHEEL_CACHE": WHEEL_CACHE}
    # a release that does not exist: the run stops at omero-web, after zeroc-ice was installed from the cached wheel
    proc = subprocess.run([sys.executable, "-m", "omerowizard", "install-omero", "--user", USER, "--venv",
                           str(user_venv), "--omerodir", str(user_venv.parent / "OMERO.web"),
                           "--omero-web-version", "0.0.1"], env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    ran_as = mark.read_text().split() if mark.exists() else []
    assert "0" not in ran_as, f"the .pth ran as root: {ran_as}\n{out}"
    assert ran_as and set(ran_as) == {str(uid)}, out  # the installation's pip ran there, as the user
    assert "zeroc-ice" in packages(user_venv), out
    ice = next(site.glob("zeroc_ice-*.dist-info"))
    assert ice.stat().st_uid == uid  # installed by the user's pip, not root's
    assert proc.returncode == 1 and "omero-web==0.0.1" in out, out


# ------------------------------------------------------------------------------------------------ rollback
def wheel(directory: Path, name: str, version: str) -> Path:
    """A minimal pure-Python wheel (a module, METADATA, WHEEL, RECORD with its hashes)."""
    module = name.replace("-", "_")
    files = {f"{module}.py": f"VERSION = {version!r}\n",
             f"{module}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{module}-{version}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: omw-test\nRoot-Is-Purelib: true\n"
                                                   "Tag: py3-none-any\n"}
    record = f"{module}-{version}.dist-info/RECORD"
    lines = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        lines.append(f"{path},sha256={digest},{len(text.encode())}")
    files[record] = "\n".join([*lines, f"{record},,"]) + "\n"
    out = directory / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(out, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return out


def pip(venv: Path, *args: str) -> None:
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", *args], check=True,
                   capture_output=True, cwd="/")


def test_rollback_uninstalls_only_what_its_run_added_and_reinstalls_from_its_find_links(tmp_path, monkeypatch):
    monkeypatch.setenv("OMEROWIZARD_HOME", str(tmp_path / "home"))
    base = E2E_ROOT / "dirs" / f"rvenv-{uuid.uuid4().hex[:8]}"  # root's: root's pip runs there
    base.mkdir(mode=0o755)
    try:
        venv, wheels = base / "venv", base / "wheels"
        subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True, cwd="/")
        wheels.mkdir(mode=0o755)
        for name, version in (("omw-boundary-kept", "1.0"), ("omw-boundary-kept", "2.0"), ("omw-boundary-app", "1.0"),
                              ("omw-boundary-by-hand", "1.0")):
            wheel(wheels, name, version)
        pip(venv, "install", "--no-index", "--find-links", str(wheels), "omw-boundary-kept==1.0")
        before = packages(venv)
        dep = State(str(base / "OMERO.web"))
        b = backup_mod.Backup.create(deployment=dep, user=USER, venv=venv, was_running=False, paths=[], crontab=False)
        b.record_environment(before, str(wheels))
        b.record_added({"omw-boundary-app"})  # what the run's dry run said it adds
        # the run: it adds the app and upgrades a package; then an administrator installs one by hand
        pip(venv, "install", "--no-index", "--find-links", str(wheels), "omw-boundary-app", "omw-boundary-kept==2.0")
        pip(venv, "install", "--no-index", "--find-links", str(wheels), "omw-boundary-by-hand")

        restored, failed = b.restore()
    finally:
        after = packages(base / "venv") if (base / "venv").exists() else {}
        shutil.rmtree(base, ignore_errors=True)
    assert failed == [], failed
    assert "omw-boundary-app" not in after  # the run added it
    assert after.get("omw-boundary-by-hand") == "1.0"  # installed by hand since: kept
    assert after.get("omw-boundary-kept") == "1.0"  # reinstalled from the run's find_links (on no index)
    assert any("uninstalled omw-boundary-app 1.0" in line for line in restored), restored
