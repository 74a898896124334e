"""The front door checked after applying: the public URL requested from the web server itself, as a browser would."""

from __future__ import annotations

import time

from omerowizard.plan.plan import Door
from omerowizard.system import network


def check(d: Door, timeout: float = 30) -> tuple[bool, list[str]]:
    """Request the login page and a static file through the door, until both answer 200 or time runs out
    (a reloaded server's old workers may answer for a moment). Returns (ok, one line per request)."""
    deadline = time.monotonic() + timeout
    while True:
        lines, ok = [], True
        for what, path in (("the login page", d.login_path), ("a static file", d.static_path)):
            status, detail = network.request_loopback(d.scheme, d.server_name, d.port, path)
            lines.append(f"{what} {d.url(path)} through {d.via} (127.0.0.1:{d.port}, Host {d.server_name}): "
                         f"{detail}")
            ok = ok and status == 200
        if ok or time.monotonic() > deadline:
            return ok, lines
        time.sleep(0.5)
