"""The host-wide lock: one change of a shared resource (a user's crontab, the system web server) at a time, across
processes and omerowizard homes, in a directory only root can write; re-entrant within a process."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from omerowizard.system import hostlock

HOLD = """
import sys, time
from omerowizard.system import hostlock
hostlock.RUN_DIR = sys.argv[1]
with hostlock.held("a test"):
    print("held", flush=True)
    sys.stdin.readline()
"""


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    if os.geteuid() != 0:
        pytest.fail("these tests run as root (the host-wide lock of root lives in /run)", pytrace=False)
    os.chmod(tmp_path, 0o755)
    (tmp_path / "run").mkdir(mode=0o755)
    d = tmp_path / "run" / "omerowizard"
    monkeypatch.setattr(hostlock, "RUN_DIR", str(d))
    return d


def holder(run_dir):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert proc.stdout.readline() == "held\n"
    return proc


def test_root_shares_one_lock_whatever_the_omerowizard_home(monkeypatch):
    if os.geteuid() != 0:
        pytest.fail("run as root", pytrace=False)
    monkeypatch.setenv("OMEROWIZARD_HOME", "/tmp/one")
    first = hostlock.path()
    monkeypatch.setenv("OMEROWIZARD_HOME", "/tmp/two")
    assert hostlock.path() == first == "/run/omerowizard/host.lock"


def test_another_process_waits_until_the_holder_is_done(run_dir):
    proc = holder(run_dir)
    try:
        with pytest.raises(hostlock.HostLockError, match=f"process {proc.pid}"):
            with hostlock.held("the crontab of omero-web", wait=0.3):
                pass
        start = time.monotonic()
        proc.stdin.write("\n")
        proc.stdin.flush()
        with hostlock.held("the crontab of omero-web", wait=30):
            waited = time.monotonic() - start
        assert waited < 10
    finally:
        proc.kill()
        proc.wait()
    assert (run_dir / "host.lock").stat().st_mode & 0o777 == 0o600
    assert run_dir.stat().st_uid == 0


def test_a_killed_holder_never_blocks_the_next_run(run_dir):
    proc = holder(run_dir)
    proc.kill()
    proc.wait()
    with hostlock.held("x", wait=5):
        pass


def test_it_is_reentrant_within_a_process_and_released_after(run_dir):
    with hostlock.held("the web-server files"):
        with hostlock.held("the reload of the system nginx", wait=0.1):
            pass
        assert hostlock._depth == 1
    proc = holder(run_dir)  # released: another process takes it at once
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("how", ["writable by others", "another user's"])
def test_a_lock_directory_another_user_can_write_is_refused(run_dir, how):
    run_dir.mkdir(parents=True)
    if how == "writable by others":
        os.chmod(run_dir, 0o777)
    else:
        os.chown(run_dir, 65534, 65534)
    with pytest.raises(hostlock.HostLockError, match=f"{run_dir} must be a directory only root can write"):
        with hostlock.held("x", wait=0.1):
            pass
    assert not (run_dir / "host.lock").exists()
