"""The web servers' own checks and reloads.

A file is proved by the real server: ``nginx -t`` / ``apache2 -t`` on a small wrapper that
includes just that file (so a file anywhere is checked), and, when the file is part of the
system server's configuration, the server's check of its whole configuration. A running
system server is reloaded only after every check passed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

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

