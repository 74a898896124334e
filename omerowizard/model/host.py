"""Facts about the host and the files a plan looks at, as the probe (``omerowizard.state``) measured them.

Typed and frozen: the planner and the features read these and nothing else, so a plan is a pure function of
the answers and what was measured. Every fact has the value of a plain host by default (Debian, root, IPv6,
no server running, no file present), so a test names only the facts it is about.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

EMPTY: Mapping = MappingProxyType({})


def frozen_map(data: Mapping | None = None) -> Mapping:
    return MappingProxyType(dict(data or {}))


@dataclass(frozen=True)
class FileFact:
    """One path a plan writes, removes or compares, as it is now."""

    content: str | None = None  # the text (None: no such file)
    problem: str | None = None  # why it cannot be used: a directory, a link another user planted...
    writable: bool = True  # this process may write it (else the plan stages it for an administrator)
    sha256: str | None = None  # of the content, for files an earlier run recorded


@dataclass(frozen=True)
class Front:
    """A running web server (nginx or Apache httpd) whose configuration includes this deployment's site file: the
    server omerowizard switches between two OMERO.web masters (blue/green) with a graceful reload."""

    kind: str  # nginx | apache
    site: str  # the site file it includes
    pid: int  # its master (nginx) or parent (Apache) process
    conf: str  # the main configuration file it was started with
    owner: str  # the user running it (root, or the OMERO.web user for a standalone nginx)
    system: bool  # the system server: checked whole and reloaded the distribution's way
    args: tuple[str, ...] = ()  # the options it was started with (-c, -p, -g, -f, -d), passed to its check

    @property
    def via(self) -> str:
        what = "nginx" if self.kind == "nginx" else "Apache httpd"
        return what if self.system else f"the {what} of pid {self.pid} ({self.conf})"


@dataclass(frozen=True)
class Host:
    """The machine the wizard runs on, as far as a plan depends on it."""

    distribution: str = "debian"  # debian | rhel | other (/etc/os-release)
    ipv6: bool = True  # the host has IPv6 (a server told to listen on [::] fails to start without it)
    root: bool = True  # the wizard runs as root
    systemd: bool = False  # systemd runs (/run/systemd/system)
    binaries: Mapping[str, str] = field(default_factory=frozen_map)  # name -> absolute path of the programs found (nginx, apache2ctl, ...)
    servers_running: frozenset[str] = frozenset()  # the system web servers that run: nginx | apache
    development_nginx_running: bool = False  # the standalone nginx of this deployment runs
    links: Mapping[str, str | None] = field(default_factory=frozen_map)  # a link the plan looks at -> its target (None: not a link)
    default_site_holders: Mapping[tuple[str, int], tuple[str, ...]] = field(default_factory=frozen_map)  # (server, port) -> other default sites

    def which(self, name: str) -> str | None:
        return self.binaries.get(name)
