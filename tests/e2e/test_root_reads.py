"""Root reads what the OMERO.web user owns (OMERODIR, its virtual environment) only through safefs: a link planted
there is not followed, a FIFO is not waited for. Each test plants the file as the real omero-web user could and
runs the real omerowizard against the real OMERO.web."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import sys
import time
import uuid
import zipfile
from pathlib import Path

import pytest

from tests.e2e.conftest import E2E_ROOT, USER, VENV
from tests.support.wait import until

LIGHT = {"application_server": {"workers": 1}, "sessions": {"clearsessions": "off"}, "web_server": {"kind": "none"}}


def _own(path) -> None:
    pw = pwd.getpwnam(USER)
    os.chown(path, pw.pw_uid, pw.pw_gid, follow_symlinks=False)


def _log_dir(d):
    log_dir = d.omerodir / "var" / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    for p in (d.omerodir / "var", log_dir):
        _own(p)
    return log_dir


def _running_pid(d) -> int | None:
    try:
        pid = int((d.omerodir / "var" / "django.pid").read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def _everything_written(root) -> str:
    """Every file omerowizard wrote for the test (state, command log, backups, saved answers), as text."""
    out = []
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as fh:
                    out.append(fh.read().decode("utf-8", "replace"))
    return "\n".join(out)


def test_a_link_at_the_web_log_to_a_root_only_file_never_shows_that_file(deployment, tmp_path):
    """Reproduction #4 of issue 21: with OMEROweb.log a link to a root-only file, an apply whose start fails printed
    that file's lines in "Last lines of ...OMEROweb.log" (and so in --json and the Ansible module)."""
    d = deployment
    token = f"ROOT-ONLY-{uuid.uuid4().hex}"
    secret = tmp_path / "vault" / "secret"
    secret.parent.mkdir(mode=0o700)
    secret.write_text(f"{token}\n")
    secret.chmod(0o600)
    log = _log_dir(d) / "OMEROweb.log"
    log.symlink_to(secret)
    _own(log)
    # gunicorn starts, but refuses every request line longer than 10 bytes: the login page check fails (414)
    answers = {**LIGHT, "extra_config": {"omero.web.wsgi_args": "--limit-request-line 10"}}
    proc = d.cli("apply", "--json", str(d.answers_file(answers)), timeout=400)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "did not answer 200" in proc.stderr, proc.stderr
    assert token not in proc.stdout + proc.stderr, "neither the --json report nor the lines show it"
    assert token not in _everything_written(d.home), "the command log, backups and state never hold it"
    assert f"Last lines of {log}:\n(not read: {log} is a symbolic link in a directory that {USER} can write" \
        in proc.stderr, proc.stderr
    assert secret.read_text() == f"{token}\n" and os.stat(secret).st_uid == 0
    assert _running_pid(d) is None, "the restore left OMERO.web stopped, as it was"


def test_a_fifo_at_the_web_log_fails_preflight_instead_of_hanging_the_run(deployment):
    """Reproduction #4 of issue 21: with a FIFO at OMEROweb.log the apply hung past its own time limits and the
    restore stayed stuck in `omero web restart`, holding the lock, OMERO.web down. Now nothing is changed: the
    run stops before it, naming the FIFO, and OMERO.web keeps running as before."""
    d = deployment
    first = d.cli("apply", str(d.answers_file(LIGHT)), timeout=300)
    assert first.returncode == 0, first.stdout + first.stderr
    pid = _running_pid(d)
    assert pid is not None
    config = d.config_xml.read_bytes()
    log = _log_dir(d) / "OMEROweb.log"
    log.unlink()  # the running gunicorn keeps writing the file it has open
    os.mkfifo(log)
    _own(log)
    try:
        changed = {**LIGHT, "prefix": "/omero"}
        start = time.monotonic()
        proc = d.cli("apply", str(d.answers_file(changed, name="changed.yml")), timeout=120)
        seconds = time.monotonic() - start
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "preflight failed; nothing was changed" in proc.stderr, proc.stderr
        assert f"{log} is not a regular file" in proc.stderr and f"remove it as {USER}" in proc.stderr
        assert seconds < 60, seconds
        assert _running_pid(d) == pid, "OMERO.web runs as before (not restarted, not stopped)"
        assert d.config_xml.read_bytes() == config
    finally:
        log.unlink()  # `omero web stop` in the teardown would block on it too


@pytest.fixture
def users_venv(omero_install):
    """A virtual environment the OMERO.web user owns, holding the real packages' metadata (copied from venv3, whose
    packages its Python imports through a .pth file)."""
    v = E2E_ROOT / "dirs" / f"venv-{uuid.uuid4().hex[:10]}"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(v)], check=True)
    site = v / "lib" / "python3.11" / "site-packages"
    base = VENV / "lib" / "python3.11" / "site-packages"
    for info in base.glob("*.dist-info"):
        shutil.copytree(info, site / info.name)
    (site / "venv3.pth").write_text(f"{base}\n")
    script = (VENV / "bin" / "omero").read_text().replace(str(VENV / "bin" / "python"), str(v / "bin" / "python"))
    (v / "bin" / "omero").write_text(script)
    (v / "bin" / "omero").chmod(0o755)
    subprocess.run(["chown", "-R", "-h", f"{USER}:{USER}", str(v)], check=True)
    yield v
    shutil.rmtree(v, ignore_errors=True)


def test_a_fifo_as_a_packages_metadata_in_the_users_venv_does_not_hang_a_dry_run(deployment, users_venv):
    """Reproduction #5 of issue 21: a FIFO as a dist-info/METADATA in a venv the OMERO.web user owns hung
    `apply --dry-run` (importlib.metadata opened it blocking). Now it is skipped and said."""
    d = deployment
    fifo = users_venv / "lib" / "python3.11" / "site-packages" / "evil-1.0.dist-info" / "METADATA"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    subprocess.run(["chown", "-R", "-h", f"{USER}:{USER}", str(fifo.parent)], check=True)
    answers = d.answers_file({**LIGHT, "omero": {"venv": str(users_venv)}})
    proc = d.cli("apply", "--dry-run", str(answers), timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"not read (root reads no link and waits for no FIFO there): {fifo}: is not a regular file" \
        in proc.stdout, proc.stdout
    assert "omero web start" in proc.stdout, "the plan was made from the packages that could be read"
    assert not d.config_xml.exists(), "a dry run changes nothing"


def _app_wheels() -> Path:
    """A directory of one wheel of a made-up web app, which the OMERO.web user (pip's dry run) can read."""
    wheels = E2E_ROOT / "dirs" / f"wheels-{uuid.uuid4().hex[:10]}"
    wheels.mkdir(parents=True)
    info = "omerowizard_e2e_fifo_app-0.1.dist-info"
    with zipfile.ZipFile(wheels / "omerowizard_e2e_fifo_app-0.1-py3-none-any.whl", "w") as z:
        z.writestr("omerowizard_e2e_fifo_app/__init__.py", "")
        z.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: omerowizard-e2e-fifo-app\nVersion: 0.1\n")
        z.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{info}/top_level.txt", "omerowizard_e2e_fifo_app\n")
        z.writestr(f"{info}/RECORD", "")
    for path in (wheels, *wheels.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return wheels


def _release_readers(fifo: Path) -> None:
    """Whoever still waits to read the FIFO (a pip left over by a failed run) gets an end of file."""
    with contextlib.suppress(OSError):
        while True:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # ENXIO once nobody waits on it


@pytest.fixture
def fifo_in_users_venv(users_venv):
    """A FIFO as the METADATA of the very app the answers ask for (pip reads it to learn what is installed)."""
    fifo = users_venv / "lib" / "python3.11" / "site-packages" / "omerowizard_e2e_fifo_app-0.1.dist-info" / "METADATA"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    subprocess.run(["chown", "-R", "-h", f"{USER}:{USER}", str(fifo.parent)], check=True)
    wheels = _app_wheels()
    yield fifo, wheels
    _release_readers(fifo)
    shutil.rmtree(wheels, ignore_errors=True)


def test_a_fifo_as_a_packages_metadata_does_not_hang_the_dry_run_of_web_apps(deployment, users_venv,
                                                                             fifo_in_users_venv):
    """pip's own dry run for the web apps reads every installed package's METADATA (as the environment's owner:
    nothing leaks, but a FIFO held it): with one there, pip is not started, and the run says why, naming it."""
    d = deployment
    fifo, wheels = fifo_in_users_venv
    answers = d.answers_file({**LIGHT, "omero": {"venv": str(users_venv)},
                              "apps": {"find_links": str(wheels), "custom": [
                                  {"requirement": "omerowizard-e2e-fifo-app", "app": "omerowizard_e2e_fifo_app"}]}})
    started = time.monotonic()
    proc = d.cli("apply", "--dry-run", str(answers), timeout=120)
    assert time.monotonic() - started < 60
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "web apps: pip's dry run was not started" in out and f"{fifo}: is not a regular file" in out, out
    assert "remove it, as the environment's owner" in out, out
    assert not d.config_xml.exists(), "a dry run changes nothing"


def test_a_fifo_planted_after_the_probe_ends_pips_dry_run_at_its_time_limit(users_venv, fifo_in_users_venv,
                                                                             monkeypatch):
    """The FIFO appears after the probe looked (nothing tells pip): the real pip, run as the environment's owner,
    blocks on it with its output open; the time limit of its dry run ends it all the same, with a message."""
    from omerowizard.model.errors import InstallError
    from omerowizard.system import venv as venv_mod

    fifo, wheels = fifo_in_users_venv
    monkeypatch.setattr(venv_mod, "DRY_RUN_TIMEOUT", 10)
    started = time.monotonic()
    with pytest.raises(InstallError) as err:
        venv_mod.dry_run(users_venv, ["omerowizard-e2e-fifo-app"], find_links=str(wheels))
    assert time.monotonic() - started < 60
    assert "pip cannot install omerowizard-e2e-fifo-app" in str(err.value)
    assert "did not finish within 10 s: its processes were ended" in str(err.value), err.value
    until(lambda: not _pips(users_venv), 30, "the end of the pip that waited on the FIFO")


def _pips(venv: Path) -> list[int]:
    """The pip processes running in ``venv`` (its python's path on their command line)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                argv = (proc / "cmdline").read_bytes().split(b"\0")
                if any(a.startswith(str(venv).encode()) for a in argv) and b"pip" in argv:
                    found.append(int(proc.name))
    return found


def test_a_fifo_planted_at_the_web_log_during_the_run_does_not_hang_it(deployment):
    """Reproduction #4 of issue 21, the FIFO planted after preflight: the step that would start OMERO.web looks
    again and fails at once, the restore puts config.xml back and does not run `omero web` into the FIFO either;
    the run ends within seconds, and OMERO.web, never stopped, runs as before."""
    d = deployment
    first = d.cli("apply", str(d.answers_file(LIGHT)), timeout=300)
    assert first.returncode == 0, first.stdout + first.stderr
    pid = _running_pid(d)
    config = d.config_xml.read_bytes()
    log = _log_dir(d) / "OMEROweb.log"
    proc = subprocess.Popen([sys.executable, "-u", "-m", "omerowizard", "apply",
                             str(d.answers_file({**LIGHT, "prefix": "/omero"}, name="changed.yml"))],
                            env=d.env(), cwd=str(d.workdir), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        seen = ""
        while "==> write OMERO config" not in seen:
            line = proc.stdout.readline()
            assert line, seen
            seen += line
        log.unlink()  # between preflight and the start: the OMERO.web user plants the FIFO
        os.mkfifo(log)
        _own(log)
        start = time.monotonic()
        out = seen + proc.communicate(timeout=120)[0]
        assert time.monotonic() - start < 60
        assert proc.returncode == 1, out
        assert f"{log} is not a regular file" in out
        assert f"NOT restored: OMERO.web or the web server: OMERO.web was not restarted: {log} is not a regular file" \
            in out, out
        assert d.config_xml.read_bytes() == config, "config.xml was restored"
        assert _running_pid(d) == pid, "OMERO.web was never stopped: it runs as before"
    finally:
        if proc.poll() is None:
            proc.kill()
        log.unlink()
