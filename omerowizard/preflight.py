"""Checks before anything changes. Each failure says what is wrong and how to fix it; a failing
preflight changes nothing. Every check is cheap: no omero process is started."""

from __future__ import annotations

import socket
import stat
from urllib.parse import unquote, urlsplit

from omerowizard import safefs
from omerowizard.errors import PreflightError
from omerowizard.features import FEATURES
from omerowizard.features.base import Check
from omerowizard.features.https import check_certificate  # noqa: F401 (re-exported)
from omerowizard import processes
from omerowizard.processes import user_exists
from omerowizard.plan import Plan

__all__ = ["Check", "checks", "run", "warnings", "failures"]


def _as_user_ok(user: str, argv: list[str]) -> bool:
    try:
        return processes.run(argv, user=user, env={"HOME": "/"}, separate_errors=True).returncode == 0
    except PreflightError:
        return False


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
    from omerowizard.features.sessions import check_session_store as check

    return check(plan)


def checks(plan: Plan) -> list[Check]:
    state = plan.state
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
    if plan.web:
        out.append(check_web_log(t))
    if plan.web and plan.web.action == "reload":
        out.append(check_reload(t))
    for feature in FEATURES:
        out += feature.preflight(plan)
    return out


def failures(checks_: list[Check]) -> list[Check]:
    """The checks that stop an apply."""
    return [c for c in checks_ if not c.ok and not c.warning]


def warnings(checks_: list[Check]) -> list[Check]:
    """The checks that fail without stopping an apply (an OMERO.server not reachable yet)."""
    return [c for c in checks_ if not c.ok and c.warning]


def check_web_log(t) -> Check:
    """OMERO.web appends to OMERODIR/var/log/OMEROweb.log, which its user owns: a FIFO there blocks every
    OMERO.web process that opens it (the start, new workers, the restart of a restore) and a device or socket
    fails it. Looked at with lstat through safefs (a link is neither followed nor refused: OMERO.web follows
    it as its user, and root never reads through it)."""
    try:
        st = safefs.lstat(str(t.web_log))
    except (OSError, safefs.UnsafePath):
        return Check("web log", True)  # e.g. var/log is a link: root does not look through it, OMERO.web does
    if st is None or stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
        return Check("web log", True)
    return Check("web log", False, f"{t.web_log} is not a regular file (a FIFO, a socket, a device or a directory): "
                                   f"OMERO.web would hang or fail writing its log there; remove it as {t.user} "
                                   "(OMERO.web creates the file again)")


def check_reload(t) -> Check:
    """A graceful reload signals the gunicorn master of this deployment: verify it before changing anything."""
    from omerowizard import gunicorn

    try:
        gunicorn.find_master(t.omerodir, t.user).close()
    except gunicorn.ReloadError as exc:
        return Check("reload", False, f"{exc}; stop whatever runs there, or `omero web restart` as {t.user}")
    return Check("reload", True)


def run(plan: Plan) -> None:
    failed = failures(checks(plan))
    if failed:
        lines = "\n".join(f"  {c.name}: {c.message}" for c in failed)
        raise PreflightError(f"preflight failed; nothing was changed:\n{lines}")
