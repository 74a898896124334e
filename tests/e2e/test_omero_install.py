"""The foundation: omerowizard's installer gives a working OMERO.web, run as its own user."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests import parts
from tests.e2e.conftest import USER, VENV, WHEEL_CACHE


def test_installer_second_run_changes_nothing_and_says_so(omero_install, tmp_path):
    env = {"OMEROWIZARD_WHEEL_CACHE": WHEEL_CACHE, "OMEROWIZARD_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "omerowizard", "install-omero", "--user", USER, "--venv", str(VENV),
                           "--omerodir", str(VENV.parent / "OMERO.web"), "--with", "redis,cors,memcached"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "already installed" in proc.stdout and "nothing changed" in proc.stdout
    # versions per package: `omero version` is omero-py's, not omero-web's
    assert "(omero-web 5.33.2, omero-py 5.23.0)" in proc.stdout, proc.stdout
    assert "5.23.0 (omero-py)" in proc.stdout
    assert "done:" not in proc.stdout
    log = (tmp_path / "log" / "omero-commands.log").read_text()
    assert "runuser -u omero-web" in log and "omero version" in log


def test_omero_web_starts_as_its_user_and_serves_the_login_page(deployment):
    deployment.omero("config", "set", "omero.web.application_server.port", str(deployment.app_port))
    start = deployment.omero("web", "start")
    assert "Starting OMERO.web" in start.stdout
    try:
        r = parts.http_get(deployment.login_url())
        assert r.status == 200
        assert "OMERO" in r.body
        owner = subprocess.run(["ps", "-o", "user=", "-p", (deployment.omerodir / "var" / "django.pid").read_text().strip()],
                               capture_output=True, text=True).stdout.strip()
        assert owner == USER
    finally:
        deployment.omero("web", "stop")
    assert not (deployment.omerodir / "var" / "django.pid").exists()


def test_omero_refuses_root_so_the_adapter_never_runs_it_as_root(omero_install):
    proc = subprocess.run([str(VENV / "bin" / "omero"), "version"], capture_output=True, text=True,
                          env={"OMERODIR": "/tmp", "PATH": "/usr/bin:/bin"})
    assert proc.returncode != 0 and "root" in (proc.stdout + proc.stderr)


def test_reading_config_xml_agrees_with_omero_config_get(deployment):
    """The probe reads config.xml itself (omero config get rewrites the file); prove they agree."""
    from pathlib import Path

    from omerowizard.system.omero import Omero, OmeroTarget

    d = deployment
    omero = Omero(OmeroTarget(USER, VENV, d.omerodir))
    assert omero.config_read() == {}  # no config.xml yet, and reading does not create one
    assert not d.config_xml.exists()
    d.omero("config", "set", "omero.web.prefix", "/omero")
    d.omero("config", "append", "omero.web.middleware",
            '{"index": 0.5, "class": "corsheaders.middleware.CorsMiddleware"}')
    d.omero("config", "set", "omero.web.caches", '{"default": {"BACKEND": "x", "LOCATION": "redis://:p&w<d>@h:1/0"}}')
    d.omero("config", "set", "omero.web.login_logo", "ünïcode \"quoted\" 'single'")
    before = d.config_xml.read_bytes()
    from_file = omero.config_read()
    assert d.config_xml.read_bytes() == before
    assert from_file == omero.config_get_all()
    assert from_file["omero.web.login_logo"] == "ünïcode \"quoted\" 'single'"
    assert Path(d.config_xml).exists()


# ----------------------------------------------------------------------------- cancelling a build
from tests.standin_build import StandInBuild  # noqa: E402


class Install(StandInBuild):
    """`omerowizard install-omero` in a pty, with the stand-in environment."""

    def __init__(self, tmp_path):
        import pexpect

        super().__init__(tmp_path)
        self.child = pexpect.spawn(sys.executable, ["-m", "omerowizard", "install-omero", "--user", "nobody",
                                                    "--venv", str(self.venv), "--omerodir", str(tmp_path / "omerodir")],
                                   env={**self.env(), "TERM": "xterm"}, cwd=str(tmp_path), encoding="utf-8", timeout=60)

    def wait_compiling(self) -> None:
        self.child.expect("compiled 2 of about 217")
        self.wait_compilers()


def test_sighup_during_a_build_ends_every_compiler_and_removes_its_temporary_files(tmp_path):
    import signal

    import pexpect

    run = Install(tmp_path)
    try:
        run.wait_compiling()
        run.child.kill(signal.SIGHUP)  # the SSH session dropped
        run.child.expect(pexpect.EOF)
        run.child.close()
        assert run.child.exitstatus == 129 or run.child.signalstatus == signal.SIGHUP
        run.assert_nothing_left()
    finally:
        run.kill_left()


def test_ctrl_c_during_a_build_asks_first_then_cancels_it(tmp_path):
    import signal

    import pexpect

    run = Install(tmp_path)
    try:
        run.wait_compiling()
        run.child.send("\x03")
        run.child.expect_exact("Stop the installation?")
        run.child.send("n\r")
        run.child.expect_exact("Going on.")
        assert len(run.compilers()) == 2, "answering no keeps the build running"
        run.child.send("\x03")
        run.child.expect_exact("Stop the installation?")
        run.child.send("y\r")
        run.child.expect_exact("installation cancelled (Ctrl-C)")
        run.child.expect(pexpect.EOF)
        run.child.close()
        assert run.child.exitstatus == 130
        run.assert_nothing_left()
    finally:
        run.kill_left()
