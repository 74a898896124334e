"""The boundary for root, by property (issue 21, item 6): the commands that run as root (apply, its dry
run, rollback, install-omero, playbook and the ansible-playbook it recommends, the web apps, an upgrade)
run here under Debian's strace, against the real OMERO.web, and tests/strace_audit.py fails any of them
in which a process of effective uid 0 runs a file (or a Python whose environment) another user can
change, or opens a path in a directory another user controls following links. Then every path root
reads there is replaced by a link to a root-only file, and by a FIFO: nothing of that file shows,
nothing hangs.

The report (every run; execs by root, counted by program; each violation with the processes that led
to it) is written to strace-audit-report.txt in the audit's temporary directory and printed at the end
of the module (pytest -s shows it)."""

from __future__ import annotations

import io
import os
import pwd
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from omerowizard.system.distributions import packages as installed
from tests import ansible_parts, parts
from tests.e2e.conftest import E2E_ROOT, USER, VENV, WHEEL_CACHE
from tests.e2e.test_ansible import ansible_bin  # noqa: F401  (the session's ansible-core)
from tests.e2e.test_upgrade import OLD, UPGRADE_VENV, newest  # noqa: F401  (the older environment)
from tests.strace_audit import Audit, pattern

USER_VENV = E2E_ROOT / "venv-user-owned"  # an environment the OMERO.web user made and owns, as its docs allow
LIGHT = {"application_server": {"workers": 1}, "sessions": {"clearsessions": "off"}}


@pytest.fixture(scope="module")
def audit(tmp_path_factory):
    a = Audit(tmp_path_factory.mktemp("strace-audit"))
    yield a
    a.close()
    print(f"\n{a.text()}\n(report: {a.workdir / 'strace-audit-report.txt'})")


def wizard(audit: Audit, d, label: str, *args: str, expect: int | None = 0, timeout: float = 300):
    """``python -m omerowizard ARGS`` as the deployment's tests run it, under strace."""
    proc, report = audit.run(label, [sys.executable, "-m", "omerowizard", *args], env=d.env(), cwd=d.workdir,
                             timeout=timeout)
    if expect is not None:
        assert proc.returncode == expect, f"{label}: exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc, report


def clean(audit: Audit, since: int) -> None:
    """No violation in the runs of this test (all of them listed when there are)."""
    bad = [r for r in audit.runs[since:] if r.violations]
    assert not bad, f"{sum(len(r.violations) for r in bad)} violations of the boundary for root:\n" + \
        "\n".join(r.summary() for r in bad)


def as_user(*argv: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    home = pwd.getpwnam(USER).pw_dir
    return subprocess.run(["runuser", "-u", USER, "--", "env", f"HOME={home}", *argv], capture_output=True,
                          text=True, check=check, cwd="/", **kw)


@pytest.fixture(scope="module")
def user_venv(omero_install) -> Path:
    """OMERO.web in an environment that the OMERO.web user made and owns (kept for later runs): made by
    that user with Debian's Python, zeroc-ice from the machine's wheel cache, omero-web from the registry."""
    if (USER_VENV / "bin" / "omero").exists() and "omero-web" in installed(USER_VENV):
        return USER_VENV
    shutil.rmtree(USER_VENV, ignore_errors=True)
    USER_VENV.mkdir(parents=True)
    pw = pwd.getpwnam(USER)
    os.chown(USER_VENV, pw.pw_uid, pw.pw_gid)
    wheel = sorted(Path(WHEEL_CACHE).glob("zeroc_ice-3.6.5-cp311-*.whl"))
    if not wheel:
        pytest.fail(f"missing part: no zeroc-ice wheel in {WHEEL_CACHE} (the omero_install fixture builds it)",
                    pytrace=False)
    for argv in (["/usr/bin/python3", "-m", "venv", str(USER_VENV)],
                 [str(USER_VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(wheel[-1]),
                  "omero-web"]):
        proc = as_user(*argv, check=False, timeout=1800)
        if proc.returncode != 0:
            pytest.fail(f"missing part: {' '.join(argv)} as {USER} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}",
                        pytrace=False)
    return USER_VENV


def sdist(directory: Path, name: str, version: str) -> Path:
    """A source distribution that builds (a setup.py that only declares the package)."""
    path = directory / f"{name}-{version}.tar.gz"
    files = {"setup.py": f"from setuptools import setup\nsetup(name={name!r}, version={version!r}, py_modules=[])\n",
             "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"}
    with tarfile.open(path, "w:gz") as tar:
        for rel, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{name}-{version}/{rel}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def answers(d, venv: Path = VENV, **extra) -> dict:
    site = {"kind": "nginx", "config_path": str(d.workdir / "site" / "omero-web.conf"), "port": parts.free_port()}
    return {"omero": {"venv": str(venv)}, **LIGHT, "web_server": site, **extra}


# ----------------------------------------------------------------------------- the scenarios
def test_apply_its_dry_run_and_rollback(audit, deployment):
    d, since = deployment, len(audit.runs)
    first = d.answers_file(answers(d, prefix="/one", sessions={"clearsessions": "daily"}))
    wizard(audit, d, "apply --dry-run (new deployment)", "apply", "--dry-run", str(first))
    wizard(audit, d, "apply (new deployment, started)", "apply", str(first))
    second = d.answers_file(answers(d, prefix="/two", sessions={"clearsessions": "daily"}), name="two.yml")
    wizard(audit, d, "apply --dry-run --json (reconfigure)", "apply", "--dry-run", "--json", str(second))
    wizard(audit, d, "apply (reconfigure: restart)", "apply", str(second))
    third = d.answers_file(answers(d, prefix="/two", sessions={"clearsessions": "daily", "cookie_age": 7200}),
                           name="three.yml")
    proc, _ = wizard(audit, d, "apply (reconfigure: graceful reload)", "apply", str(third))
    assert "reload OMERO.web" in proc.stdout, proc.stdout
    wizard(audit, d, "rollback --dry-run", "rollback", "--dry-run")
    wizard(audit, d, "rollback", "rollback")
    assert parts.http_get(d.login_url("/two")).status == 200  # as before the reload
    clean(audit, since)


def test_a_deployment_in_an_environment_the_omero_web_user_owns(audit, deployment, user_venv):
    d, since = deployment, len(audit.runs)
    assert user_venv.stat().st_uid == pwd.getpwnam(USER).pw_uid
    wizard(audit, d, "install-omero (the user's venv: nothing to do)", "install-omero", "--user", USER,
           "--venv", str(user_venv), "--omerodir", str(d.omerodir), expect=None)
    f = d.answers_file(answers(d, user_venv, prefix="/omero"))
    wizard(audit, d, "apply --dry-run (the user's venv)", "apply", "--dry-run", str(f))
    wizard(audit, d, "apply (the user's venv, started)", "apply", str(f))
    wizard(audit, d, "answers (the user's venv)", "answers")
    assert parts.http_get(d.login_url("/omero")).status == 200
    clean(audit, since)


def test_install_omero_over_the_shared_environment(audit, deployment):
    since = len(audit.runs)
    wizard(audit, deployment, "install-omero (root's venv: nothing to do)", "install-omero", "--user", USER,
           "--venv", str(VENV), "--omerodir", str(deployment.omerodir), "--with", "redis,cors,memcached")
    clean(audit, since)


def test_web_apps_installed_and_removed(audit, deployment, apps_venv, tmp_path):
    d, since = deployment, len(audit.runs)
    name = "omero-fpbioimage"
    if name in installed(apps_venv):
        subprocess.run([str(apps_venv / "bin" / "python"), "-m", "pip", "uninstall", "-y", "-q", name], check=True,
                       capture_output=True, cwd="/")
    base = answers(d, apps_venv, start=False)
    on = d.answers_file({**base, "apps": {"enabled": ["fpbioimage"]}}, name="on.yml")
    wizard(audit, d, "apply --dry-run (a web app)", "apply", "--dry-run", str(on), timeout=900)
    wizard(audit, d, "apply (a web app installed)", "apply", str(on), timeout=900)
    assert name in installed(apps_venv)
    off = d.answers_file({**base, "apps": {"enabled": [], "uninstall_removed": True}}, name="off.yml")
    wizard(audit, d, "apply (the web app removed)", "apply", str(off), timeout=900)
    assert name not in installed(apps_venv)

    # packages in a directory the OMERO.web user owns (a newer fpbioimage as an sdist): nothing there is
    # opened by root, the dry run included
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    sdist(wheels, "omero_fpbioimage", "99.0")
    pw = pwd.getpwnam(USER)
    for p in (wheels, *wheels.iterdir()):
        os.chown(p, pw.pw_uid, pw.pw_gid)
    links = d.answers_file({**base, "apps": {"enabled": ["fpbioimage"], "find_links": str(wheels)}}, name="links.yml")
    wizard(audit, d, "apply --dry-run (find_links the user owns)", "apply", "--dry-run", str(links), expect=None,
           timeout=900)
    assert name not in installed(apps_venv)
    clean(audit, since)


def test_an_upgrade_planned(audit, deployment, newest):  # noqa: F811
    d, since = deployment, len(audit.runs)
    wanted = answers(d, UPGRADE_VENV)
    wanted["omero"]["web_version"] = newest
    proc, _ = wizard(audit, d, "apply --dry-run (upgrade omero-web)", "apply", "--dry-run",
                     str(d.answers_file(wanted)), timeout=900)
    assert f"upgrade omero-web {OLD} -> {newest}" in proc.stdout, proc.stdout
    clean(audit, since)


def test_playbook_and_the_ansible_playbook_it_recommends(audit, deployment, ansible_bin, tmp_path):  # noqa: F811
    d, since = deployment, len(audit.runs)
    # a value in config.xml that runs a program the OMERO.web user wrote, if anything ever templates it
    evil = d.omerodir / "evil.sh"
    marker = tmp_path / "templated-as-root"
    as_user("sh", "-c", f"printf '#!/bin/sh\\nid > {marker}\\n' > {evil} && chmod 755 {evil}")
    applied = d.cli("apply", str(d.answers_file(answers(d, start=False))))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    for key, value in (("omero.web.public.enabled", "true"), ("omero.web.public.user", "public"),
                       ("omero.web.public.password", "public-pw"),
                       ("omero.web.public.url_filter", "^/webclient|{{ lookup('pipe', '" + str(evil) + "') }}"),
                       ("omero.web.login_logo", "/static/{{ lookup('pipe', '" + str(evil) + "') }}.png")):
        d.omero("config", "set", key, value)
    skel = tmp_path / "skeleton"
    proc, _ = wizard(audit, d, "playbook", "playbook", "--omerodir", str(d.omerodir), "--output", str(skel),
                     "--host", "localhost")
    first = re.search(r"&& (ansible-playbook [^&\n]*?) &&", proc.stdout)  # the check it recommends first
    assert first, proc.stdout
    argv = [str(ansible_bin / "ansible-playbook"), *first.group(1).split()[1:],
            "-e", f"omerowizard_python={sys.executable}"]
    env = ansible_parts.ansible_env(tmp_path, skel / "collections")
    env.pop("ANSIBLE_COLLECTIONS_PATH")
    play, _ = audit.run("ansible-playbook (the playbook's first command)", argv,
                        env={**env, "OMEROWIZARD_HOME": str(d.home)}, cwd=skel, timeout=600)
    assert not marker.exists(), "a value read from config.xml ran as root in Ansible"
    clean(audit, since)


# ----------------------------------------------------------------------------- planted links and FIFOs
def test_a_link_or_fifo_planted_at_any_path_root_reads_leaks_nothing_and_hangs_nothing(audit, deployment, user_venv,
                                                                                     tmp_path):
    """The paths root reads in the OMERO.web user's directories, as the audit saw them (one per code path:
    config.xml, var/django.pid, var/log/OMEROweb.log, a METADATA of the environment, ...), each replaced in
    turn by a link to a root-only file and by a FIFO, by that user; the run that read it is run again: it
    ends within its time, and the root-only file's content is nowhere in its output or omerowizard's files."""
    d, since = deployment, len(audit.runs)
    secret = tmp_path / "root-only"
    token = "ROOT-ONLY-" + os.urandom(8).hex()
    secret.write_text(f"{token}\n" * 50)
    secret.chmod(0o600)
    started = d.answers_file(answers(d, user_venv, prefix="/a"), name="a.yml")
    wizard(audit, d, "apply (to plant in)", "apply", str(started))
    dry = d.answers_file(answers(d, user_venv, prefix="/b"), name="b.yml")
    wizard(audit, d, "apply --dry-run (to plant in)", "apply", "--dry-run", str(dry))
    # what each run read in a directory another user controls: one file per code path
    reads: dict[str, tuple[str, Path]] = {}
    for report, argv in ((audit.runs[since + 1], ["apply", "--dry-run"]), (audit.runs[since], ["apply"])):
        for path in sorted(report.root_opens_in_user_dirs):
            p = Path(path)
            # /proc/PID of the user's processes is the kernel's: nothing can be planted there
            if p.is_file() and not p.is_symlink() and not path.startswith("/proc/"):
                reads.setdefault(pattern(path), (" ".join(argv), p))
    kinds = {k: p for k, (_, p) in reads.items()}
    assert any(p.name == "config.xml" for p in kinds.values()), sorted(kinds)
    assert any(p.name == "METADATA" for p in kinds.values()), sorted(kinds)
    failures, ran = [], 0
    for kind, (command, path) in sorted(reads.items()):
        for plant in ("link", "fifo"):
            aside = path.with_name(path.name + ".planted-aside")
            os.rename(path, aside)
            try:
                if plant == "link":
                    as_user("ln", "-s", str(secret), str(path))
                else:
                    as_user("mkfifo", str(path))
                ran += 1
                # an apply must change something to read what a start reads: the prefix alternates
                f = d.answers_file(answers(d, user_venv, prefix=f"/p{ran}"), name=f"planted-{ran}.yml")
                args = command.split() + [str(f)]
                limit = 60 if "--dry-run" in args else 120
                rc, out, seconds = _run_bounded(d, args, timeout=limit)
                leaked = [str(q) for q in d.home.rglob("*") if q.is_file() and token in q.read_text(errors="replace")]
                if rc is None or token in out or leaked:
                    failures.append(f"{plant} at {path} ({kind}), `omerowizard {' '.join(command.split())}`: "
                                    + (f"did not end in {limit} s" if rc is None else f"exit {rc} in {seconds:.0f}s")
                                    + (", printed the root-only file" if token in out else "")
                                    + (f", copied it into {leaked}" if leaked else ""))
            finally:
                if path.is_symlink() or path.exists():
                    path.unlink()
                os.rename(aside, path)
    print(f"\nplanted a link and a FIFO at each of {len(reads)} paths root reads: "
          + ", ".join(f"{p} ({c})" for c, p in sorted(reads.values())))
    assert ran >= 6
    assert not failures, f"{len(failures)} of {ran} planted runs:\n" + "\n".join(failures)


def _run_bounded(d, args: list[str], timeout: float) -> tuple[int | None, str, float]:
    """``omerowizard ARGS`` with a time limit; on the limit, it and every omero of the deployment are ended."""
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "omerowizard", *args], env=d.env(), cwd=str(d.workdir),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out, time.monotonic() - start
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        subprocess.run(["pkill", "-KILL", "-f", f"OMERODIR={d.omerodir}"], check=False)
        out, _ = proc.communicate()
        return None, out, time.monotonic() - start
