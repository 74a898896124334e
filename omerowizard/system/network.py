"""Talking to other programs over the network: is a port taken, does Redis or Memcached answer, does an
OMERO.server or a node accept a connection, what does an HTTP request get. No state, no files."""

from __future__ import annotations

import http.client
import socket
import ssl
import time
import urllib.error
import urllib.request
from urllib.parse import unquote, urlsplit


def port_in_use(host: str, port: int) -> bool:
    if host in {"0.0.0.0", "::", ""}:
        host = "127.0.0.1"
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def spare_port(host: str = "127.0.0.1", avoid: tuple[int, ...] = ()) -> int:
    """A port no program listens on at ``host`` now (the kernel's choice of a free one), not one of ``avoid``."""
    if host in {"0.0.0.0", "::", ""}:
        host = "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(20):
        with socket.socket(family) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in avoid and not port_in_use(host, port):
            return port
    raise OSError(f"no spare port found on {host}")


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


def reach(host: str, port: int, timeout: float = 3.0) -> str | None:
    """None when a TCP connection to the server opens within ``timeout`` (what OMERO.web's Ice client does
    first), else the reason."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except socket.timeout:
        return "no answer"
    except OSError as exc:
        return exc.strerror or str(exc)


def check_login_page(url: str, timeout: float = 60, proc=None) -> tuple[bool, str]:
    """Wait for ``url`` to answer 200 (``proc``: a started server, whose exit ends the wait)."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return True, "200"
                last = str(r.status)
        except urllib.error.HTTPError as e:
            last = f"HTTP {e.code}"
        except (urllib.error.URLError, OSError) as e:
            last = str(getattr(e, "reason", e))
        if proc is not None and proc.poll() is not None:
            return False, f"the server exited with status {proc.returncode}"
        time.sleep(0.5)
    return False, last


def answers_200(url: str) -> bool:
    """One request: does ``url`` answer 200?"""
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def http_status(url: str, timeout: float = 30) -> str | int:
    """The status of one GET of ``url``, redirects not followed (a reason when there is no answer)."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(url, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, OSError) as e:
        return str(getattr(e, "reason", e))


# ---------------------------------------------------------------------------- requesting it
class _Connection(http.client.HTTPConnection):
    """Connects to 127.0.0.1 whatever the host name: the Host header stays ``server_name``."""

    def connect(self) -> None:
        self.sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)


class _TLSConnection(http.client.HTTPSConnection):
    """Connects to 127.0.0.1, with ``server_name`` as the SNI name and Host header."""

    def connect(self) -> None:
        raw = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)  # type: ignore[attr-defined]


def request_loopback(scheme: str, server_name: str, port: int, path: str,
                     timeout: float = 10) -> tuple[int | None, str]:
    """(status, what came back) of GET ``path`` from this host's web server on ``port`` (127.0.0.1), with
    ``server_name`` as the Host header (and SNI name over HTTPS); status None when nothing answered."""
    if scheme == "https":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the certificate may be self-signed; the server is ours, on loopback
        conn: http.client.HTTPConnection = _TLSConnection(server_name, port, timeout=timeout, context=ctx)
    else:
        conn = _Connection(server_name, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"User-Agent": "omerowizard"})
        r = conn.getresponse()
        r.read(65536)
        where = r.getheader("Location")
        return r.status, f"{r.status} {r.reason}" + (f" (Location: {where})" if where else "")
    except (OSError, http.client.HTTPException) as exc:
        return None, f"no answer ({exc})"
    finally:
        conn.close()
