"""The kinds of change a plan holds: each says what it does and why, and shows itself in a review."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from omerowizard.catalogue import SECRET_KEYS
from omerowizard.catalogue.config import DEFAULTS
from omerowizard.model.errors import printable
from omerowizard.model.secrets import mask_secrets

STEP = "check through the web server"  # the apply step that requests the front door


@dataclass(frozen=True)
class ConfigChange:
    key: str
    old: str | None  # None: not set
    new: str | None  # None: unset (back to OMERO's default)
    why: str

    @property
    def action(self) -> str:
        return "unset" if self.new is None else "set"

    @property
    def old_text(self) -> str:
        # printable(): the old value comes from config.xml, which the OMERO.web user can write
        return self._shown(self.old) if self.old is not None else self._unset()

    @property
    def new_text(self) -> str:
        return self._shown(self.new) if self.new is not None else self._unset()

    def _shown(self, value: str) -> str:

        return "****" if self.key in SECRET_KEYS else printable(mask_secrets(value))

    def _unset(self) -> str:
        """An unset key, with the value OMERO.web then uses (``(unset: OMERO's default 5)``)."""

        default = DEFAULTS.get(self.key)
        return f"(unset: OMERO's default {mask_secrets(default)})" if default is not None else "(unset)"

    def describe(self) -> str:
        return f"{self.key}: {self.old_text} -> {self.new_text}"


@dataclass(frozen=True)
class PackageChange:
    requirement: str
    why: str
    action: str = "install"  # install | uninstall
    version: str = ""  # the version pip's dry run would install (an uninstall: the installed one)
    app: str = ""  # the web app it belongs to (apps.enabled name or custom Django app name)

    def describe(self) -> str:
        if self.action == "uninstall":
            return f"pip uninstall {self.requirement} {self.version} ({self.why})"
        return f"pip install {self.requirement} ({self.why})"


@dataclass(frozen=True)
class FileChange:
    """Write (or remove, when ``new`` is None) one file, checked by ``check`` before it counts."""

    path: str
    old: str | None
    new: str | None
    why: str
    mode: int = 0o644
    link: str | None = None  # a symlink to create pointing at path (Debian sites-enabled)
    staged: bool = False  # written to the staging directory for an administrator to install
    encoding: str = "utf-8"
    check: str | None = None  # the server check that proves it: nginx | apache | nginx-development | systemd
    system: bool = False  # part of the system server's configuration: checked whole, reloaded when running
    commands: tuple[str, ...] = ()  # what an administrator runs after installing it (IIS, Task Scheduler)
    owner: str | None = None  # new directories and the file belong to this user (files inside OMERODIR)
    modules: tuple[str, ...] = ()  # Apache modules the file needs
    adopted: bool = False  # the file exists but no run of this deployment wrote it
    link_only: bool = False  # path is a link (a site enabled in sites-enabled, ``old`` its target): only the link
    #                          is removed, and the backup and undo put the same link back

    def describe(self) -> str:
        if self.link_only:
            return f"disable {self.path}: remove its link to {self.old}, the file stays ({self.why})"
        verb = "remove" if self.new is None else ("create" if self.old is None else "update")
        if self.new is not None and self.old == self.new:
            verb = "link"
        if self.adopted:
            return f"replace {self.path}, a file omerowizard did not write (kept in the backup) ({self.why})"
        staged = " [staged for an administrator]" if self.staged else ""
        return f"{verb} {self.path} ({self.why}){staged}"

    def diff(self) -> str:
        if self.link_only:
            return f"--- {self.path} (now: a link to {self.old})\n+++ {self.path} (planned: no link)\n"
        return "".join(difflib.unified_diff((self.old or "").splitlines(True), (self.new or "").splitlines(True),
                                            fromfile=f"{self.path} (now)", tofile=f"{self.path} (planned)"))


@dataclass(frozen=True)
class JobChange:
    """Install, replace or remove the managed scheduled job."""

    user: str
    old: str | None
    new: str | None
    why: str
    staged: bool = False  # the wizard cannot edit this crontab: an administrator adds the line

    def describe(self) -> str:
        if self.new is None:
            return f"remove the clearsessions job of {self.user} ({self.why})"
        return f"{'replace' if self.old else 'install'} the clearsessions job of {self.user}: {self.new} ({self.why})"


# How a change to each omero.web key reaches a running OMERO.web. gunicorn is started by `omero web start`
# with a command line built from the keys below (omero/plugins/web.py, _build_run_cmd) and SCRIPT_NAME set
# from the prefix: a change to any of them needs a restart. Every other key is read by omeroweb.settings
# when a worker imports Django, and gunicorn runs without --preload, so replacing the workers (new ones
# first, then the old ones finish their requests: gunicorn.reload) applies it without dropping a request.
# Unknown keys (extra_config) count as Django settings. One table, so the feature modules can take their
# rows later.
RESTART_KEYS: dict[str, str] = {
    "omero.web.application_server": "the kind of application server (gunicorn or Django's development server)",
    "omero.web.application_server.host": "gunicorn's --bind address",
    "omero.web.application_server.port": "gunicorn's --bind port",
    "omero.web.application_server.max_requests": "gunicorn's --max-requests",
    "omero.web.wsgi_workers": "gunicorn's --workers",
    "omero.web.wsgi_timeout": "gunicorn's --timeout",
    "omero.web.wsgi_worker_class": "gunicorn's --worker-class",
    "omero.web.wsgi_worker_connections": "gunicorn's --worker-connections",
    "omero.web.wsgi_threads": "gunicorn's --threads",
    "omero.web.wsgi_args": "extra gunicorn arguments",
    "omero.web.prefix": "the SCRIPT_NAME gunicorn is started with",
}


# Keys whose change needs the static files collected again before new workers serve pages.
STATIC_KEYS: dict[str, str] = {
    "omero.web.apps": "an added app brings its own static files",
}


def restart_reason(key: str) -> str | None:
    """Why a change to ``key`` needs a restart; None when a graceful reload applies it."""
    return RESTART_KEYS.get(key)


@dataclass(frozen=True)
class ServerChange:
    """Start the system web server (nginx or Apache), which does not run: the site is served only then."""

    kind: str  # nginx | apache
    argv: tuple[str, ...]
    why: str

    @property
    def label(self) -> str:
        return f"start {'nginx' if self.kind == 'nginx' else 'Apache httpd'}"

    def describe(self) -> str:
        return f"{self.label}: {' '.join(self.argv)} ({self.why})"


@dataclass(frozen=True)
class WebChange:
    action: str  # start | restart | reload
    why: str
    reasons: tuple[str, ...] = ()  # restart: each setting that needs it, and why
    collectstatic: bool = False  # reload: collect the static files first

    def describe(self) -> str:
        if self.action == "reload":
            static = "collect static files, then " if self.collectstatic else ""
            return f"{static}reload OMERO.web gracefully: new gunicorn workers replace the old ones ({self.why})"
        return f"omero web {self.action} ({self.why})"

    @property
    def label(self) -> str:
        """The name of the apply step that runs it."""
        return "reload OMERO.web" if self.action == "reload" else f"omero web {self.action}"




@dataclass(frozen=True)
class Door:
    via: str  # nginx | Apache httpd | the standalone nginx
    scheme: str  # http | https
    port: int
    server_name: str
    login_path: str
    static_path: str

    @property
    def public_url(self) -> str:
        default = 443 if self.scheme == "https" else 80
        port = "" if self.port == default else f":{self.port}"
        return f"{self.scheme}://{self.server_name}{port}{self.login_path.rsplit('webclient/login/', 1)[0]}"

    def url(self, path: str) -> str:
        default = 443 if self.scheme == "https" else 80
        port = "" if self.port == default else f":{self.port}"
        return f"{self.scheme}://{self.server_name}{port}{path}"
