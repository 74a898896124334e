"""The web servers' own checks and reloads.

A file is proved by the real server: ``nginx -t`` / ``apache2 -t`` on a small wrapper that
includes just that file (so a file anywhere is checked), and, when the file is part of the
system server's configuration, the server's check of its whole configuration. A running
system server is reloaded only after every check passed.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from omerowizard.model.host import Front
from omerowizard.system import hostlock, platforms, processes, safefs

SBIN = ("/usr/sbin", "/sbin", "/usr/local/sbin")


def which(cmd: str) -> str | None:
    found = shutil.which(cmd)
    if found:
        return found
    return next((f"{d}/{cmd}" for d in SBIN if os.access(f"{d}/{cmd}", os.X_OK)), None)


@dataclass
class CheckResult:
    ok: bool
    what: str  # the command line that ran, or why nothing ran
    output: str = ""
    ran: bool = True


def _run(argv: list[str], what: str, user: str | None = None) -> CheckResult:
    """Run a web server's command (as root, its own binary; or as ``user``); its output, both streams."""
    proc = processes.run(argv, user=user, separate_errors=True)
    return CheckResult(proc.returncode == 0, what, (proc.output + proc.errors).strip())


def nginx_wrapper(site: str, tmp: Path, mime_types: str = "/etc/nginx/mime.types") -> str:
    mime = f"    include {mime_types};\n" if Path(mime_types).exists() else ""
    return (f"pid {tmp}/nginx.pid;\nerror_log {tmp}/error.log;\nevents {{ worker_connections 64; }}\n"
            f"http {{\n{mime}    include {site};\n}}\n")


def check_nginx(site: str, system: bool) -> list[CheckResult]:
    nginx = which("nginx")
    if nginx is None:
        return [CheckResult(True, "nginx is not installed here: the file was not checked", ran=False)]
    out = []
    with tempfile.TemporaryDirectory(prefix="omerowizard-check-") as tmp:
        wrapper = Path(tmp) / "nginx.conf"
        wrapper.write_text(nginx_wrapper(site, Path(tmp)))
        out.append(_run([nginx, "-t", "-q", "-c", str(wrapper), "-e", f"{tmp}/error.log"], f"nginx -t with {site}"))
        out[0].output = out[0].output.replace(str(wrapper), "(a check wrapper that includes it)")
    if system and out[0].ok and Path("/etc/nginx/nginx.conf").exists():
        out.append(_run([nginx, "-t", "-q"], "nginx -t"))
    return out


def apache_wrapper(site: str, tmp: Path, modules: tuple[str, ...], dist: str | None = None) -> str:
    layout = platforms.server_layout("apache", dist)
    mods = ["mpm_event", "authz_core", "mime", *modules]
    lines = [f'ServerRoot "{layout.conf_root}"', f"PidFile {tmp}/httpd.pid", f"ErrorLog {tmp}/error.log",
             "ServerName localhost"]
    for mod in dict.fromkeys(mods):
        lines.append(f"LoadModule {mod}_module {layout.modules_dir}/mod_{mod}.so")
    if Path("/etc/mime.types").exists():
        lines.append("TypesConfig /etc/mime.types")
    lines.append(f"Include {site}")
    return "\n".join(lines) + "\n"


def apache_binary() -> str | None:
    return which("apache2") or which("httpd")


def check_apache(site: str, system: bool, modules: tuple[str, ...]) -> list[CheckResult]:
    binary = apache_binary()
    if binary is None:
        return [CheckResult(True, "Apache httpd is not installed here: the file was not checked", ran=False)]
    out = []
    with tempfile.TemporaryDirectory(prefix="omerowizard-check-") as tmp:
        wrapper = Path(tmp) / "httpd.conf"
        wrapper.write_text(apache_wrapper(site, Path(tmp), modules))
        out.append(_run([binary, "-t", "-f", str(wrapper)], f"{Path(binary).name} -t with {site}"))
        out[0].output = out[0].output.replace(str(wrapper), "(a check wrapper that includes it)")
    ctl = which("apache2ctl") or which("apachectl")
    if system and out[0].ok and ctl:
        out.append(_run([ctl, "-t"], f"{Path(ctl).name} -t"))
    return out


def check_nginx_development(path: str, user: str, log_dir: str) -> list[CheckResult]:
    nginx = which("nginx")
    if nginx is None:
        return [CheckResult(True, "nginx is not installed here: the file was not checked", ran=False)]
    argv = [nginx, "-t", "-q", "-c", path, "-e", f"{log_dir}/nginx_error.log"]
    return [_run(argv, f"nginx -t -c {path} (as {user})", user=user)]


def check_systemd(path: str) -> list[CheckResult]:
    analyze = which("systemd-analyze")
    if analyze is None or not Path("/run/systemd/system").exists():
        return [CheckResult(True, "systemd does not run here: the unit was not checked", ran=False)]
    return [_run([analyze, "verify", path], f"systemd-analyze verify {path}")]


def running(pidfiles: tuple[str, ...]) -> bool:
    """Whether a process named in one of these pid files runs. A pid file may be below OMERODIR (the standalone
    nginx's), which the OMERO.web user owns: read through safefs (no link followed, a FIFO not waited for)."""
    for pidfile in pidfiles:
        try:
            pid = int((safefs.read_bytes(pidfile, limit=64) or b"").decode("ascii", "replace").strip())
            if pid <= 0:
                continue
            os.kill(pid, 0)
            return True
        except (OSError, ValueError, safefs.UnsafePath):
            continue
    return False


def reload_system(kind: str) -> CheckResult | None:
    """Reload the system nginx or Apache when it runs; None when it does not run. Under the host-wide lock: every
    deployment's site is in that server, and another run's files are only reloaded once they passed their check."""
    layout = platforms.server_layout(kind)
    with hostlock.held(f"the reload of the system {kind}"):
        if not running(layout.pidfiles):
            return None
        systemctl = which("systemctl")
        if systemctl and Path("/run/systemd/system").exists():
            return _run([systemctl, "reload", "nginx" if kind == "nginx" else layout.binary], f"systemctl reload {kind}")
        if kind == "nginx":
            return _run([which("nginx") or "nginx", "-s", "reload"], "nginx -s reload")
        ctl = which(layout.ctl) or layout.ctl
        return _run([ctl, "graceful"], f"{layout.ctl} graceful")


def reload_development(path: str, user: str, log_dir: str, run_dir: str) -> CheckResult | None:
    if not running((f"{run_dir}/nginx.pid",)):
        return None
    argv = [which("nginx") or "nginx", "-c", path, "-e", f"{log_dir}/nginx_error.log", "-s", "reload"]
    return _run(argv, f"nginx -c {path} -s reload (as {user})", user=user)


def enable_apache_modules(modules: tuple[str, ...]) -> CheckResult | None:
    """Debian: a2enmod the modules the site needs (what an administrator does before a2ensite)."""
    a2enmod = which("a2enmod")
    if a2enmod is None or os.geteuid() != 0:
        return None
    return _run([a2enmod, "-q", *modules], f"a2enmod {' '.join(modules)}")


def stop_argv(kind: str) -> list[str]:
    layout = platforms.server_layout(kind)
    systemctl = which("systemctl")
    if systemctl and Path("/run/systemd/system").exists():
        return [systemctl, "stop", layout.binary]
    if kind == "nginx":
        return [which("nginx") or "nginx", "-s", "stop"]
    return [which(layout.ctl) or layout.ctl, "stop"]


def server_running(kind: str) -> bool:
    """Whether the system nginx or Apache runs (its pid file names a live process)."""
    return running(platforms.server_layout(kind).pidfiles)



# ---------------------------------------------------------------------------- the server that serves a site
NGINX_CONF = "/etc/nginx/nginx.conf"
_NGINX_INCLUDE = re.compile(r"(?m)^[ \t]*include[ \t]+['\"]?([^;'\"#\s]+)['\"]?[ \t]*;")
_APACHE_INCLUDE = re.compile(r"(?mi)^[ \t]*Include(?:Optional)?[ \t]+\"?([^\"\s]+)\"?")
_APACHE_ROOT = re.compile(r"(?mi)^[ \t]*ServerRoot[ \t]+\"?([^\"\s]+)\"?")


def _cmdline(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as fh:
        return [a.decode("utf-8", "replace") for a in fh.read().split(b"\0") if a]


def _ppid_uid(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/status", "rb") as fh:
        text = fh.read().decode("ascii", "replace")
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return int(fields["PPid"].split()[0]), int(fields["Uid"].split()[1])


def _read(path: str) -> str:
    """A configuration file's text (a link resolved first, then read without following one); "" when unreadable."""
    try:
        data = safefs.read_bytes(os.path.realpath(path), limit=4 * 1024 * 1024)
    except (OSError, safefs.UnsafePath):
        return ""
    return (data or b"").decode("utf-8", "replace")


def _includes(conf: str, pattern: re.Pattern, base: str, depth: int = 0, seen: set[str] | None = None) -> set[str]:
    """Every file a configuration includes, links as named (a sites-enabled link) and resolved."""
    seen = seen if seen is not None else set()
    real = os.path.realpath(conf)
    if depth > 8 or real in seen:
        return set()
    seen.add(real)
    out = {conf, real}
    for raw in pattern.findall(_read(conf)):
        path = raw if raw.startswith("/") else os.path.join(base, raw)
        matches = glob.glob(path) if any(c in path for c in "*?[") else [path]
        for m in sorted(matches):
            if os.path.isdir(m):
                m_files = sorted(os.path.join(m, n) for n in os.listdir(m))
            else:
                m_files = [m]
            for f in m_files:
                if os.path.isfile(f):
                    out |= _includes(f, pattern, base, depth + 1, seen)
    return out


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def serving(kind: str, site: str, link: str | None = None) -> Front | None:
    """The running nginx (master) or Apache httpd (parent) whose configuration includes ``site`` (or its
    ``link`` in sites-enabled): found in /proc, its main configuration and every file it includes read."""
    names = {site, os.path.realpath(site)} | ({link} if link else set())
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            argv = _cmdline(pid)
            if not argv:
                continue
            if kind == "nginx":
                if not argv[0].startswith("nginx: master process"):
                    continue
                words = " ".join(argv).split()[3:]  # nginx rewrites its argv into one line
                conf = _opt(words, "-c") or NGINX_CONF
                prefix = _opt(words, "-p")
                if not conf.startswith("/"):
                    conf = os.path.join(prefix or "/usr/share/nginx", conf)
                base = os.path.dirname(conf)
                args = tuple(a for o in ("-c", "-p", "-g") if (v := _opt(words, o)) for a in (o, v))
                included = _includes(conf, _NGINX_INCLUDE, base)
                system = conf == NGINX_CONF and prefix is None
            else:
                if os.path.basename(os.readlink(f"/proc/{pid}/exe")) not in {"apache2", "httpd"}:
                    continue
                ppid, _ = _ppid_uid(pid)
                try:
                    if os.path.basename(os.readlink(f"/proc/{ppid}/exe")) in {"apache2", "httpd"}:
                        continue  # a child; the parent is the one to signal
                except OSError:
                    pass
                layout = platforms.server_layout("apache")
                root = _opt(argv, "-d") or layout.conf_root
                conf = _opt(argv, "-f") or os.path.join(layout.conf_root, "apache2.conf" if
                                                        layout.conf_root.endswith("apache2") else "conf/httpd.conf")
                if not conf.startswith("/"):
                    conf = os.path.join(root, conf)
                found_root = _APACHE_ROOT.search(_read(conf))
                base = found_root.group(1) if found_root else root
                args = tuple(a for o in ("-f", "-d") if (v := _opt(argv, o)) for a in (o, v))
                included = _includes(conf, _APACHE_INCLUDE, base)
                system = _opt(argv, "-f") is None
            _, uid = _ppid_uid(pid)
        except (OSError, ValueError, KeyError, IndexError):
            continue
        if included & names:
            return Front(kind, site, pid, conf, _user_name(uid), system, args)
    return None


def _opt(words: list[str], name: str) -> str | None:
    for a, b in zip(words, words[1:]):
        if a == name:
            return b
    return None


def children_of(pid: int) -> set[int]:
    out = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if _ppid_uid(int(entry.name))[0] == pid:
                    out.add(int(entry.name))
            except (OSError, ValueError, KeyError, IndexError):
                continue
    return out


def check_front(front: Front) -> CheckResult:
    """The server's own check of its whole configuration, as the user that runs it (a standalone nginx of the
    OMERO.web user is never checked as root: its configuration is that user's)."""
    if front.system:
        results = check_nginx(front.site, True) if front.kind == "nginx" else \
            check_apache(front.site, True, ())
        bad = next((r for r in results if not r.ok), None)
        return bad or results[-1]
    binary = which("nginx") if front.kind == "nginx" else apache_binary()
    if binary is None:
        return CheckResult(False, f"{front.kind} is not installed")
    argv = [binary, "-t", *front.args] if front.kind == "nginx" else [binary, "-t", *front.args]
    user = None if front.owner == "root" else front.owner
    if user is None and processes.path_problem(front.conf):
        return CheckResult(False, f"{front.conf}: {processes.path_problem(front.conf)}; root does not check it")
    return _run(argv, f"{' '.join([os.path.basename(binary), '-t', *front.args])}", user=user)


def reload_front(front: Front, timeout: float = 30) -> CheckResult:
    """A graceful reload of the server that serves the site (after ``check_front`` passed), then wait until its
    workers of before the reload have finished their requests and exited: from then on no request reaches
    the upstream it had before."""
    before = children_of(front.pid)
    if front.system:
        result = reload_system(front.kind)
        if result is None:
            return CheckResult(False, f"the system {front.kind} no longer runs")
    else:
        try:
            pidfd = os.pidfd_open(front.pid)
        except OSError as exc:
            return CheckResult(False, f"the {front.kind} of pid {front.pid} no longer runs: {exc.strerror}")
        try:
            if _cmdline_ok(front):
                signal.pidfd_send_signal(pidfd, signal.SIGHUP if front.kind == "nginx" else signal.SIGUSR1)
            else:
                return CheckResult(False, f"pid {front.pid} is no longer the {front.kind} that serves {front.site}")
        finally:
            os.close(pidfd)
        result = CheckResult(True, f"graceful reload of {front.via} ({'HUP' if front.kind == 'nginx' else 'USR1'})")
    if not result.ok:
        return result
    deadline = time.monotonic() + timeout
    while children_of(front.pid) & before and time.monotonic() < deadline:
        time.sleep(0.05)
    left = children_of(front.pid) & before
    if left:
        result.output = f"{len(left)} of its old workers still finish requests after {timeout:.0f}s"
    return result


def _cmdline_ok(front: Front) -> bool:
    try:
        argv = _cmdline(front.pid)
    except OSError:
        return False
    if front.kind == "nginx":
        return bool(argv) and argv[0].startswith("nginx: master process")
    return bool(argv) and os.path.basename(os.readlink(f"/proc/{front.pid}/exe")) in {"apache2", "httpd"}
