"""The web server in front of OMERO.web (nginx, Apache, IIS, or Django's development server)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath

from omerowizard.features.base import Check, Feature
from omerowizard.features.conditions import Flat, front_end, host_name, server_kind, system_server, unix
from omerowizard.model import validators as v
from omerowizard.model.qtypes import BOOL, CHOICE, INT, SIZE, TEXT, Question
from omerowizard.system import platforms
from omerowizard.system.platforms import IIS_SITE_DIR, SITE, WINDOWS_OMERO_DIST, server_layout, version_tuple
from omerowizard.system.webservers import which

SERVER_BINARIES = {"nginx": ["nginx"], "nginx-development": ["nginx"], "apache": ["apache2", "httpd"]}


def _default_site_default(a: Flat) -> bool:
    """Yes, unless Debian's stock default site is enabled and was edited (an administrator's own site)."""

    return platforms.stock_site_state(server_kind(a)) != "edited"


def _legacy_iis(a: Flat) -> bool:
    version = str(a.get("web_server.omero_web_version") or "")
    parts = [int(p) for p in version.split(".")[:2] if p.isdigit()]
    return a.get("platform") == "windows" and len(parts) == 2 and tuple(parts) < (5, 3)


class WebServer(Feature):
    name = "web_server"
    steps = (("web_server", "Web server"),)
    questions = (
        Question("web_server.kind", "Which web server fronts OMERO.web?",
                 "nginx is what the OMERO 5.3 docs deploy; Apache can proxy to OMERO.web's gunicorn (mod_wsgi "
                 "support was dropped in 5.3); nginx-development is a standalone nginx a non-root user can run; "
                 "development runs Django's development server (for testing only); iis is for Windows; none writes no "
                 "web-server file: this host is one OMERO.web node behind a front end on another host (see nodes).",
                 CHOICE, "web_server", default=server_kind,
                 choices=("nginx", "nginx-development", "apache", "iis", "development", "none")),
        Question("web_server.server_name", "Which host name do browsers use for OMERO.web?",
                 "The server_name (nginx) or ServerName (Apache) of the site.",
                 TEXT, "web_server", default=lambda _: host_name(), check=v.hostname,
                 allowed="a host name such as omero.example.org", when=front_end),
        Question("web_server.port", "Which HTTP port does the web server listen on?",
                 "80 for a system web server; a port above 1024 when the server runs as a normal user.",
                 INT, "web_server", default=lambda a: 8080 if server_kind(a) == "nginx-development" else 80,
                 minimum=1, maximum=65535, when=front_end),
        Question("web_server.default_site", "Is OMERO.web the default site of this port?",
                 "The default site answers requests by IP address, by a name no site claims, and over IPv6 where "
                 "only it listens there. Yes disables Debian's stock default site (\"Welcome to nginx\", Apache's "
                 "\"It works\") on the same port, its link in sites-enabled only (backed up; rollback restores "
                 "it), and marks OMERO.web's site default_server (nginx). The default is yes unless the stock site "
                 "was edited.",
                 BOOL, "web_server", default=_default_site_default, when=system_server, unused=False),
        Question("web_server.max_body_size", "Largest upload the web server accepts?",
                 "nginx client_max_body_size (Apache LimitRequestBody); 0 means no limit.",
                 SIZE, "advanced", default="0", check=v.body_size, allowed="0 or a size such as 512k, 100m, 2g",
                 when=front_end),
        Question("web_server.config_path", "Where does the web-server file go?",
                 "Leave empty for the default of the platform and distribution (Debian: sites-available with a "
                 "link in sites-enabled; RHEL: conf.d).",
                 TEXT, "advanced", default=None, nullable=True, check=v.file_path, allowed="an absolute path",
                 when=front_end),
        Question("web_server.replace_existing", "Replace web-server files that omerowizard did not write?",
                 "When a file already exists where the plan writes one (a site written by hand, another tool's "
                 "file) and no run of this deployment wrote it, the run refuses unless this is yes; the replaced "
                 "file is kept in the run's backup (`omerowizard rollback` brings it back).",
                 BOOL, "advanced", default=False, when=front_end),
        Question("web_server.systemd", "Also write a systemd unit for OMERO.web?",
                 "As in the OMERO.web install docs: /etc/systemd/system/omero-web.service runs `omero web start` "
                 "as the OMERO.web user at boot (enable it with `systemctl enable omero-web`).",
                 BOOL, "advanced", default=False, when=unix, unused=False),
        Question("web_server.omero_web_version", "Which OMERO.web version runs behind IIS?",
                 "OMERO.web 5.1 and 5.2 run inside IIS through ISAPI-WSGI (`bin\\omero web iis`); 5.3 and later do "
                 "not run on Windows, so IIS proxies to an OMERO.web application server on a Unix host. Empty: the "
                 "version detected, else 5.3 or later.",
                 TEXT, "advanced", default=None, nullable=True, check=v.version,
                 allowed='a version in quotes, such as "5.2.8"', when=lambda a: a.get("platform") == "windows",
                 unused=None),
        Question("web_server.omero_dist", "Where is OMERO on the Windows host?",
                 "The OMERO 5.1/5.2 directory that holds bin\\omero (the OMERO docs use C:\\omero_dist).",
                 TEXT, "advanced", default="C:\\omero_dist", check=v.any_path, allowed="an absolute Windows path",
                 when=_legacy_iis, unused=None),
    )

    def cross_checks(self, flat, given, bad, problem, keys):
        kind, platform = flat["web_server.kind"], flat["platform"]
        if "web_server.kind" not in bad and "platform" not in bad:
            if platform == "windows" and kind != "iis":
                problem("web_server.kind", f"{kind!r} does not run on Windows", "iis on platform windows")
            if platform == "unix" and kind == "iis":
                problem("web_server.kind", "'iis' needs platform windows",
                        "nginx | nginx-development | apache | development | none")
        if platform == "unix":
            val = flat.get("web_server.config_path")
            if isinstance(val, str) and "web_server.config_path" not in bad and not val.startswith("/"):
                problem("web_server.config_path", f"{val!r} is a Windows path but platform is unix",
                        "an absolute Unix path")
        if kind == "nginx-development" and isinstance(flat.get("web_server.port"), int) \
                and flat["web_server.port"] < 1024 and "web_server.port" not in bad:
            problem("web_server.port", f"{flat['web_server.port']} needs root, but nginx-development runs as a "
                                       "normal user", "a port from 1024 to 65535")

    def preflight(self, plan):

        a = plan.answers
        if plan.files and a.web_server.kind in SERVER_BINARIES and a.platform == "unix":
            names = SERVER_BINARIES[a.web_server.kind]
            if not any(which(n) for n in names):
                return [Check("web server", False, f"{' or '.join(names)} is not installed "
                                                   f"(e.g. apt-get install {names[0]})")]
        return []


FEATURE = WebServer()


@dataclass(frozen=True)
class Placement:
    """Where the web-server file goes and whether the system server includes it."""

    path: str
    link: str | None  # the sites-enabled link to create (Debian, default path only)
    system: bool  # inside the system server's configuration: check it whole and reload it


def web_server_file(a, dist: str | None = None, detected_version: str | None = None) -> Placement | None:
    ws = a.web_server
    if ws.kind in {"development", "none"}:
        return None
    if ws.kind == "iis":
        if ws.config_path:
            return Placement(ws.config_path, None, False)
        if legacy_iis(a, detected_version):
            return Placement(str(PureWindowsPath(windows_omero_dist(a), "omero-web-iis.bat")), None, False)
        return Placement(str(PureWindowsPath(IIS_SITE_DIR, "web.config")), None, False)
    if ws.kind == "nginx-development":
        path = ws.config_path or str(PurePosixPath(a.omero.omerodir, "etc", "nginx-development.conf"))
        return Placement(path, None, False)
    layout = server_layout(ws.kind, dist)
    if ws.config_path:
        return Placement(ws.config_path, None, ws.config_path.startswith(layout.conf_root + "/"))
    if layout.available:
        return Placement(f"{layout.available}/{SITE}", f"{layout.enabled}/{SITE}", True)
    return Placement(f"{layout.enabled}/{SITE}", None, True)


def maintenance_dir(a, site_path: str | None = None) -> str:
    """The maintenance page lives with OMERO.web (the web server already reads its static files);
    on Windows next to web.config."""
    if a.platform == "windows":
        return str(PureWindowsPath(site_path or IIS_SITE_DIR).parent)
    return str(PurePosixPath(a.omero.omerodir, "etc", "maintenance"))


def windows_omero_dist(a) -> str:
    return getattr(a.web_server, "omero_dist", None) or WINDOWS_OMERO_DIST


def legacy_iis(a, detected: str | None) -> bool:
    """OMERO.web before 5.3 runs under IIS itself (ISAPI-WSGI); 5.3 and later need a Unix host."""
    v = version_tuple(getattr(a.web_server, "omero_web_version", None) or detected)
    return v is not None and v < (5, 3)


def native(a) -> bool:
    """True when the files are for the machine the wizard runs on (else they are only staged)."""
    return (a.platform == "windows") == (os.name == "nt")
