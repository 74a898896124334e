"""Deployments of one host share the OMERO.web user's crontab: concurrent runs of different deployments never lose
each other's changes (issue 21, reproduction #6). Six deployments sharing the real omero-web user, each with its own
OMERODIR and its own omerowizard home, are applied at the same time, five rounds, each round changing every
deployment's clearsessions schedule; after each round every line matches its deployment's answers."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from omerowizard.features import sessions as sessions_feature
from omerowizard.system import crontab as cron
from tests import parts
from tests.e2e.conftest import E2E_ROOT, USER, VENV, WHEEL_CACHE

DEPLOYMENTS = 6
ROUNDS = 5


@pytest.fixture
def omerodirs(omero_install, tmp_path):
    parts.require("crontab")
    pw = pwd.getpwnam(USER)
    dirs = []
    for _ in range(DEPLOYMENTS):
        d = E2E_ROOT / "dirs" / f"host-{uuid.uuid4().hex[:10]}"
        d.mkdir(parents=True)
        os.chown(d, pw.pw_uid, pw.pw_gid)
        dirs.append(d)
    yield dirs
    for d in dirs:
        cron.set_job(USER, str(d), None)
        shutil.rmtree(d, ignore_errors=True)


def schedule(round_: int, i: int) -> str:
    return f"{(round_ * DEPLOYMENTS + i) % 60 + 1} {round_ + 1} * * *"


def answers(tmp_path: Path, d: Path, round_: int, i: int) -> Path:
    data = {"omero": {"user": USER, "venv": str(VENV), "omerodir": str(d)},
            "application_server": {"port": parts.free_port(), "workers": 1} if round_ == 0 else {},
            "web_server": {"kind": "none"}, "start": False,
            "sessions": {"backend": "file", "clearsessions": schedule(round_, i)}}
    path = tmp_path / f"answers-{i}.yml"
    if round_ == 0:
        path.write_text(yaml.safe_dump(data))
    else:  # keep the first round's port: only the schedule changes
        old = yaml.safe_load(path.read_text())
        old["sessions"]["clearsessions"] = schedule(round_, i)
        path.write_text(yaml.safe_dump(old))
    return path


def test_six_deployments_applied_at_once_never_lose_a_crontab_line(omerodirs, tmp_path):
    for round_ in range(ROUNDS):
        runs = []
        for i, d in enumerate(omerodirs):
            env = {**os.environ, "OMEROWIZARD_HOME": str(tmp_path / f"home-{i}"), "OMEROWIZARD_WHEEL_CACHE": WHEEL_CACHE}
            runs.append(subprocess.Popen([sys.executable, "-m", "omerowizard", "apply", str(answers(tmp_path, d, round_, i))],
                                         env=env, cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                         text=True))
        outputs = [r.communicate(timeout=300)[0] for r in runs]
        text = subprocess.run(["crontab", "-l", "-u", USER], capture_output=True, text=True).stdout
        stale = []
        for i, (d, run, out) in enumerate(zip(omerodirs, runs, outputs)):
            assert run.returncode == 0, f"round {round_}, deployment {i}:\n{out}"
            assert "Done." in out, out
            want = [f"{sessions_feature.cron_schedule(schedule(round_, i))} OMERODIR={d} {VENV}/bin/omero web clearsessions {cron.marker(str(d))}"]
            if cron.managed_lines(text, str(d)) != want:
                stale.append(f"deployment {i} said Done but its line is {cron.managed_lines(text, str(d))}, "
                             f"not {want}")
        assert not stale, f"round {round_}: lost updates:\n" + "\n".join(stale)
