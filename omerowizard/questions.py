"""The catalogue: every question the wizard asks, declared once.

The answers-file loader, the JSON Schema, the Textual app and the plain prompts all
read this list, so a question is added here and nowhere else. Keys are the dotted
paths of the answers file (``web_server.kind``). ``when`` says when a question
applies, given the other answers (a flat ``{key: value}`` mapping).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from omerowizard import validators as v

Flat = Mapping[str, Any]


def _always(_: Flat) -> bool:
    return True


@dataclass(frozen=True)
class Question:
    key: str
    prompt: str
    help: str
    kind: str  # choice | bool | int | text | list | mapping
    step: str  # platform | web_server | sessions | cors | advanced | omero
    default: Any = None
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    check: Callable[[Any], str | None] | None = None
    allowed: str = ""
    when: Callable[[Flat], bool] = _always
    nullable: bool = False
    secret: bool = False
    item_check: Callable[[Any], str | None] | None = None  # for lists

    def default_for(self, answers: Flat) -> Any:
        return self.default(answers) if callable(self.default) else self.default

    def allowed_text(self) -> str:
        if self.allowed:
            return self.allowed
        if self.choices:
            return " | ".join(self.choices)
        if self.kind == "bool":
            return "true | false"
        if self.kind == "int":
            return f"an integer from {self.minimum} to {self.maximum}"
        return ""

    @property
    def top(self) -> str:
        return self.key.split(".")[0]


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


def _fqdn(_: Flat) -> str:
    return host_name()


def _unix(a: Flat) -> bool:
    return a.get("platform", "unix") == "unix"


def _server_kind(a: Flat) -> str:
    return a.get("web_server.kind") or ("iis" if a.get("platform") == "windows" else "nginx")


def _front_end(a: Flat) -> bool:
    return _server_kind(a) != "development"


def _system_server(a: Flat) -> bool:
    return _unix(a) and _server_kind(a) in {"nginx", "apache"}


def _default_site_default(a: Flat) -> bool:
    """Yes, unless Debian's stock default site is enabled and was edited (an administrator's own site)."""
    from omerowizard import platforms

    return platforms.stock_site_state(_server_kind(a)) != "edited"


def _nginx(a: Flat) -> bool:
    return _server_kind(a) in {"nginx", "nginx-development"}


def _legacy_iis(a: Flat) -> bool:
    version = str(a.get("web_server.omero_web_version") or "")
    parts = [int(p) for p in version.split(".")[:2] if p.isdigit()]
    return a.get("platform") == "windows" and len(parts) == 2 and tuple(parts) < (5, 3)


def _cache_backend(a: Flat) -> bool:
    return a.get("sessions.backend", "file") in {"redis", "memcached"}


def _location_default(a: Flat) -> str | None:
    return {"redis": "redis://127.0.0.1:6379/0", "memcached": "127.0.0.1:11211"}.get(a.get("sessions.backend", "file"))


CATALOGUE: tuple[Question, ...] = (
    Question("platform", "Which platform does OMERO.web's front end run on?",
             "Unix (Linux) hosts run OMERO.web with gunicorn behind nginx or Apache. Windows hosts use IIS: "
             "OMERO.web 5.3 and later no longer run on Windows, so there IIS proxies to an OMERO.web on a Unix host.",
             "choice", "platform", default="unix", choices=("unix", "windows")),
    Question("omero.user", "Which account runs OMERO.web?",
             "The OMERO docs use a dedicated account, omero-web. omero refuses to run as root.",
             "text", "omero", default="omero-web", check=v.username, allowed="a user name other than root",
             when=_unix),
    Question("omero.venv", "Where is the OMERO.web virtual environment?",
             "The Python environment that holds bin/omero (the OMERO docs use /opt/omero/web/venv3).",
             "text", "omero", default="/opt/omero/web/venv3", check=v.unix_path, allowed="an absolute path",
             when=_unix),
    Question("omero.omerodir", "Where is OMERODIR?",
             "OMERODIR holds etc/grid/config.xml, var/log and var/static of this OMERO.web.",
             "text", "omero", default="/opt/omero/web/OMERO.web", check=v.unix_path, allowed="an absolute path",
             when=_unix),
    Question("omero.web_version", "Which omero-web version should run?",
             "Upgrade (or downgrade) OMERO.web in its virtual environment: the review lists the packages that change "
             "and the upgrade notes between the two versions, then omero-web is installed, its static files "
             "collected and OMERO.web restarted; `omerowizard rollback` reinstalls the previous packages. Empty keeps "
             "the installed version.",
             "text", "advanced", default=None, nullable=True, check=v.version,
             allowed='a released version in quotes, such as "5.33.2", or empty', when=_unix),
    Question("web_server.kind", "Which web server fronts OMERO.web?",
             "nginx is what the OMERO 5.3 docs deploy; Apache can proxy to OMERO.web's gunicorn (mod_wsgi "
             "support was dropped in 5.3); nginx-development is a standalone nginx a non-root user can run; "
             "development runs Django's development server (for testing only); iis is for Windows.",
             "choice", "web_server", default=_server_kind,
             choices=("nginx", "nginx-development", "apache", "iis", "development")),
    Question("web_server.server_name", "Which host name do browsers use for OMERO.web?",
             "The server_name (nginx) or ServerName (Apache) of the site.",
             "text", "web_server", default=_fqdn, check=v.hostname, allowed="a host name such as omero.example.org",
             when=_front_end),
    Question("web_server.port", "Which HTTP port does the web server listen on?",
             "80 for a system web server; a port above 1024 when the server runs as a normal user.",
             "int", "web_server", default=lambda a: 8080 if _server_kind(a) == "nginx-development" else 80,
             minimum=1, maximum=65535, when=_front_end),
    Question("web_server.default_site", "Is OMERO.web the default site of this port?",
             "The default site answers requests by IP address, by a name no site claims, and over IPv6 where "
             "only it listens there. Yes disables Debian's stock default site (\"Welcome to nginx\", Apache's "
             "\"It works\") on the same port, its link in sites-enabled only (backed up; rollback restores it), "
             "and marks OMERO.web's site default_server (nginx). The default is yes unless the stock site was "
             "edited.",
             "bool", "web_server", default=_default_site_default, when=_system_server),
    Question("web_server.max_body_size", "Largest upload the web server accepts?",
             "nginx client_max_body_size (Apache LimitRequestBody); 0 means no limit.",
             "text", "advanced", default="0", check=v.body_size, allowed="0 or a size such as 512k, 100m, 2g",
             when=_front_end),
    Question("web_server.config_path", "Where does the web-server file go?",
             "Leave empty for the default of the platform and distribution (Debian: sites-available with a "
             "link in sites-enabled; RHEL: conf.d).",
             "text", "advanced", default=None, nullable=True, check=v.file_path, allowed="an absolute path",
             when=_front_end),
    Question("web_server.https.certificate", "HTTPS certificate (PEM), or empty for HTTP only",
             "With a certificate and key the server listens on 443, port 80 redirects to HTTPS, and OMERO.web "
             "is told it runs behind an HTTPS proxy.",
             "text", "advanced", default=None, nullable=True, check=v.file_path, allowed="an absolute path to a PEM file",
             when=_front_end),
    Question("web_server.https.key", "HTTPS private key (PEM)",
             "The private key that belongs to the certificate.",
             "text", "advanced", default=None, nullable=True, check=v.file_path, allowed="an absolute path to a PEM file",
             when=lambda a: _front_end(a) and bool(a.get("web_server.https.certificate"))),
    Question("web_server.https.port", "HTTPS port",
             "The port the server listens on for HTTPS.",
             "int", "advanced", default=443, minimum=1, maximum=65535,
             when=lambda a: _front_end(a) and bool(a.get("web_server.https.certificate"))),
    Question("web_server.replace_existing", "Replace web-server files that omerowizard did not write?",
             "When a file already exists where the plan writes one (a site written by hand, another tool's file) and "
             "no run of this deployment wrote it, the run refuses unless this is yes; the replaced file is kept in "
             "the run's backup (`omerowizard rollback` brings it back).",
             "bool", "advanced", default=False, when=_front_end),
    Question("web_server.systemd", "Also write a systemd unit for OMERO.web?",
             "As in the OMERO.web install docs: /etc/systemd/system/omero-web.service runs `omero web start` as "
             "the OMERO.web user at boot (enable it with `systemctl enable omero-web`).",
             "bool", "advanced", default=False, when=_unix),
    Question("web_server.omero_web_version", "Which OMERO.web version runs behind IIS?",
             "OMERO.web 5.1 and 5.2 run inside IIS through ISAPI-WSGI (`bin\\omero web iis`); 5.3 and later do not "
             "run on Windows, so IIS proxies to an OMERO.web application server on a Unix host. Empty: the "
             "version detected, else 5.3 or later.",
             "text", "advanced", default=None, nullable=True, check=v.version,
             allowed='a version in quotes, such as "5.2.8"', when=lambda a: a.get("platform") == "windows"),
    Question("web_server.omero_dist", "Where is OMERO on the Windows host?",
             "The OMERO 5.1/5.2 directory that holds bin\\omero (the OMERO docs use C:\\omero_dist).",
             "text", "advanced", default="C:\\omero_dist", check=v.any_path, allowed="an absolute Windows path",
             when=_legacy_iis),
    Question("application_server.host", "Address OMERO.web's application server listens on",
             "omero.web.application_server.host. Keep 127.0.0.1 when the web server runs on this host; "
             "set an external address when the front end runs elsewhere.",
             "text", "advanced", default="127.0.0.1", check=v.host_or_ip, allowed="an IP address or host name"),
    Question("application_server.port", "Port of OMERO.web's application server",
             "omero.web.application_server.port (default 4080).",
             "int", "advanced", default=4080, minimum=1, maximum=65535),
    Question("application_server.workers", "Number of gunicorn workers",
             "omero.web.wsgi_workers: (2 x CPU cores) + 1 is a common choice.",
             "int", "advanced", default=5, minimum=1, maximum=64, when=lambda a: _server_kind(a) != "development"),
    Question("application_server.timeout", "Worker timeout in seconds",
             "omero.web.wsgi_timeout: workers silent for longer are killed and restarted.",
             "int", "advanced", default=60, minimum=1, maximum=3600, when=lambda a: _server_kind(a) != "development"),
    Question("prefix", "URL prefix of OMERO.web",
             "By default OMERO.web expects to be run from the root URL of the web server. Set e.g. /omero to make "
             "OMERO.web appear at http://example.org/omero/ (omero.web.prefix).",
             "text", "advanced", default="/", check=v.prefix, allowed="'/' or a path such as /omero"),
    Question("static_url", "URL of the static files",
             "omero.web.static_url; empty follows the prefix (<prefix>/static/).",
             "text", "advanced", default=None, nullable=True, check=v.static_url,
             allowed="a path that starts and ends with '/', e.g. /omero/static/"),
    Question("sessions.backend", "Where are sessions kept?",
             "file: OMERO.web's default store on the file system, which does not purge stale sessions, so a "
             "clearsessions job is installed. redis: the cache session store on Redis (needs django-redis). "
             "memcached: DEPRECATED upstream, cache sessions on Memcached (needs pymemcache).",
             "choice", "sessions", default="file", choices=("file", "redis", "memcached")),
    Question("sessions.location", "Where is the cache server?",
             "Redis: redis://[:password@]host:port/db. Memcached: host:port.",
             "text", "sessions", default=_location_default, secret=True,  # checked per backend in answers._cross_checks
             allowed="redis://host:port/db for redis, host:port for memcached", when=_cache_backend),
    Question("sessions.expire_at_browser_close", "Expire sessions when the browser closes?",
             "omero.web.session_expire_at_browser_close (default true).",
             "bool", "sessions", default=True),
    Question("sessions.cookie_age", "Age of session cookies, in seconds",
             "omero.web.session_cookie_age (default 86400).",
             "int", "sessions", default=86400, minimum=60, maximum=31536000),
    Question("sessions.clearsessions", "How often are stale sessions purged?",
             "File sessions are never purged by OMERO.web itself: the docs ask for `omero web clearsessions` "
             "as a regular job. daily, hourly, a cron expression such as '30 3 * * *', or off.",
             "text", "sessions", default="daily", check=v.schedule,
             allowed="daily | hourly | off | a five-field cron expression",
             when=lambda a: a.get("sessions.backend", "file") == "file"),
    Question("cors.mode", "Allow web applications on other origins (CORS)?",
             "Cross Origin Resource Sharing through django-cors-headers: off, only listed origins, or all origins.",
             "choice", "cors", default="off", choices=("off", "origins", "all")),
    Question("cors.origins", "Origins allowed to use OMERO.web",
             "Each as scheme://host[:port], e.g. https://hostname.example.com (django-cors-headers needs the scheme).",
             "list", "cors", default=(), item_check=v.origin, allowed="a list of scheme://host[:port]",
             when=lambda a: a.get("cors.mode", "off") == "origins"),
    Question("extra_config", "Other omero.web.* settings",
             "Any other OMERO.web configuration key and its value; lists and mappings are stored as JSON.",
             "mapping", "advanced", default=()),
    Question("start", "Start or restart OMERO.web when done?",
             "Runs `omero web start` (or restart when it runs) and checks that the login page answers.",
             "bool", "advanced", default=True),
)

BY_KEY: dict[str, Question] = {q.key: q for q in CATALOGUE}
STEPS = ("platform", "omero", "web_server", "sessions", "cors", "advanced")


def questions_for(step: str) -> list[Question]:
    return [q for q in CATALOGUE if q.step == step]


def applies(q: Question, flat: Flat) -> bool:
    return q.when(flat)
