"""The boundary for root, checked by property on the real binaries (issue 21): a command runs under
Debian's ``strace -f`` and every process it starts is followed with the user it runs as. The audit
fails when a process whose effective uid is 0

- runs (``execve``) a file that a user other than root can change: the file, any directory on its
  path (links followed as the kernel does), the interpreter of a ``#!`` script, and for a Python
  virtual environment its ``pyvenv.cfg``, its ``site-packages`` and what is in it (a ``.pth`` file
  there runs at every start);
- opens a path through a directory that another user controls (OMERODIR, the OMERO.web user's
  virtual environment, a user's home) following links: a component looked up by name inside such a
  directory is not the last one (a planted link there is followed whatever the flags), or it is the
  last one and the open has neither ``O_NOFOLLOW`` nor ``O_CREAT|O_EXCL``.

Who runs as whom is read from the trace itself: a process starts with the effective uid of the
process that cloned it, at the moment of the clone; ``setuid``, ``setreuid`` and ``setresuid`` change
it (``runuser`` switches in its child, which its children inherit), and so does running a set-user-ID
file. The trace is one file (``-o``) with each line prefixed by its pid; a call another process
interrupted is printed in two pieces (``<unfinished ...>`` then ``<... NAME resumed>``), joined here
per pid. Strings and the paths of file descriptors (``-yy``) are printed in hexadecimal (``-xx``), so
no name can confuse the parser; ``AT_FDCWD`` is printed with the current directory it stands for.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import signal
import stat
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tests import parts

# what the trace must show: every way a process starts, changes its user or opens a file
SYSCALLS = ("execve", "execveat", "open", "openat", "openat2", "creat", "clone", "clone3", "fork", "vfork",
            "setuid", "setreuid", "setresuid", "setgroups", "capset")
CLONES = {"clone", "clone3", "fork", "vfork"}
OPENS = {"open", "openat", "openat2", "creat"}
EXECS = {"execve", "execveat"}
IGNORED_TREES = ("/proc/", "/sys/", "/dev/")  # kernel files: no link can be planted there


def strace_argv(log: Path) -> list[str]:
    return [parts.require("strace"), "-f", "-q", "--seccomp-bpf", "-yy", "-xx", "-s", "4096", "-e", "signal=none",
            "-e", "trace=" + ",".join(SYSCALLS), "-o", str(log), "--"]


# ----------------------------------------------------------------------------- parsing the trace
@dataclass
class Call:
    pid: int
    name: str
    args: list[str]
    ret: str | None  # None: the call never returned (the process was killed in it)

    @property
    def ok(self) -> bool:
        return self.ret is None or not self.ret.startswith("-1")

    @property
    def ret_int(self) -> int | None:
        m = re.match(r"-?\d+", self.ret or "")
        return int(m.group()) if m else None


_HEX = re.compile(r"\\x([0-9a-fA-F]{2})")


def unhex(text: str) -> str:
    """A string as strace -xx prints it ("\\x2f\\x65" with or without the quotes), decoded."""
    return bytes(int(h, 16) for h in _HEX.findall(text)).decode("utf-8", "surrogateescape")


def split_args(text: str) -> list[str]:
    """Top-level arguments of a call (commas inside [], {}, <>, quotes and comments do not split)."""
    out, depth, cur, i, quote = [], 0, [], 0, False
    while i < len(text):
        ch = text[i]
        if quote:
            cur.append(ch)
            if ch == "\\":
                cur.append(text[i + 1])
                i += 1
            elif ch == '"':
                quote = False
        elif ch == '"':
            quote = True
            cur.append(ch)
        elif text.startswith("/*", i):
            end = text.find("*/", i)
            end = len(text) if end < 0 else end + 2
            cur.append(text[i:end])
            i = end
            continue
        elif ch in "[{<(":
            depth += 1
            cur.append(ch)
        elif ch in "]}>)":
            depth -= 1
            cur.append(ch)
        elif ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
        i += 1
    if "".join(cur).strip():
        out.append("".join(cur).strip())
    return out


def string_arg(arg: str) -> str | None:
    arg = arg.strip()
    if not arg.startswith('"'):
        return None
    end = arg.rfind('"')
    return unhex(arg[1:end])


def fd_path(arg: str) -> str | None:
    """The path -yy prints after a file descriptor (``3</x>``, ``AT_FDCWD</x>``), or None."""
    m = re.match(r"^[A-Z_\d-]+<(.*)>$", arg.strip())
    if not m or not m.group(1).startswith("\\x"):
        return None
    return unhex(m.group(1))


def string_list(arg: str) -> list[str]:
    arg = arg.strip()
    if not arg.startswith("["):
        return []
    return [s for s in (string_arg(a) for a in split_args(arg[1:-1])) if s is not None]


_LINE = re.compile(r"^(\d+)\s+(.*)$")
_RETURN = re.compile(r"\)\s+= ")  # strace pads the return value to a column
_RESUMED = re.compile(r"^<\.\.\. (\w+) resumed>(.*)$")


def _call(pid: int, body: str) -> Call | None:
    m = re.match(r"^(\w+)\((.*)$", body, re.S)
    if not m:
        return None
    name, rest = m.groups()
    ends = list(_RETURN.finditer(rest))
    if not ends:
        args, ret = rest[:-1] if rest.endswith(")") else rest, None
    else:
        args, ret = rest[:ends[-1].start()], rest[ends[-1].end():].strip()
        if ret.startswith("?"):
            ret = None
    return Call(pid, name, split_args(args), ret)


def parse(text: str) -> list[Call]:
    """The calls of an ``strace -f -o`` log, in the order they were entered, unfinished calls joined
    with their resumption; a call still unfinished at the end (its process was killed in it, or is
    still blocked) is kept with no return value."""
    calls: list[Call] = []
    pending: dict[int, tuple[int, str]] = {}  # pid -> (index in calls, text so far)
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        pid, body = int(m.group(1)), m.group(2)
        if body.startswith(("+++", "---")):
            continue
        r = _RESUMED.match(body)
        if r:
            if pid not in pending:
                continue
            index, head = pending.pop(pid)
            call = _call(pid, head + r.group(2))
            if call:
                calls[index] = call
            continue
        if body.endswith("<unfinished ...>"):
            head = body[: -len("<unfinished ...>")].rstrip()
            call = _call(pid, head)
            if call:
                call.ret = None
                pending[pid] = (len(calls), head)
                calls.append(call)
            continue
        call = _call(pid, body)
        if call:
            calls.append(call)
    return calls


# ----------------------------------------------------------------------------- who runs as whom
@dataclass
class Proc:
    pid: int
    parent: tuple[int, int] | None = None  # (pid, index of the clone in its calls)
    calls: list[Call] = field(default_factory=list)
    euid_before: list[int] = field(default_factory=list)  # the effective uid when each call was entered
    argv: list[str] = field(default_factory=list)  # of its last successful execve


def processes(calls: list[Call], first_euid: int = 0) -> dict[int, Proc]:
    procs: dict[int, Proc] = {}
    for c in calls:
        procs.setdefault(c.pid, Proc(c.pid)).calls.append(c)
    for p in list(procs.values()):
        for i, c in enumerate(p.calls):
            if c.name in CLONES and c.ok and (c.ret_int or 0) > 0:
                procs.setdefault(c.ret_int, Proc(c.ret_int)).parent = (p.pid, i)
    root_pid = calls[0].pid if calls else None
    done: dict[int, list[int]] = {}

    def simulate(pid: int, depth: int = 0) -> list[int]:
        if pid in done:
            return done[pid]
        p = procs[pid]
        if p.parent and depth < 200:
            parent, index = p.parent
            euid = simulate(parent, depth + 1)[index]
        else:
            euid = first_euid if pid == root_pid else 0  # unknown origin: counted as root, to be safe
        out = []
        for c in p.calls:
            out.append(euid)
            if not c.ok and c.ret is not None:
                continue
            nums = [int(a) if re.fullmatch(r"-?\d+", a) else None for a in c.args]
            if c.name == "setuid" and nums and nums[0] is not None:
                euid = nums[0]
            elif c.name in ("setreuid", "setresuid") and len(nums) > 1 and nums[1] not in (None, -1):
                euid = nums[1]
            elif c.name in EXECS and c.ret is not None:
                path = exec_path(c)
                try:
                    st = os.stat(path) if path else None
                except OSError:
                    st = None
                if st and st.st_mode & stat.S_ISUID:
                    euid = st.st_uid
        p.euid_before = out
        done[pid] = out
        return out

    for pid in procs:
        simulate(pid)
    return procs


def exec_path(c: Call) -> str | None:
    if c.name == "execve":
        return string_arg(c.args[0]) if c.args else None
    if len(c.args) >= 2:  # execveat(dirfd, name, argv, envp, flags)
        name = string_arg(c.args[1]) or ""
        base = fd_path(c.args[0]) or ""
        return name if name.startswith("/") else os.path.join(base, name)
    return None


# ----------------------------------------------------------------------------- who can change a file
def _who(st: os.stat_result, is_dir: bool) -> str | None:
    """Who other than root can change this file or, for a directory, replace what it holds."""
    if st.st_uid != 0:
        return f"belongs to uid {st.st_uid}"
    sticky = is_dir and st.st_mode & stat.S_ISVTX
    if st.st_mode & stat.S_IWOTH and not sticky:
        return f"is writable by everyone (mode {stat.S_IMODE(st.st_mode):o})"
    if st.st_mode & stat.S_IWGRP and st.st_gid != 0 and not sticky:
        return f"is writable by group {st.st_gid} (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def path_problems(path: str, depth: int = 0) -> list[str]:
    """Why a user other than root could change what ``path`` names (every component, links
    followed as the kernel follows them), or []."""
    if depth > 20:
        return [f"{path}: too many links"]
    problems: list[str] = []
    current = "/"
    parts_ = [p for p in path.split("/") if p and p != "."]
    for i, name in enumerate(parts_):
        if name == "..":
            current = os.path.dirname(current) or "/"
            continue
        here = os.path.join(current, name)
        try:
            st = os.lstat(here)
        except OSError:
            return problems  # gone since: nothing more to check (its directories were checked)
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(here)
            target = target if target.startswith("/") else os.path.join(current, target)
            rest = "/".join(parts_[i + 1:])
            return problems + path_problems(os.path.join(target, rest) if rest else target, depth + 1)
        why = _who(st, stat.S_ISDIR(st.st_mode))
        if why:
            problems.append(f"{here} {why}")
        current = here
    return problems


def shebang(path: str) -> str | None:
    try:
        with open(path, "rb") as fh:
            head = fh.read(256)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    words = head[2:].split(b"\n", 1)[0].split()
    return words[0].decode("utf-8", "surrogateescape") if words else None


def venv_of(path: str) -> Path | None:
    """The virtual environment whose interpreter ``path`` is (``VENV/bin/python*``), or None."""
    p = Path(os.path.abspath(path))
    if p.parent.name == "bin" and (p.parent.parent / "pyvenv.cfg").exists():
        return p.parent.parent
    return None


def venv_problems(venv: Path) -> list[str]:
    """What a user other than root could change in what an interpreter of ``venv`` loads at start."""
    problems = path_problems(str(venv / "pyvenv.cfg"))
    for sp in sorted(venv.glob("lib*/python*/site-packages")):
        problems += path_problems(str(sp))
        try:
            entries = sorted(os.scandir(sp), key=lambda e: e.name)
        except OSError:
            continue
        changeable = []
        for e in entries:  # a .pth runs at start; a package there is imported
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            why = _who(st, e.is_dir(follow_symlinks=False))
            if why:
                changeable.append(f"{e.path} {why}")
        pth = [c for c in changeable if ".pth " in c]
        rest = [c for c in changeable if ".pth " not in c]
        problems += pth + rest[:3] + ([f"and {len(rest) - 3} more entries of {sp}"] if len(rest) > 3 else [])
    return problems


def exec_problems(path: str) -> list[str]:
    problems = path_problems(path)
    interp = shebang(path)
    if interp:
        problems += [f"the interpreter of {path}: {p}" for p in path_problems(interp)]
    for exe in (path, interp):
        venv = venv_of(exe) if exe else None
        if venv:
            problems += [f"the environment of {exe}: {p}" for p in venv_problems(venv)]
    return list(dict.fromkeys(problems))


_controlled: dict[str, str | None] = {}


def controlled(directory: str) -> str | None:
    """Who other than root can add, remove or replace names in ``directory`` (None: only root)."""
    if directory not in _controlled:
        try:
            st = os.stat(directory)
            _controlled[directory] = _who(st, True) if stat.S_ISDIR(st.st_mode) else None
        except OSError:
            _controlled[directory] = None
    return _controlled[directory]


def _flags(arg: str) -> set[str]:
    return set(re.findall(r"[A-Z][A-Z_0-9]+", arg))


def open_problems(c: Call) -> tuple[str | None, list[str]]:
    """(the path opened, why the open could be redirected by another user)."""
    if c.name in ("openat", "openat2"):
        if len(c.args) < 3:
            return None, []
        base, name, flags = fd_path(c.args[0]) or "/", string_arg(c.args[1]), _flags(c.args[2])
    else:  # open(path, flags), creat(path, mode)
        if not c.args:
            return None, []
        base, name = "/", string_arg(c.args[0])
        flags = _flags(c.args[1]) if c.name == "open" and len(c.args) > 1 else {"O_CREAT", "O_TRUNC"}
        if name and not name.startswith("/"):
            return name, []  # the current directory is unknown here: open and creat are not used by Python
    if name is None:
        return None, []
    full = os.path.normpath(os.path.join(base, name))
    if full.startswith(IGNORED_TREES) or full in ("/proc", "/sys", "/dev"):
        return full, []
    no_links = "RESOLVE_NO_SYMLINKS" in flags
    safe_last = "O_NOFOLLOW" in flags or {"O_CREAT", "O_EXCL"} <= flags or no_links
    names = [p for p in name.split("/") if p and p != "."]
    current = base if not name.startswith("/") else "/"
    problems = []
    for i, part in enumerate(names):
        if part == "..":
            current = os.path.dirname(current) or "/"
            continue
        who = controlled(current)
        if who:
            last = i == len(names) - 1
            if not last and not no_links:
                problems.append(f"looks up {part!r} in {current}, which {who}, and follows it if it is a link "
                                "(only the last name of a path can refuse a link: walk with directory descriptors)")
                break
            if last and not safe_last:
                problems.append(f"opens {part!r} in {current}, which {who}, without O_NOFOLLOW")
        current = os.path.realpath(os.path.join(current, part))
    return full, problems


# ----------------------------------------------------------------------------- the audit of one run
@dataclass
class Violation:
    run: str
    pid: int
    what: str  # exec | open
    path: str
    reasons: list[str]
    chain: str  # the programs from the command down to this process
    count: int = 1  # how many calls of this kind (the path is the first one's)

    def __str__(self) -> str:
        times = f" (and {self.count - 1} more like it)" if self.count > 1 else ""
        return f"[{self.run}] pid {self.pid} {self.what} {self.path}{times}\n      via {self.chain}\n" + \
            "".join(f"      - {r}\n" for r in self.reasons)


@dataclass
class RunReport:
    label: str
    argv: list[str]
    returncode: int
    seconds: float
    processes: int = 0
    root_processes: int = 0
    root_execs: Counter = field(default_factory=Counter)  # program -> count
    user_execs: Counter = field(default_factory=Counter)  # "user: program" -> count
    root_opens_in_user_dirs: Counter = field(default_factory=Counter)  # path -> count (all flagged or not)
    violations: list[Violation] = field(default_factory=list)
    note: str = ""  # what a command that had to be killed was doing

    def summary(self) -> str:
        head = (f"{self.label}: exit {self.returncode} in {self.seconds:.1f}s; {self.processes} processes, "
                f"{self.root_processes} as root; {sum(self.root_execs.values())} execs by root "
                f"({', '.join(f'{k} x{v}' for k, v in sorted(self.root_execs.items()))}); "
                f"{sum(self.user_execs.values())} by other users; {len(self.violations)} violations")
        return head + (f"\n  {self.note}" if self.note else "") + "".join(f"\n  {v}" for v in self.violations)


def _program(path: str) -> str:
    return path if "/" not in path else ("/".join(Path(path).parts[-3:]) if venv_of(path) else os.path.basename(path))


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def analyse(label: str, argv: list[str], returncode: int, seconds: float, text: str) -> RunReport:
    calls = parse(text)
    procs = processes(calls)
    report = RunReport(label, argv, returncode, seconds, processes=len(procs))
    names: dict[int, str] = {}

    def chain(pid: int) -> str:
        seen, out = set(), []
        while pid in procs and pid not in seen:
            seen.add(pid)
            if pid in names:
                out.append(names[pid])
            pid = procs[pid].parent[0] if procs[pid].parent else -1
        deduped = [n for i, n in enumerate(out) if i == 0 or out[i - 1] != n]
        return " < ".join(deduped) or "?"

    exec_cache: dict[str, list[str]] = {}
    for p in procs.values():
        if any(e == 0 for e in p.euid_before):
            report.root_processes += 1
        for c, euid in zip(p.calls, p.euid_before):
            if c.name in EXECS and c.ok and c.ret is not None:
                path = exec_path(c) or "?"
                args = string_list(c.args[1] if c.name == "execve" else c.args[2])
                names[p.pid] = " ".join([_program(path), *args[1:3]])[:120]
                if euid != 0:
                    report.user_execs[f"{_user(euid)}: {_program(path)}"] += 1
                    continue
                report.root_execs[_program(path)] += 1
                if path not in exec_cache:
                    exec_cache[path] = exec_problems(path) if path.startswith("/") else \
                        [f"a relative path {path!r}: the directory it is found in is unknown"]
                if exec_cache[path]:
                    report.violations.append(Violation(label, p.pid, "exec", " ".join([path, *args[1:6]])[:300],
                                                       exec_cache[path], chain(p.pid)))
            elif c.name in OPENS and euid == 0 and c.ok:
                full, problems = open_problems(c)
                if full and any(controlled(str(d)) for d in Path(full).parents if str(d) != "/"):
                    report.root_opens_in_user_dirs[full] += 1
                if problems:
                    flags = c.args[2] if c.name in ("openat", "openat2") else c.args[1] if len(c.args) > 1 else ""
                    report.violations.append(Violation(label, p.pid, "open", f"{full} ({flags})", problems,
                                                       chain(p.pid)))
    # one violation per code path: the same kind of open (every METADATA of an environment, say) by one
    # program is one violation, counted, with the first path as its example
    unique: dict[tuple, Violation] = {}
    for v in report.violations:
        key = (v.what, pattern(v.path), tuple(pattern(r) for r in v.reasons), v.chain.split(" < ")[0])
        if key in unique:
            unique[key].count += 1
        else:
            unique[key] = v
    report.violations = list(unique.values())
    return report


def pattern(text: str) -> str:
    """A path with what varies between the files one code path reads (a distribution's name and version, a
    number) replaced by *."""
    text = re.sub(r"[^/\s]+\.(dist-info|egg-info)", r"*.\1", text)
    return re.sub(r"\d+", "N", text)


# ----------------------------------------------------------------------------- the audit of many runs
class Audit:
    """Runs commands under strace, keeps each run's trace and report in ``workdir``.

    A command may leave a daemon behind (``omero web start`` starts gunicorn): strace follows it and
    lives as long as it does, so a run ends when the command itself has exited (its exit line in the
    trace), not when strace does; strace is never detached from what is left (with ``--seccomp-bpf`` a
    detached process would see its traced calls fail), it ends with them."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.runs: list[RunReport] = []
        self.tracers: list[subprocess.Popen] = []

    def run(self, label: str, argv: list[str], *, env: dict[str, str], cwd: str | Path,
            timeout: float = 600) -> tuple[subprocess.CompletedProcess, RunReport]:
        n = len(self.runs) + 1
        stem = self.workdir / f"strace-{n:02d}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', label).strip('-')[:60]}"
        log, out, err = (Path(f"{stem}.{ext}") for ext in ("log", "out", "err"))
        _controlled.clear()
        start = time.monotonic()
        with open(out, "wb") as fo, open(err, "wb") as fe:
            tracer = subprocess.Popen([*strace_argv(log), *argv], env=env, cwd=str(cwd), stdout=fo, stderr=fe,
                                      stdin=subprocess.DEVNULL)
        self.tracers.append(tracer)
        note: list[str] = []
        returncode = _wait_for_command(tracer, log, timeout, note)
        seconds = time.monotonic() - start
        report = analyse(label, argv, returncode, seconds, log.read_text(errors="replace"))
        report.note = "\n  ".join(note)
        self.runs.append(report)
        (self.workdir / "strace-audit-report.txt").write_text(self.text())
        proc = subprocess.CompletedProcess(argv, returncode, out.read_text(errors="replace"),
                                           err.read_text(errors="replace"))
        return proc, report

    def close(self, timeout: float = 30) -> None:
        """Wait for the tracers still following a daemon (the tests stop their deployments first)."""
        deadline = time.monotonic() + timeout
        for tracer in self.tracers:
            try:
                tracer.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                tracer.kill()
                tracer.wait()

    def violations(self) -> list[Violation]:
        return [v for r in self.runs for v in r.violations]

    def text(self) -> str:
        total: Counter = Counter()
        for r in self.runs:
            total.update(r.root_execs)
        lines = [f"strace audit of {len(self.runs)} runs: {sum(total.values())} execs by root "
                 f"({len(total)} programs), {len(self.violations())} violations", "",
                 "execs by root, by program:"]
        lines += [f"  {n:5d}  {prog}" for prog, n in total.most_common()]
        lines += ["", "runs:"] + [r.summary() for r in self.runs]
        return "\n".join(lines) + "\n"


_EXIT = re.compile(r"^(\d+)\s+\+\+\+ (?:exited with (\d+)|killed by (SIG\w+))")


def _stuck(pid: int) -> str:
    """What a process (and its children) is waiting in, for the report of a run that had to be killed."""
    out = []
    for p in [pid, *_children(pid)]:
        try:
            status = Path(f"/proc/{p}/status").read_text()
            wchan = Path(f"/proc/{p}/wchan").read_text()
            cmd = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:150]
        except OSError:
            continue
        state = re.search(r"^State:\s*(.*)$", status, re.M)
        out.append(f"pid {p} ({cmd}): {state.group(1) if state else '?'}, waiting in {wchan or '-'}")
    return "; ".join(out)


def _children(pid: int) -> list[int]:
    try:
        kids = [int(k) for k in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    return [k for kid in kids for k in (kid, *_children(kid))]


def _wait_for_command(tracer: subprocess.Popen, log: Path, timeout: float, note: list[str]) -> int:
    """The exit status of the command strace runs (its first process), once it has exited; on a timeout
    the command is killed and -9 returned."""
    deadline = time.monotonic() + timeout
    first: int | None = None
    offset = 0
    partial = b""
    killed = False
    while True:
        try:
            with open(log, "rb") as fh:
                fh.seek(offset)
                chunk = fh.read()
        except FileNotFoundError:
            chunk = b""
        offset += len(chunk)
        lines = (partial + chunk).split(b"\n")
        partial = lines.pop()
        for raw in lines:
            line = raw.decode("ascii", "replace")
            if first is None and (m := re.match(r"^(\d+)\s", line)):  # strace pads the pid to 5 columns
                first = int(m.group(1))
            m = _EXIT.match(line)
            if m and int(m.group(1)) == first:
                return int(m.group(2)) if m.group(2) is not None else -signal.Signals[m.group(3)].value
        if tracer.poll() is not None and not chunk:
            return tracer.returncode
        if time.monotonic() > deadline:
            if killed:
                return -signal.SIGKILL.value
            note.append(f"killed after {timeout:.0f}s: " + (_stuck(first) if first else "nothing started"))
            if first is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(first, signal.SIGKILL)
            else:
                tracer.kill()
            killed = True
            deadline = time.monotonic() + 30  # for the kill to show in the trace
        time.sleep(0.05)


if __name__ == "__main__":  # python -m tests.strace_audit LOG...: the audit of traces kept from earlier runs
    import sys

    for name in sys.argv[1:]:
        print(analyse(Path(name).name, [], 0, 0.0, Path(name).read_text(errors="replace")).summary())
