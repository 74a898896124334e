"""Safe on a production server: preflight, all-or-nothing apply, locking, interrupts, secrets,
hostile answers. Every test runs the real omerowizard against a real OMERO.web and checks the
config, files and crontab against what they were before."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import parts
from tests.e2e.conftest import E2E_ROOT, USER, VENV
from tests.support.wait import until

LIGHT = {"application_server": {"workers": 1}}


def digest(path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def crontab(user: str = USER) -> str:
    return subprocess.run(["crontab", "-l", "-u", user], capture_output=True, text=True).stdout


def pids(pattern: str) -> list[int]:
    """The processes whose command line matches ``pattern`` (pgrep -f)."""
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout
    return [int(pid) for pid in found.split()]


def running(d) -> bool:
    pidfile = d.omerodir / "var" / "django.pid"
    if not pidfile.exists():
        return False
    try:
        os.kill(int(pidfile.read_text()), 0)
        return True
    except (ProcessLookupError, ValueError):
        return False


def others_removed(text: str, d) -> str:
    """The crontab without the lines of other e2e deployments (tests of other engineers may run at the
    same time on this machine); every other line, the administrator's included, is compared."""
    return "".join(line for line in text.splitlines(True)
                   if f"OMERODIR={E2E_ROOT}/dirs/" not in line or f"OMERODIR={d.omerodir} " in line)


def snapshot(d, *files):
    return {"config": digest(d.config_xml), "running": running(d), "crontab": others_removed(crontab(), d),
            **{str(f): digest(f) for f in files}}


def spawn(d, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-u", "-m", "omerowizard", *args], env=d.env(), cwd=str(d.workdir),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)


def read_until(proc: subprocess.Popen, marker: str, timeout: float = 120) -> str:
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"{marker!r} never appeared:\n{''.join(seen)}")


def good(d, **extra) -> dict:
    """A deployment behind nginx whose server block goes into the test's own directory."""
    site = {"kind": "nginx", "config_path": str(d.workdir / "site" / "omero.conf"), "port": 8080}
    return {**LIGHT, "sessions": {"clearsessions": "off"}, "web_server": site, **extra}


# ----------------------------------------------------------------------------- preflight
def test_read_only_omerodir_fails_preflight_and_changes_nothing(deployment):
    d = deployment
    os.chmod(d.omerodir, 0o555)
    try:
        before = snapshot(d)
        proc = d.cli("apply", str(d.answers_file(good(d, prefix="/omero"))))
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "preflight failed; nothing was changed" in proc.stderr
        assert f"omero-web cannot write OMERODIR {d.omerodir}" in proc.stderr and "chown -R" in proc.stderr
        assert snapshot(d) == before
    finally:
        os.chmod(d.omerodir, 0o755)


def test_application_port_taken_fails_preflight(deployment):
    d = deployment
    with socket.socket() as s:
        s.bind(("127.0.0.1", d.app_port))
        s.listen()
        before = snapshot(d)
        proc = d.cli("apply", str(d.answers_file(good(d))))
        assert proc.returncode == 1
        assert f"port {d.app_port} on 127.0.0.1 is already in use" in proc.stderr
        assert snapshot(d) == before


def test_redis_not_answering_fails_preflight(deployment):
    d = deployment
    dead = parts.free_port()
    proc = d.cli("apply", str(d.answers_file(good(d, sessions={"backend": "redis",
                                                                "location": f"redis://:pw@127.0.0.1:{dead}/0"}))))
    assert proc.returncode == 1
    assert f"Redis at redis://:****@127.0.0.1:{dead}/0 cannot connect" in proc.stderr
    assert "pw@" not in proc.stdout + proc.stderr
    assert not d.config_xml.exists()


# ----------------------------------------------------------------------------- faults mid-apply
def test_redis_stopped_after_preflight_restores_everything(deployment, tmp_path):
    d = deployment
    redis = parts.Redis(tmp_path / "redis").start()
    try:
        d.omero("config", "set", "omero.web.session_cookie_age", "4321")
        before = snapshot(d)
        proc = spawn(d, "apply", str(d.answers_file(good(d, sessions={"backend": "redis", "location": redis.url}))))
        read_until(proc, "==> write OMERO config")
        redis.stop()
        out = proc.communicate(timeout=180)[0]
        assert proc.returncode == 1, out
        assert "cannot connect" in out and "Restored:" in out, out
        assert snapshot(d) == before
        assert d.config()["omero.web.session_cookie_age"] == "4321"
    finally:
        redis.stop()


def test_failing_nginx_check_restores_everything(deployment, tmp_path):
    d = deployment
    fake = tmp_path / "bin"
    fake.mkdir()
    real = parts.require("nginx")
    # fault injection: an nginx whose configuration test fails, as a broken include would make it
    (fake / "nginx").write_text(f'#!/bin/sh\nfor a in "$@"; do [ "$a" = -t ] && '
                                f'{{ echo "nginx: [emerg] injected failure" >&2; exit 1; }}; done\nexec {real} "$@"\n')
    (fake / "nginx").chmod(0o755)
    site = d.workdir / "site" / "omero.conf"
    answers = {**LIGHT, "sessions": {"clearsessions": "off"}, "prefix": "/omero",
               "web_server": {"kind": "nginx", "config_path": str(site), "port": parts.free_port()}}
    before = snapshot(d, site)
    env = d.env(PATH=f"{fake}:{os.environ['PATH']}")
    proc = subprocess.run([sys.executable, "-m", "omerowizard", "apply", str(d.answers_file(answers))], env=env,
                          capture_output=True, text=True, timeout=300, cwd=str(d.workdir))
    assert proc.returncode == 1, proc.stdout
    assert "injected failure" in proc.stdout + proc.stderr
    assert "Restored:" in proc.stderr
    assert snapshot(d, site) == before


def test_omero_killed_mid_restart_restores_the_previous_running_deployment(deployment):
    d = deployment
    first = d.cli("apply", str(d.answers_file(good(d, prefix="/before"))))
    assert first.returncode == 0, first.stdout + first.stderr
    before = snapshot(d)
    assert before["running"]
    proc = spawn(d, "apply", str(d.answers_file(good(d, prefix="/after"), name="after.yml")))
    read_until(proc, "==> omero web restart")
    for pid in until(lambda: pids(f"OMERODIR={d.omerodir} .*omero web restart"), 60, "omero web restart running"):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    out = proc.communicate(timeout=180)[0]
    assert proc.returncode == 1, out
    assert "Restored:" in out
    assert digest(d.config_xml) == before["config"]
    assert d.config()["omero.web.prefix"] == "/before"
    assert parts.http_get(d.login_url("/before")).status == 200  # running again, as it was


def test_sigterm_during_start_restores_and_leaves_omero_web_stopped(deployment):
    d = deployment
    before = snapshot(d)
    # a clearsessions job is installed before the start, so the restore must take it out again
    proc = spawn(d, "apply", str(d.answers_file({**LIGHT, "sessions": {"clearsessions": "daily"},
                                                  "web_server": {"kind": "nginx", "config_path": str(d.workdir / "s.conf")},
                                                  "prefix": "/omero"})))
    read_until(proc, "ok scheduled jobs")
    assert str(d.omerodir) in crontab()
    read_until(proc, "==> omero web start")
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=180)[0]
    assert proc.returncode == 130, out
    assert "interrupted" in out and "Restored:" in out
    with contextlib.suppress(AssertionError):  # (what differs is shown below)
        until(lambda: snapshot(d) == before, 30, "the deployment as it was before")
    assert snapshot(d) == before
    assert not running(d)
    assert not (d.workdir / "s.conf").exists()


def test_sigkill_mid_apply_is_detected_and_repaired_by_the_next_run(deployment):
    d = deployment
    d.omero("config", "set", "omero.web.session_cookie_age", "999")
    before = snapshot(d)
    f = d.answers_file(good(d, prefix="/omero"))
    proc = spawn(d, "apply", str(f))
    read_until(proc, "==> omero web start")
    proc.kill()
    proc.wait()
    # the orphaned omero web start of the killed run may still be running: let it finish
    until(lambda: not pids(f"OMERODIR={d.omerodir} .*omero web start"), 120, "the end of the killed run's omero web start")
    # the next run repairs first (restores the backup, stops what the killed run started), then applies
    again = d.cli("apply", str(f))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "was killed mid-apply; restored:" in again.stdout, again.stdout[-3000:]
    assert f"restored: {d.config_xml}" in again.stdout
    cfg = d.config()
    assert cfg["omero.web.prefix"] == "/omero"
    assert "omero.web.session_cookie_age" not in cfg  # the answers ask for OMERO's default again
    assert parts.http_get(d.login_url("/omero")).status == 200
    assert before["config"] is not None


def test_rollback_restores_the_state_before_the_last_apply(deployment):
    d = deployment
    assert d.cli("apply", str(d.answers_file(good(d, prefix="/one", start=False)))).returncode == 0
    one = digest(d.config_xml)
    assert d.cli("apply", str(d.answers_file(good(d, prefix="/two", start=False), name="two.yml"))).returncode == 0
    assert d.config()["omero.web.prefix"] == "/two"
    proc = d.cli("rollback")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Restored the backup" in proc.stdout
    assert digest(d.config_xml) == one


# ----------------------------------------------------------------------------- one run at a time
def test_two_applies_at_once_give_the_result_of_one(deployment):
    d = deployment
    f = d.answers_file(good(d, prefix="/omero"))
    a, b = spawn(d, "apply", str(f)), spawn(d, "apply", str(f))
    outs = [p.communicate(timeout=240)[0] for p in (a, b)]
    codes = [a.returncode, b.returncode]
    assert 0 in codes, outs
    for code, out in zip(codes, outs):
        assert code == 0 or "another omerowizard run (process" in out, out
    assert d.config()["omero.web.prefix"] == "/omero"
    assert parts.http_get(d.login_url("/omero")).status == 200


# ----------------------------------------------------------------------------- secrets
def test_redis_password_never_printed_or_logged(deployment, tmp_path):
    d = deployment
    secret = "s3cr3t-PW-xyzzy"
    redis = parts.Redis(tmp_path / "redis", password=secret).start()
    try:
        f = d.answers_file(good(d, sessions={"backend": "redis", "location": redis.url}))
        dry = d.cli("apply", str(f), "--dry-run")
        proc = d.cli("apply", str(f))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "redis://:****@127.0.0.1" in proc.stdout
        answers = d.cli("answers")
        log = (d.state.command_log).read_text()
        for text in (dry.stdout, dry.stderr, proc.stdout, proc.stderr, log):
            assert secret not in text
        assert secret in answers.stdout  # the answers file must hold it to be applied again ...
        saved = d.state.answers
        assert stat.S_IMODE(saved.stat().st_mode) == 0o600  # ... so the saved copy is private
        assert secret in d.config()["omero.web.caches"]  # and OMERO.web really uses it
    finally:
        redis.stop()


# ----------------------------------------------------------------------------- hostile answers
HOSTILE = [
    "web_server: {server_name: 'example.org; include /etc/shadow'}",
    "web_server: {server_name: 'a}'}",
    "web_server: {server_name: \"x\\nserver { listen 81; }\"}",
    "web_server: {server_name: 'ex ample.org'}",
    "web_server: {server_name: '$host'}",
    "web_server: {server_name: ''}",
    "web_server: {server_name: " + "a" * 300 + "}",
    "web_server: {config_path: '/etc/nginx/conf.d/x.conf; rm -rf /'}",
    "web_server: {config_path: '../../etc/passwd'}",
    "web_server: {config_path: '/etc/nginx/../shadow'}",
    "web_server: {max_body_size: '0; autoindex on'}",
    "web_server: {max_body_size: 10.5}",
    "web_server: {port: 0}",
    "web_server: {port: 65536}",
    "web_server: {port: '80'}",
    "web_server: {port: [80]}",
    "web_server: {kind: caddy}",
    "web_server: {https: {certificate: '/etc/ssl/c.pem\"', key: /etc/ssl/k.pem}}",
    "web_server: {https: {certificate: /etc/ssl/c.pem}}",
    "application_server: {host: '127.0.0.1; deny all'}",
    "application_server: {host: 'evil host'}",
    "application_server: {workers: -1}",
    "application_server: {workers: 100000}",
    "application_server: {timeout: 'forever'}",
    "prefix: 'omero'",
    "prefix: '/omero/'",
    "prefix: '/om ero'",
    "prefix: '/../etc'",
    "prefix: '/omero;return 200'",
    "prefix: '/omero{'",
    "static_url: '/static'",
    "static_url: 'http://cdn.example.org/static/'",
    "sessions: {backend: postgres}",
    "sessions: {backend: redis, location: 'redis://127.0.0.1:6379/0\"}'}",
    "sessions: {backend: redis, location: 'redis://127.0.0.1:99999/0'}",
    "sessions: {backend: memcached, location: '127.0.0.1'}",
    "sessions: {cookie_age: 0}",
    "sessions: {clearsessions: '* * * *'}",
    "sessions: {clearsessions: '0 3 * * * ; rm -rf /'}",
    "sessions: {clearsessions: 'weekly'}",
    "cors: {mode: origins, origins: ['https://ok.example.org', 'javascript:alert(1)']}",
    "cors: {mode: origins, origins: ['https://a.example.org/path']}",
    "cors: {mode: origins, origins: ['https://user@a.example.org']}",
    "cors: {mode: origins, origins: 'https://a.example.org'}",
    "cors: {mode: origins, origins: []}",
    "cors: {mode: everyone}",
    "extra_config: {'omero.web.x\ny': 1}",
    "extra_config: {omero.web.login_logo: \"a\\nomero.web.prefix=/evil\"}",
    "extra_config: {omero.web.middleware: []}",
    "extra_config: {other.key: 1}",
    "extra_config: [1, 2]",
    "omero: {user: root}",
    "omero: {user: 'omero-web; id'}",
    "omero: {venv: '/opt/omero web'}",
    "omero: {omerodir: relative}",
    "platform: macos",
    "platform: windows\nweb_server: {kind: apache}",
    "unknown_top_level: 1",
    "web_server: {kind: nginx, kind: apache}",
    "start: 'yes'",
    "[not, a, mapping]",
    "key: [unclosed",
    "",
    "# only a comment",
    "web_server: !!python/object/apply:os.system ['id']",
    "apps: {enabled: [figure], find_links: 'file:///etc'}",
    "apps: {custom: [{requirement: 'omero-x; id', app: omero_x}]}",
    "apps: {custom: [{requirement: '--index-url=https://evil.example.org omero-x', app: omero_x}]}",
    "apps: {enabled: [figure], versions: {figure: '==8.0.1 --pre'}}",
    "nodes: {members: [{host: 10.0.0.1, port: 80}], static: everywhere}",
    "public: {enabled: true, user: public}",
    "servers: [{host: omero.example.org, port: 0}]",
    "omero: {web_version: 'latest'}",
]


def _tree(root) -> dict[str, str | None]:
    """Every path below ``root`` with the digest of each file (None for directories and links)."""
    out: dict[str, str | None] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            out[p] = digest(Path(p)) if os.path.isfile(p) and not os.path.islink(p) else None
    return out


def _run_timed(argv: list[str], env: dict, cwd: str, out_path: Path) -> tuple[int, str, float, float]:
    """Run argv; return (exit status, stderr, wall seconds, CPU seconds of the child)."""
    with open(out_path, "wb") as out, open(str(out_path) + ".err", "wb") as err:
        start = time.monotonic()
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = Path(str(out_path) + ".err").read_text(errors="replace")
    return proc.returncode, stderr, wall, usage.ru_utime + usage.ru_stime


def test_hostile_answers_files_exit_2_and_change_nothing(deployment):
    """The hand-written files above plus the generated corpus (tests/hostile_corpus.py), each
    through the real CLI: exit 2, the key and line named, no traceback, within 2 s of CPU
    (CPU, not wall time: two cores are shared with other test runs), and nothing changed:
    config.xml, the site file, every file in OMERODIR and in OMEROWIZARD_HOME, the crontab."""
    from concurrent.futures import ThreadPoolExecutor

    from tests import hostile_corpus

    d = deployment
    site = d.workdir / "site" / "omero.conf"
    setup = {**LIGHT, "web_server": {"kind": "nginx", "config_path": str(site), "port": parts.free_port()},
             "sessions": {"clearsessions": "daily"}, "start": False}
    first = d.cli("apply", str(d.answers_file(setup)))
    assert first.returncode == 0, first.stdout + first.stderr
    assert site.exists() and "clearsessions" in crontab()
    def state():
        # the crontab is shared with every other test on the machine: compare this deployment's lines
        ours = [line for line in crontab().splitlines() if str(d.omerodir) in line]
        return ({**snapshot(d, site), "crontab": ours}, _tree(d.omerodir), _tree(d.home), _tree(site.parent))

    before = state()
    head = f"omero: {{venv: /opt/omerowizard-e2e/venv3, omerodir: {d.omerodir}}}\n"
    corpus = d.workdir / "corpus"
    corpus.mkdir()
    files: list[tuple[Path, str]] = []
    for i, body in enumerate(HOSTILE):
        path = corpus / f"hostile-{i}.yml"
        text = body if body.startswith(("[", "key:", "#", "omero:")) or body == "" else head + body
        path.write_text(text + "\n")
        files.append((path, f"{path}:"))
    # one in twelve of the per-key mutations (every key and every mutation still appears): the unit
    # tier checks all of them in-process (tests/unit/test_input_exact.py); this keeps the test ~2 min
    # (about as many files as before the newer keys and YAML cases were added)
    entries = hostile_corpus.per_key(str(VENV), str(d.omerodir), str(site), every=12) + hostile_corpus.yaml_features()
    for e in entries:
        path = corpus / f"{e.name.replace('/', '_')}.yml"
        path.write_bytes(e.body)
        files.append((path, e.expected(str(path))))
    assert len(files) >= 150

    def run(item):
        path, expected = item
        rc, stderr, wall, cpu = _run_timed([sys.executable, "-m", "omerowizard", "apply", str(path)], d.env(),
                                           str(d.workdir), path.with_suffix(".out"))
        return path, expected, rc, stderr, wall, cpu

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(run, files))
    failures = []
    for path, expected, rc, stderr, wall, cpu in results:
        ok = rc == 2 and expected in stderr and "nothing was changed" in stderr and "Traceback" not in stderr \
            and cpu < 2.0 and wall < 10
        if not ok:
            failures.append(f"{path.name}: exit {rc}, {wall:.2f}s wall, {cpu:.2f}s CPU, want {expected!r}:\n"
                            f"{stderr[-600:]}")
    assert not failures, f"{len(failures)} of {len(results)} files:\n" + "\n".join(failures[:20])
    assert state() == before
    slowest = max(results, key=lambda r: r[4])
    print(f"{len(results)} hostile files; slowest {slowest[0].name}: {slowest[4]:.2f}s wall, {slowest[5]:.2f}s CPU")


def test_a_run_that_waits_for_the_lock_plans_again_and_finds_nothing_to_change(deployment):
    d = deployment
    f = d.answers_file(good(d, prefix="/omero"))
    first = spawn(d, "apply", str(f))
    read_until(first, "==> preflight")
    second = d.cli("apply", str(f), "--wait", "120")
    assert first.wait(timeout=180) == 0
    assert second.returncode == 0, second.stdout + second.stderr
    assert "planned again: another run changed this deployment" in second.stdout
    assert "Nothing to change" in second.stdout
    assert parts.http_get(d.login_url("/omero")).status == 200
