"""One run at a time per deployment."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from omerowizard.system.lock import DeploymentLock, LockedError, lock_path


def test_a_second_run_is_refused_naming_the_holder(tmp_path):
    with DeploymentLock(tmp_path):
        with pytest.raises(LockedError, match=f"process {os.getpid()}"):
            DeploymentLock(tmp_path).__enter__()
    with DeploymentLock(tmp_path):  # released: the next run gets it
        pass


def test_the_lock_path_does_not_move_when_omero_creates_var(tmp_path):
    before = lock_path(tmp_path)
    (tmp_path / "var").mkdir()
    assert lock_path(tmp_path) == before


def test_a_killed_holder_leaves_no_lock_and_is_reported_as_cleared(tmp_path):
    code = (f"import os; from omerowizard.system.lock import DeploymentLock; l = DeploymentLock(__import__('pathlib').Path({str(tmp_path)!r}));"
            "l.__enter__(); os.kill(os.getpid(), 9)")
    subprocess.run([sys.executable, "-c", code])
    with DeploymentLock(tmp_path) as lock:
        assert lock.stale_pid is not None and lock.stale_pid != os.getpid()


def test_a_run_that_waited_says_so(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c",
                               "import time, pathlib; from omerowizard.system.lock import DeploymentLock\n"
                               f"with DeploymentLock(pathlib.Path({str(tmp_path)!r})):\n    print('held', flush=True); time.sleep(1.5)"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with DeploymentLock(tmp_path, wait=10) as lock:
        assert lock.waited
    holder.wait()
