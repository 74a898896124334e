"""Conditions and computed defaults that several features' questions share."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any

from omerowizard.model import validators as v

Flat = Mapping[str, Any]

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "localhost6", "localhost6.localdomain6", "ip6-localhost",
                  "ip6-loopback"}


def host_name() -> str:
    """This host's name as browsers would use it: its FQDN, else its host name; ``localhost`` only when the
    host has no other name (a host whose name resolves to 127.0.0.1 gets ``localhost`` from getfqdn)."""
    for name in (socket.getfqdn(), socket.gethostname()):
        name = (name or "").strip().rstrip(".").lower()
        if name and name not in LOOPBACK_NAMES and v.hostname(name) is None:
            return name
    return "localhost"


def unix(a: Flat) -> bool:
    return a.get("platform", "unix") == "unix"


def server_kind(a: Flat) -> str:
    return a.get("web_server.kind") or ("iis" if a.get("platform") == "windows" else "nginx")


def front_end(a: Flat) -> bool:
    """A web server on this host fronts OMERO.web (``none``: the front end is on another host)."""
    return server_kind(a) not in {"development", "none"}


def system_server(a: Flat) -> bool:
    return unix(a) and server_kind(a) in {"nginx", "apache"}


def gunicorn(a: Flat) -> bool:
    return server_kind(a) != "development"
