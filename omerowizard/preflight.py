"""Checks before anything changes. Each failure says what is wrong and how to fix it; a failing
preflight changes nothing. Every check is cheap: no omero process is started."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from omerowizard.errors import PreflightError
from omerowizard.omero import as_user_argv, mask_secrets, user_exists
from omerowizard.servercheck import which
from omerowizard.plan import Plan

SERVER_BINARIES = {"nginx": ["nginx"], "nginx-development": ["nginx"], "apache": ["apache2", "httpd"]}


@dataclass
class Check:
    name: str
    ok: bool
    message: str = ""


def _as_user_ok(user: str, argv: list[str]) -> bool:
    try:
        full = as_user_argv(user, argv, {"HOME": "/"})
    except PreflightError:
        return False
    return subprocess.run(full, capture_output=True, cwd="/").returncode == 0


def port_in_use(host: str, port: int) -> bool:
    if host in {"0.0.0.0", "::", ""}:
        host = "127.0.0.1"
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def ping_redis(url: str, timeout: float = 2.0) -> str | None:
    """None when Redis answers PING (after AUTH when the URL has a password), else the reason."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            f = s.makefile("rwb")
            if parts.password:
                args = [parts.username, unquote(parts.password)] if parts.username else [unquote(parts.password)]
                f.write(_resp(["AUTH", *args]))
                f.flush()
                reply = f.readline()
                if not reply.startswith(b"+OK"):
                    return "refused the password"
            f.write(_resp(["PING"]))
            f.flush()
            reply = f.readline()
            if reply.startswith(b"+PONG"):
                return None
            return f"answered {reply.decode(errors='replace').strip()[:80]!r} to PING"
    except OSError as exc:
        return f"cannot connect ({exc.strerror or exc})"


def _resp(args: list[str]) -> bytes:
    out = f"*{len(args)}\r\n".encode()
    for a in args:
        b = a.encode()
        out += f"${len(b)}\r\n".encode() + b + b"\r\n"
    return out


def ping_memcached(location: str, timeout: float = 2.0) -> str | None:
    host, _, port = location.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as s:
            s.sendall(b"version\r\n")
            reply = s.recv(128)
            return None if reply.startswith(b"VERSION") else f"answered {reply[:40]!r}"
    except OSError as exc:
        return f"cannot connect ({exc.strerror or exc})"


def check_session_store(plan: Plan) -> str | None:
    s = plan.answers.sessions
    if s.backend == "redis" and s.location:
        why = ping_redis(s.location)
        return f"Redis at {mask_secrets(s.location)} {why}" if why else None
    if s.backend == "memcached" and s.location:
        why = ping_memcached(s.location)
        return f"Memcached at {s.location} {why}" if why else None
    return None


def checks(plan: Plan) -> list[Check]:
    a, state = plan.answers, plan.state
    t = state.target
    out: list[Check] = [Check("files", False, why) for why in plan.refusals]
    needs_omero = bool(plan.config or plan.web)
    if needs_omero:
        if not user_exists(t.user):
            out.append(Check("user", False, f"the user {t.user!r} does not exist: run `omerowizard install-omero "
                                            f"--user {t.user}` or set omero.user"))
        elif not t.executable.exists():
            out.append(Check("omero", False, f"no omero at {t.executable}: run `omerowizard install-omero "
                                             f"--venv {t.venv}` or set omero.venv"))
        elif not _as_user_ok(t.user, [str(t.python), "-c", "import omero"]):
            out.append(Check("omero", False, f"{t.user} cannot run {t.executable} (its Python or omero package); "
                                             f"check permissions of {t.venv}"))
        else:
            out.append(Check("omero", True))
        if not t.omerodir.is_dir():
            out.append(Check("omerodir", False, f"OMERODIR {t.omerodir} does not exist: create it owned by {t.user} "
                                                f"(`omerowizard install-omero --omerodir {t.omerodir}`)"))
        elif user_exists(t.user) and not _as_user_ok(t.user, ["/usr/bin/test", "-w", str(t.omerodir)]):
            out.append(Check("omerodir", False, f"{t.user} cannot write OMERODIR {t.omerodir}: "
                                                f"chown -R {t.user} {t.omerodir}"))
        else:
            out.append(Check("omerodir", True))
    if plan.web and plan.web.action == "start" and not state.running:
        host, port = a.application_server.host, a.application_server.port
        if port_in_use(host, port):
            out.append(Check("port", False, f"port {port} on {host} is already in use by another program: "
                                            "stop it or choose another application_server.port"))
    if plan.web and plan.web.action == "reload":
        out.append(check_reload(t))
    if plan.web or plan.config:
        why = check_session_store(plan)
        if why:
            out.append(Check("sessions", False, f"{why}: start it, or fix sessions.location"))
    if plan.files and a.web_server.kind in SERVER_BINARIES and a.platform == "unix":
        names = SERVER_BINARIES[a.web_server.kind]
        if not any(which(n) for n in names):
            out.append(Check("web server", False, f"{' or '.join(names)} is not installed "
                                                  f"(e.g. apt-get install {names[0]})"))
    https = a.web_server.https
    if https and plan.files and a.platform == "unix":
        problem = check_certificate(https.certificate, https.key)
        if problem:
            out.append(Check("https", False, problem))
    return out


def check_reload(t) -> Check:
    """A graceful reload signals the gunicorn master of this deployment: verify it before changing anything."""
    from omerowizard import gunicorn

    try:
        gunicorn.find_master(t.omerodir, t.user).close()
    except gunicorn.ReloadError as exc:
        return Check("reload", False, f"{exc}; stop whatever runs there, or `omero web restart` as {t.user}")
    return Check("reload", True)


def check_certificate(cert: str, key: str) -> str | None:
    for label, path in (("certificate", cert), ("key", key)):
        if not os.path.isfile(path):
            return f"the HTTPS {label} {path} does not exist"
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        return f"the HTTPS certificate {cert} and key {key} do not match or cannot be read ({exc.reason or exc})"
    except OSError as exc:
        return f"cannot read the HTTPS certificate or key: {exc.strerror}"
    return None


def run(plan: Plan) -> None:
    failed = [c for c in checks(plan) if not c.ok]
    if failed:
        lines = "\n".join(f"  {c.name}: {c.message}" for c in failed)
        raise PreflightError(f"preflight failed; nothing was changed:\n{lines}")
