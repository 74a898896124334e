"""The clearsessions job in the real crontab of the OMERO.web user (Debian's `crontab -u omero-web`):
installed once, never duplicated by reruns, replaced on a new schedule, removed for Redis or
Memcached sessions or when turned off; every other line of the crontab survives unchanged."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from omerowizard.catalogue import answers
from omerowizard.plan.changes import jobs
from omerowizard.plan.plan import Plan
from omerowizard.plan.planner import make_plan
from omerowizard.state.probe import probe
from omerowizard.system import crontab as cron
from omerowizard.system.omero import Omero, OmeroTarget
from tests import parts

USER = "omero-web"


def crontab() -> str:
    proc = subprocess.run(["crontab", "-l", "-u", USER], capture_output=True, text=True)
    return proc.stdout if proc.returncode == 0 else ""


@pytest.fixture
def others():
    """Lines of someone else, with odd spacing and comments, that must survive byte for byte."""
    parts.require("crontab")
    tag = uuid.uuid4().hex[:8]
    lines = [f"# hand-written {tag}", f"0  4 * * *   /bin/true {tag}   # nightly {tag}", f"@reboot echo {tag}"]
    before = crontab()
    subprocess.run(["crontab", "-u", USER, "-"], input=before + "\n".join(lines) + "\n", text=True, check=True)
    yield lines
    after = crontab()
    kept = "".join(line for line in after.splitlines(keepends=True) if tag not in line)
    subprocess.run(["crontab", "-u", USER, "-"], input=kept, text=True, check=True)


def plan_and_apply(omerodir: str, sessions: dict) -> Plan:
    a = answers.validate({"omero": {"user": USER, "venv": "/opt/omerowizard-e2e/venv3", "omerodir": omerodir},
                          "web_server": {"kind": "development"}, "sessions": sessions})
    plan = make_plan(a, probe(a, Omero(OmeroTarget(USER, Path(a.omero.venv), Path(omerodir)))))
    jobs.apply_jobs(plan, lambda line: None)
    return plan


def ours(omerodir: str) -> list[str]:
    return cron.managed_lines(crontab(), omerodir)


def test_install_rerun_reschedule_switch_backend_and_off(others):
    omerodir = f"/opt/omerowizard-e2e/dirs/cron-{uuid.uuid4().hex[:8]}"
    try:
        first = plan_and_apply(omerodir, {"backend": "file"})
        assert [j.describe().split()[0] for j in first.jobs] == ["install"]
        assert ours(omerodir) == [f"@daily OMERODIR={omerodir} /opt/omerowizard-e2e/venv3/bin/omero web clearsessions "
                                  f"# omerowizard: clearsessions OMERODIR={omerodir}"]

        assert plan_and_apply(omerodir, {"backend": "file"}).jobs == []  # rerun: nothing to do
        assert len(ours(omerodir)) == 1

        hourly = plan_and_apply(omerodir, {"backend": "file", "clearsessions": "30 * * * *"})
        assert [j.describe().split()[0] for j in hourly.jobs] == ["replace"]
        assert [line.split(" OMERODIR=")[0] for line in ours(omerodir)] == ["30 * * * *"]

        redis = plan_and_apply(omerodir, {"backend": "redis"})
        assert [j.new for j in redis.jobs] == [None] and "redis sessions" in redis.jobs[0].why
        assert ours(omerodir) == []

        plan_and_apply(omerodir, {"backend": "file"})
        assert len(ours(omerodir)) == 1
        memcached = plan_and_apply(omerodir, {"backend": "memcached"})
        assert [j.new for j in memcached.jobs] == [None] and ours(omerodir) == []

        plan_and_apply(omerodir, {"backend": "file"})
        off = plan_and_apply(omerodir, {"backend": "file", "clearsessions": "off"})
        assert [j.new for j in off.jobs] == [None] and ours(omerodir) == []
        assert plan_and_apply(omerodir, {"backend": "file", "clearsessions": "off"}).jobs == []

        text = crontab()
        for line in others:
            assert line + "\n" in text
    finally:
        cron.set_job(USER, omerodir, None)


def test_a_duplicated_line_is_collapsed_to_one(others):
    omerodir = f"/opt/omerowizard-e2e/dirs/cron-{uuid.uuid4().hex[:8]}"
    try:
        plan_and_apply(omerodir, {"backend": "file"})
        line = ours(omerodir)[0]
        subprocess.run(["crontab", "-u", USER, "-"], input=crontab() + line + "\n", text=True, check=True)
        assert len(ours(omerodir)) == 2
        plan = plan_and_apply(omerodir, {"backend": "file"})
        assert len(plan.jobs) == 1 and ours(omerodir) == [line]
        for other in others:
            assert other + "\n" in crontab()
    finally:
        cron.set_job(USER, omerodir, None)


def test_omerowizard_apply_installs_the_job_once_and_removes_it_for_redis(deployment, redis_server, others):
    omerodir = str(deployment.omerodir)
    try:
        path = deployment.answers_file({"web_server": {"kind": "development"}, "start": False})
        first = deployment.cli("apply", str(path))
        assert first.returncode == 0, first.stdout + first.stderr
        assert "install the clearsessions job of omero-web" in first.stdout
        assert len(ours(omerodir)) == 1
        again = deployment.cli("apply", str(path))
        assert "Nothing to change" in again.stdout, again.stdout
        assert len(ours(omerodir)) == 1

        path = deployment.answers_file({"web_server": {"kind": "development"}, "start": False,
                                        "sessions": {"backend": "redis", "location": redis_server.url}})
        switch = deployment.cli("apply", str(path))
        assert switch.returncode == 0, switch.stdout + switch.stderr
        assert "remove the clearsessions job of omero-web" in switch.stdout
        assert ours(omerodir) == []
        for line in others:
            assert line + "\n" in crontab()
    finally:
        cron.set_job(USER, omerodir, None)
