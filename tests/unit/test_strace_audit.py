"""The strace audit's own logic (tests/strace_audit.py): its parser of ``strace -f -yy -xx`` logs, who runs
as whom, and what it calls a violation, on traces written here and on files planted in a directory
another user owns. The e2e tier (tests/e2e/test_root_boundary.py) runs it on the real commands."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from tests import strace_audit as sa


def x(text: str) -> str:
    return "".join(f"\\x{b:02x}" for b in text.encode())


def q(text: str) -> str:
    return f'"{x(text)}"'


def execve(pid: int, path: str, *argv: str, ret: str = "0") -> str:
    args = ", ".join(q(a) for a in (argv or (path,)))
    return f"{pid} execve({q(path)}, [{args}], 0x7ffd4a3cbbc8 /* 35 vars */) = {ret}"


def openat(pid: int, cwd: str, path: str, flags: str, ret: str = "3") -> str:
    return f"{pid} openat(AT_FDCWD<{x(cwd)}>, {q(path)}, {flags}) = {ret}"


def test_unfinished_and_resumed_calls_are_joined_and_padding_is_read():
    log = "\n".join([
        "100 vfork( <unfinished ...>",
        f"101 execve({q('/usr/bin/cat')}, [{q('cat')}], 0x1 /* 3 vars */ <unfinished ...>",
        "100 <... vfork resumed>)              = 101",
        "101 <... execve resumed>)             = 0",
        "101 setuid(999)                       = 0",
        f"101 openat(AT_FDCWD<{x('/')}>, {q('/etc/passwd')}, O_RDONLY|O_CLOEXEC <unfinished ...>",
        "101 <... openat resumed>)             = 3<" + x("/etc/passwd") + ">",
        "101 +++ exited with 0 +++",
    ])
    calls = sa.parse(log)
    assert [(c.pid, c.name, c.ret) for c in calls] == [(100, "vfork", "101"), (101, "execve", "0"),
                                                        (101, "setuid", "0"), (101, "openat", "3<" + x("/etc/passwd") + ">")]
    assert sa.exec_path(calls[1]) == "/usr/bin/cat"
    assert sa.fd_path(calls[3].args[0]) == "/"


def test_a_child_inherits_the_uid_of_its_parent_at_the_clone_even_when_it_runs_before_the_clone_returns():
    log = "\n".join([
        execve(10, "/usr/sbin/runuser", "runuser", "-u", "omero-web", "--", "/usr/bin/env"),
        "10 setgroups(1, [995])               = 0",
        "10 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|SIGCHLD <unfinished ...>",
        "11 setuid(999)                       = 0",
        execve(11, "/usr/bin/env", "env", "python3"),
        "11 vfork( <unfinished ...>",
        execve(12, "/usr/bin/python3", "python3"),
        "11 <... vfork resumed>)              = 12",
        "10 <... clone resumed>, child_tidptr=0x7f7c625d2850) = 11",
        "10 setresuid(-1, 999, 0)             = 0",
        execve(10, "/usr/bin/true", "true"),
        "10 setreuid(-1, 0)                   = 0",
        execve(10, "/usr/bin/false", "false"),
    ])
    procs = sa.processes(sa.parse(log))
    assert procs[11].parent == (10, 2) and procs[12].parent == (11, 2)
    euid = {(p.pid, sa.exec_path(c)): e for p in procs.values() for c, e in zip(p.calls, p.euid_before)
            if c.name == "execve"}
    assert euid == {(10, "/usr/sbin/runuser"): 0, (11, "/usr/bin/env"): 999, (12, "/usr/bin/python3"): 999,
                    (10, "/usr/bin/true"): 999, (10, "/usr/bin/false"): 0}
    report = sa.analyse("t", [], 0, 0.0, log)
    assert dict(report.root_execs) == {"runuser": 1, "false": 1}
    assert report.root_processes == 2 and not report.violations  # runuser, and its child until setuid


def test_a_failed_exec_runs_nothing_and_a_process_of_unknown_origin_counts_as_root():
    log = "\n".join([execve(1, "/usr/bin/true"), execve(1, "/nonexistent/x", ret="-1 ENOENT (No such file)"),
                     execve(77, "/usr/bin/false")])
    report = sa.analyse("t", [], 0, 0.0, log)
    assert dict(report.root_execs) == {"true": 1, "false": 1}


@pytest.fixture
def user_dir(tmp_path):
    """A directory that a user other than root owns (uid 65534, nobody)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to make a directory another user owns")
    d = tmp_path / "theirs"
    d.mkdir()
    os.chown(d, 65534, 65534)
    return d


def test_root_running_a_file_another_user_can_change_is_a_violation(tmp_path, user_dir):
    mine = tmp_path / "mine.sh"
    mine.write_text("#!/bin/sh\n")
    mine.chmod(0o755)
    theirs = user_dir / "run.sh"
    theirs.write_text("#!/bin/sh\n")
    script = tmp_path / "uses-their-interpreter"
    script.write_text(f"#!{theirs}\n")
    script.chmod(0o755)
    writable = tmp_path / "writable.sh"
    writable.write_text("#!/bin/sh\n")
    writable.chmod(0o777)
    link = tmp_path / "link"
    link.symlink_to(theirs)
    log = "\n".join(execve(1, str(p)) for p in (mine, theirs, script, writable, link))
    report = sa.analyse("t", [], 0, 0.0, log)
    flagged = {v.path: v.reasons for v in report.violations}
    assert str(mine) not in flagged
    assert any("belongs to uid 65534" in r for r in flagged[str(theirs)])
    assert any(r.startswith(f"the interpreter of {script}") for r in flagged[str(script)])
    assert any("writable by everyone" in r for r in flagged[str(writable)])
    assert any(str(user_dir) in r for r in flagged[str(link)])
    # the same runs by another user are no violation
    assert not sa.analyse("t", [], 0, 0.0, "1 setuid(65534) = 0\n" + log).violations


def test_a_python_whose_environment_another_user_can_change_is_a_violation(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    assert not sa.exec_problems(str(python))
    site = next(venv.glob("lib/python*/site-packages"))
    pth = site / "zz_evil.pth"
    pth.write_text("import os\n")
    pth.chmod(0o666)
    assert any(str(pth) in p for p in sa.exec_problems(str(python)))
    pth.unlink()
    (venv / "pyvenv.cfg").chmod(0o646)
    assert any("pyvenv.cfg" in p for p in sa.exec_problems(str(python)))


def test_opens_by_root_in_a_directory_another_user_owns(user_dir):
    inner = user_dir / "var"
    inner.mkdir()
    os.chown(inner, 65534, 65534)
    (inner / "django.pid").write_text("1\n")
    top = str(user_dir)
    log = "\n".join([
        openat(1, "/", f"{top}/var/django.pid", "O_RDONLY|O_NOFOLLOW"),  # 'var' is looked up by name: a link is followed
        f"1 openat(3<{x(str(inner))}>, {q('django.pid')}, O_RDONLY|O_CLOEXEC) = 4",  # the last name, links followed
        f"1 openat(3<{x(str(inner))}>, {q('django.pid')}, O_RDONLY|O_NOFOLLOW|O_NONBLOCK) = 4",  # safe
        f"1 openat(3<{x(top)}>, {q('new')}, O_WRONLY|O_CREAT|O_EXCL, 0600) = 4",  # safe: O_EXCL never follows
        openat(1, "/", "/etc/hostname", "O_RDONLY"),  # root's own
        f"1 openat(AT_FDCWD<{x(top)}>, {q('var')}, O_RDONLY|O_DIRECTORY|O_NOFOLLOW) = 5",  # safe
    ])
    report = sa.analyse("t", [], 0, 0.0, log)
    assert len(report.violations) == 2, report.summary()
    first, second = report.violations
    assert first.path == f"{top}/var/django.pid (O_RDONLY|O_NOFOLLOW)" and "looks up 'var'" in first.reasons[0]
    assert second.path == f"{inner}/django.pid (O_RDONLY|O_CLOEXEC)" and "without O_NOFOLLOW" in second.reasons[0]


def test_a_real_trace_of_runuser_is_read(tmp_path):
    """strace itself, on runuser: the child that switched users runs as omero-web's uid."""
    if os.geteuid() != 0 or not sa.parts.which("strace") or not sa.parts.which("runuser"):
        pytest.skip("needs root, strace and runuser (the e2e tier requires them)")
    audit = sa.Audit(tmp_path)
    proc, report = audit.run("runuser", ["runuser", "-u", "nobody", "--", "/usr/bin/env", "true"], env=dict(os.environ),
                             cwd="/")
    assert proc.returncode == 0
    assert dict(report.root_execs) == {"runuser": 1}, report.summary()
    assert dict(report.user_execs) == {"nobody: env": 1, "nobody: true": 1}, report.summary()
    assert stat.S_ISREG(os.stat(tmp_path / "strace-audit-report.txt").st_mode)


def test_the_end_of_the_command_is_seen_whatever_the_width_of_its_pid(tmp_path):
    """strace pads pids to five columns: '2830  +++ exited with 0 +++' ends the command 2830."""
    log = tmp_path / "log"
    log.write_text(f"2830  execve({q('/usr/bin/true')}, [{q('true')}], 0x1 /* 1 vars */) = 0\n"
                   "2831  +++ exited with 1 +++\n2830  +++ exited with 3 +++\n")
    tracer = subprocess.Popen(["sleep", "30"])
    try:
        assert sa._wait_for_command(tracer, log, 10, []) == 3
    finally:
        tracer.kill()
        tracer.wait()
