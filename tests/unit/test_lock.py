"""One run at a time per deployment."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from omerowizard.system.lock import DeploymentLock, LockedError, lock_path
from tests.support.wait import until


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
    # the holder keeps the lock until its standard input closes: released once the other run waits for it
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, pathlib; from omerowizard.system.lock import DeploymentLock\n"
                               f"with DeploymentLock(pathlib.Path({str(tmp_path)!r})):\n"
                               "    print('held', flush=True); sys.stdin.read()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    lock = DeploymentLock(tmp_path, wait=30)
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(lock.__enter__() is lock))
    waiter.start()
    try:
        until(lambda: lock.waited, 30, "the second run waiting for the lock")
        holder.stdin.close()
        waiter.join(30)
        assert got == [True] and lock.waited
    finally:
        if got:
            lock.__exit__(None, None, None)
        holder.kill()
        holder.wait()
