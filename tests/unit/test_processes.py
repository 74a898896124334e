"""One way to run a process (issue 21): only omerowizard/system/processes.py starts programs, and before root runs
anything it checks that no other user can change what would run or be loaded."""

from __future__ import annotations

import ast
import os
import pwd
import shutil
import sys
import time
from pathlib import Path

import pytest

from omerowizard.system import processes
from tests.support.wait import until

PACKAGE = Path(__file__).resolve().parents[2] / "omerowizard"
STARTERS = ("exec", "spawn", "posix_spawn", "fork")


def offenders(tree: ast.AST, name: str) -> list[str]:
    """Where a module other than processes.py imports subprocess or starts a program itself."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [f"{name}:{node.lineno}: import {a.name}" for a in node.names
                    if a.name.split(".")[0] in {"subprocess", "pty", "multiprocessing"}]
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if mod.split(".")[0] in {"subprocess", "pty", "multiprocessing"} or mod == "asyncio.subprocess":
                out.append(f"{name}:{node.lineno}: from {mod} import")
            elif mod == "os":
                out += [f"{name}:{node.lineno}: from os import {a.name}" for a in node.names
                        if a.name.startswith(STARTERS)]
            elif mod == "asyncio":
                out += [f"{name}:{node.lineno}: from asyncio import {a.name}" for a in node.names
                        if "subprocess" in a.name]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == "os" and node.attr.startswith(STARTERS):
                out.append(f"{name}:{node.lineno}: os.{node.attr}")
            if node.value.id == "asyncio" and "subprocess" in node.attr:
                out.append(f"{name}:{node.lineno}: asyncio.{node.attr}")
    return out


def test_only_processes_py_starts_programs():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "system" / "processes.py":
            continue
        found += offenders(ast.parse(path.read_text(), str(path)), str(path.relative_to(PACKAGE.parent)))
    assert found == []


def test_the_walk_would_catch_each_way_of_starting_a_program():
    bad = ("import subprocess\nfrom subprocess import run\nimport os\nos.execv('/bin/id', ['id'])\n"
           "os.spawnlp(os.P_WAIT, 'id', 'id')\nos.posix_spawn('/bin/id', ['id'], {})\nfrom os import execvp\n"
           "import asyncio\nasyncio.create_subprocess_exec('id')\nimport pty\n")
    assert len(offenders(ast.parse(bad), "bad.py")) == 8


def root_only():
    if os.geteuid() != 0:
        pytest.fail("runs as root (the wizard's production case)", pytrace=False)


def nobody() -> pwd.struct_passwd:
    return pwd.getpwnam("nobody")


def test_root_runs_its_own_system_programs():
    root_only()
    for program in ("/usr/bin/env", shutil.which("runuser") or "/usr/sbin/runuser", "/usr/bin/python3",
                    "/usr/bin/crontab", "/usr/sbin/nginx"):
        assert processes.root_problem([program]) is None, program
    assert processes.run(["/usr/bin/env", "true"]).returncode == 0


def test_a_program_in_a_directory_another_user_owns_is_refused_naming_it_and_the_fix(tmp_path):
    root_only()
    d = tmp_path / "theirs"
    d.mkdir()
    os.chown(d, nobody().pw_uid, nobody().pw_gid)
    program = d / "tool"
    program.write_text("#!/bin/sh\nid > /dev/null\n")
    program.chmod(0o755)
    with pytest.raises(processes.UntrustedProgram) as err:
        processes.run([str(program)])
    assert f"{d} belongs to nobody" in str(err.value) and "chown root:" in str(err.value)


def test_a_script_whose_interpreter_another_user_can_write_is_refused(tmp_path):
    root_only()
    interp = tmp_path / "interp"
    shutil.copy("/bin/true", interp)
    interp.chmod(0o757)  # others may write it
    script = tmp_path / "script"
    script.write_text(f"#!{interp}\n")
    script.chmod(0o755)
    why = processes.root_problem([str(script)])
    assert why is not None and f"{interp} can be written by others" in why.why


def test_a_link_to_a_program_another_user_owns_is_followed_and_refused(tmp_path):
    root_only()
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    shutil.copy("/bin/true", theirs / "true")
    os.chown(theirs / "true", nobody().pw_uid, nobody().pw_gid)
    (tmp_path / "link").symlink_to(theirs / "true")
    why = processes.root_problem([str(tmp_path / "link")])
    assert why is not None and why.why == f"{theirs / 'true'} belongs to nobody"


def fake_venv(root: Path) -> Path:
    """The files Python reads at start in a venv (no interpreter is run here)."""
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "python").symlink_to("/usr/bin/python3")
    site = root / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (root / "pyvenv.cfg").write_text("home = /usr/bin\nversion = 3.11.2\n")
    (site / "pip").mkdir()
    (site / "pip" / "__init__.py").write_text("")
    return root


def test_a_venv_another_user_owns_runs_as_that_user_with_a_clean_environment(tmp_path):
    root_only()
    venv = fake_venv(tmp_path / "venv")
    for path in [venv, *venv.rglob("*")]:
        os.chown(path, nobody().pw_uid, nobody().pw_gid, follow_symlinks=False)
    argv = [str(venv / "bin" / "python"), "-m", "pip", "list"]
    with pytest.raises(processes.UntrustedProgram) as err:
        processes.prepare(argv)
    assert f"{venv}" in str(err.value)
    os.environ["OMW_ROOTS_OWN"] = "x"
    try:
        full, env = processes.prepare(argv, env={"PIP_X": "1"}, as_owner=True)
    finally:
        del os.environ["OMW_ROOTS_OWN"]
    assert full[1:4] == ["-u", "nobody", "--"] and full[4:6] == ["/usr/bin/env", "-i"]
    assert full[-4:] == argv and "PIP_X=1" in full and f"HOME={nobody().pw_dir}" in full
    assert not any(a.startswith("OMW_ROOTS_OWN") for a in full) and env is None
    assert processes.runs_as(argv) == "nobody"


@pytest.mark.parametrize("plant", ["zz_evil.pth", "sitecustomize.py", "pip/__init__.py"])
def test_a_root_venv_with_a_file_another_user_owns_is_refused(tmp_path, plant):
    root_only()
    venv = fake_venv(tmp_path / "venv")
    site = venv / "lib" / "python3.11" / "site-packages"
    (site / plant).write_text("import os\n")
    os.chown(site / plant, nobody().pw_uid, nobody().pw_gid)
    argv = [str(venv / "bin" / "python"), "-m", "pip", "list"]
    why = processes.root_problem(argv)
    assert why is not None and why.why == f"{site / plant} belongs to nobody"
    with pytest.raises(processes.UntrustedProgram, match="chown -R root:"):
        processes.prepare(argv, as_owner=True)  # the environment is root's: nobody to run it as instead


def test_a_pth_line_adding_a_directory_another_user_owns_is_refused(tmp_path):
    root_only()
    venv = fake_venv(tmp_path / "venv")
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, nobody().pw_uid, nobody().pw_gid)
    (venv / "lib" / "python3.11" / "site-packages" / "extra.pth").write_text(f"# a path\n{theirs}\n")
    why = processes.root_problem([str(venv / "bin" / "python")])
    assert why is not None and why.why.startswith(f"{theirs} belongs to nobody (added to sys.path by ")


def test_a_root_venv_root_alone_can_change_runs_as_root(tmp_path):
    root_only()
    venv = fake_venv(tmp_path / "venv")
    argv = [str(venv / "bin" / "python"), "-c", "import os; print(os.geteuid())"]
    assert processes.root_problem(argv) is None
    assert processes.run(argv).output.strip() == "0"


def test_run_as_a_user_keeps_nothing_of_roots_environment():
    root_only()
    os.environ["OMW_SECRET_OF_ROOT"] = "x"
    try:
        out = processes.run(["/usr/bin/env"], user="nobody", env={"GIVEN": "1"}).output
    finally:
        del os.environ["OMW_SECRET_OF_ROOT"]
    assert "GIVEN=1" in out and "OMW_SECRET_OF_ROOT" not in out and "PYTHONPATH" not in out


def test_streamed_lines_separate_errors_and_input():
    r = processes.run([sys.executable, "-c", "import sys; print(sys.stdin.read().upper()); print('e', file=sys.stderr)"],
                      input="abc", separate_errors=True)
    assert (r.returncode, r.output, r.errors) == (0, "ABC\n", "e\n")
    seen = []
    r = processes.run([sys.executable, "-c", "print('one'); print('two')"], on_line=seen.append)
    assert seen == ["one", "two"] and r.output == "one\ntwo\n"


def test_a_missing_program_says_so():
    with pytest.raises(processes.CannotRun) as err:
        processes.run(["/nonexistent/omw-tool"])
    assert processes.missing(err.value)


def test_a_link_another_user_owns_in_a_sticky_directory_is_refused(tmp_path):
    root_only()
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)  # like /tmp: anyone may add an entry, only its owner may replace it
    (sticky / "tool").symlink_to("/bin/true")
    assert processes.root_problem([str(sticky / "tool")]) is None  # root's link: only root can replace it
    os.lchown(sticky / "tool", nobody().pw_uid, nobody().pw_gid)
    why = processes.root_problem([str(sticky / "tool")])
    assert why is not None and why.why == f"{sticky / 'tool'} is a symbolic link that nobody owns"


# ------------------------------------------------------------------------------------------------ time limit
HOLDER = """import os, subprocess, sys
fifo = sys.argv[1]
grandchild = subprocess.Popen([sys.executable, "-c", f"open({fifo!r}).read()"])  # inherits the output too
print(os.getpid(), grandchild.pid, flush=True)
open(fifo).read()  # blocks: nobody writes the FIFO; the output stays open
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("separate_errors", [False, True])
def test_a_child_blocked_with_its_output_open_is_ended_at_its_time_limit(tmp_path, separate_errors):
    """A FIFO where the child reads (planted between a check and the child's own open) blocks it with its output
    still open: the time limit ends its whole process group all the same, and says so."""
    fifo = tmp_path / "METADATA"
    os.mkfifo(fifo)
    seen: list[str] = []
    started = time.monotonic()
    with pytest.raises(processes.TimedOut) as err:
        processes.run([sys.executable, "-c", HOLDER, str(fifo)], timeout=2, separate_errors=separate_errors,
                      on_line=None if separate_errors else seen.append)
    assert time.monotonic() - started < 30
    assert str(err.value).endswith("did not finish within 2 s: its processes were ended")
    assert str(err.value).startswith(sys.executable)
    pids = [int(p) for p in (seen[0] if seen else err.value.output).split()]
    assert len(pids) == 2, (seen, err.value.output)  # the lines before the limit were passed on (and kept)
    until(lambda: not any(map(_alive, pids)), 30, "the end of the child and its grandchild")


def test_a_time_limit_leaves_a_command_that_ends_in_time_alone():
    seen: list[str] = []
    r = processes.run([sys.executable, "-c", "print('one'); print('two')"], on_line=seen.append, timeout=60)
    assert seen == ["one", "two"] and r.output == "one\ntwo\n" and r.returncode == 0
