"""Where the files go, per platform and distribution, and how each server checks and reloads.

Debian and Ubuntu keep sites in ``sites-available`` with a link in ``sites-enabled``; RHEL and
its relatives include ``conf.d/*.conf``. Windows files go to an IIS site folder (IIS reverse
proxy) or to the OMERO directory (OMERO.web 5.1/5.2 through ISAPI-WSGI). The platform answer
chooses, not the machine the wizard runs on, so every layout can be rendered and tested here.
``web_server.config_path`` overrides the main file's path.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

SITE = "omero-web.conf"
SYSTEMD_UNIT = "/etc/systemd/system/omero-web.service"
IIS_SITE_DIR = r"C:\inetpub\omero-web"
WINDOWS_OMERO_DIST = r"C:\omero_dist"
MAINTENANCE_FILE = "maintenance.html"
TASK_NAME = "OMERO.web clearsessions"


def distribution(os_release: str = "/etc/os-release") -> str:
    """debian | rhel | other, from /etc/os-release's ID and ID_LIKE."""
    try:
        text = Path(os_release).read_text()
    except OSError:
        return "other"
    ids: list[str] = []
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key in {"ID", "ID_LIKE"}:
            ids += value.strip().strip('"').split()
    if any(i in {"debian", "ubuntu"} for i in ids):
        return "debian"
    if any(i in {"rhel", "fedora", "centos", "rocky", "almalinux"} for i in ids):
        return "rhel"
    return "other"


@dataclass(frozen=True)
class ServerLayout:
    """The system server's own paths on one distribution."""

    conf_root: str  # /etc/nginx, /etc/apache2, /etc/httpd
    available: str | None  # sites-available (Debian), None where conf.d is included directly
    enabled: str  # the directory the server includes
    binary: str  # nginx | apache2 | httpd
    ctl: str  # the control program (apache2ctl / apachectl), nginx for nginx
    pidfiles: tuple[str, ...]
    modules_dir: str = ""
    mime_types: str = "/etc/nginx/mime.types"


NGINX = {
    "debian": ServerLayout("/etc/nginx", "/etc/nginx/sites-available", "/etc/nginx/sites-enabled", "nginx", "nginx",
                           ("/run/nginx.pid",)),
    "rhel": ServerLayout("/etc/nginx", None, "/etc/nginx/conf.d", "nginx", "nginx", ("/run/nginx.pid",)),
}
APACHE = {
    "debian": ServerLayout("/etc/apache2", "/etc/apache2/sites-available", "/etc/apache2/sites-enabled", "apache2",
                           "apache2ctl", ("/run/apache2/apache2.pid", "/var/run/apache2/apache2.pid"),
                           "/usr/lib/apache2/modules"),
    "rhel": ServerLayout("/etc/httpd", None, "/etc/httpd/conf.d", "httpd", "apachectl",
                         ("/run/httpd/httpd.pid",), "/usr/lib64/httpd/modules"),
}


def server_layout(kind: str, dist: str | None = None) -> ServerLayout:
    table = APACHE if kind == "apache" else NGINX
    dist = dist or distribution()
    return table.get(dist, table["rhel"] if dist == "rhel" else table["debian"])


def version_tuple(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    out = []
    for part in text.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        if not digits:
            break
        out.append(int(digits))
    return tuple(out) or None


def ipv6_available(if_inet6: str = "/proc/net/if_inet6") -> bool:
    """Whether this Linux host has IPv6 (a server told to listen on [::] fails to start without it)."""
    try:
        return bool(Path(if_inet6).read_text().strip())
    except OSError:
        return False


# ---------------------------------------------------------------------------- the default site of a port
@dataclass(frozen=True)
class StockSite:
    """Debian's own default site, enabled by a link in sites-enabled when the package is installed."""

    link: str  # the sites-enabled link (what disabling it removes)
    target: str  # the file in sites-available (left in place)
    ports: tuple[int, ...]  # the ports on which it is the default site


STOCK_SITES = {
    "nginx": StockSite("/etc/nginx/sites-enabled/default", "/etc/nginx/sites-available/default", (80,)),
    "apache": StockSite("/etc/apache2/sites-enabled/000-default.conf", "/etc/apache2/sites-available/000-default.conf",
                        (80,)),
}


def stock_site(kind: str, dist: str | None = None) -> StockSite | None:
    """Debian's stock default site of this server (None where the distribution has none)."""
    if kind not in STOCK_SITES or (dist or distribution()) != "debian":
        return None
    return STOCK_SITES[kind]


def dpkg_conffile_md5(path: str, status: str = "/var/lib/dpkg/status") -> str | None:
    """The md5 that dpkg recorded for a configuration file as the package shipped it."""
    try:
        with open(status, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith(f" {path} "):
                    return line.split()[1]
    except OSError:
        return None
    return None


def stock_site_state(kind: str, dist: str | None = None) -> str:
    """enabled (as the package shipped it) | edited (enabled, changed since) | disabled | none (no stock site)."""

    site = stock_site(kind, dist)
    if site is None or not Path(site.target).exists():
        return "none"
    link = Path(site.link)
    if not link.is_symlink() or os.path.realpath(link) != os.path.realpath(site.target):
        return "disabled" if not link.exists() else "edited"
    try:
        digest = hashlib.md5(Path(site.target).read_bytes()).hexdigest()  # noqa: S324 - dpkg's own checksum
    except OSError:
        return "edited"
    return "enabled" if digest == dpkg_conffile_md5(site.target) else "edited"


def _ports_of(addresses: str) -> set[int]:
    out = set()
    for addr in addresses.split():
        tail = addr.rsplit(":", 1)[-1] if ":" in addr else addr
        if tail.isdigit():
            out.add(int(tail))
    return out


def default_site_holders(kind: str, port: int, own: str, dist: str | None = None) -> list[str]:
    """Enabled sites other than ``own`` that answer requests for unknown names on ``port``: nginx sites that
    say ``default_server`` there; Apache sites whose virtual host on that port is read before ``own``."""

    layout = server_layout(kind, dist)
    enabled = Path(layout.enabled)
    try:
        names = sorted(p for p in enabled.iterdir() if kind == "nginx" or p.name.endswith(".conf"))
    except OSError:
        return []
    if kind == "nginx" and layout.available is None:
        names = [p for p in names if p.name.endswith(".conf")]
    own_real = os.path.realpath(own)
    holders = []
    for p in names:
        if os.path.realpath(p) == own_real or str(p) == own:
            continue
        try:
            text = p.read_text(errors="replace")
        except OSError:
            continue
        text = re.sub(r"#[^\n]*", "", text)
        if kind == "nginx":
            hit = any(port in _ports_of(m.group(1)) for m in re.finditer(r"\blisten\s+([^;]*?)\bdefault_server\b", text))
        else:
            hit = Path(own).name > p.name and any(
                port in _ports_of(m.group(1)) for m in re.finditer(r"<VirtualHost\s+([^>]+)>", text, re.I))
        if hit:
            holders.append(str(p))
    return holders
