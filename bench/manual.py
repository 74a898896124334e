"""The manual route: the ``omero`` commands the OMERO 5.3 deployment page gives, as a shell script.

Each line below is the seed page's own command for one setting of the benchmark's answers file,
with the values of that file, so that the script and ``omerowizard apply`` end at the same stored
config (the benchmark checks that with ``omero config get`` before it times anything).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

CORS_MIDDLEWARE = [
    {"index": 0.5, "class": "corsheaders.middleware.CorsMiddleware"},
    {"index": 10, "class": "corsheaders.middleware.CorsPostCsrfMiddleware"},
]


@dataclass(frozen=True)
class Deployment:
    """The settings the benchmark deploys (one answers file, one manual script)."""

    app_port: int
    workers: int = 2
    prefix: str = "/omero"
    server_name: str = "omero.example.org"
    http_port: int = 80
    redis: str = "redis://127.0.0.1:6379/0"
    origins: tuple[str, ...] = ("https://hostname.example.com", "https://other.example.org")
    expire_at_browser_close: bool = False  # not OMERO's defaults, so both routes must store them
    cookie_age: int = 3600

    def answers(self, user: str, venv: str, omerodir: str, nginx_file: str) -> dict:
        return {
            "platform": "unix",
            "omero": {"user": user, "venv": venv, "omerodir": omerodir},
            "web_server": {"kind": "nginx", "server_name": self.server_name, "port": self.http_port,
                           "config_path": nginx_file},
            "application_server": {"port": self.app_port, "workers": self.workers},
            "prefix": self.prefix,
            "sessions": {"backend": "redis", "location": self.redis,
                         "expire_at_browser_close": self.expire_at_browser_close, "cookie_age": self.cookie_age},
            "cors": {"mode": "origins", "origins": list(self.origins)},
            "start": False,
        }


def commands(d: Deployment) -> list[list[str]]:
    """The seed's commands, in its order, for the same end config (``omero`` from PATH, as ``bin/omero``)."""
    caches = {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": d.redis}}
    return [
        # application server: the port and worker count of the answers file
        ["omero", "config", "set", "omero.web.application_server.port", str(d.app_port)],
        ["omero", "config", "set", "omero.web.wsgi_workers", str(d.workers)],
        # "Session cookies"
        ["omero", "config", "set", "omero.web.session_expire_at_browser_close",
         "true" if d.expire_at_browser_close else "false"],
        ["omero", "config", "set", "omero.web.session_cookie_age", str(d.cookie_age)],
        # "Session engine" with Redis
        ["omero", "config", "set", "omero.web.session_engine", "django.contrib.sessions.backends.cache"],
        ["omero", "config", "set", "omero.web.caches", json.dumps(caches)],
        # the prefix and its static URL
        ["omero", "config", "set", "omero.web.prefix", d.prefix],
        ["omero", "config", "set", "omero.web.static_url", f"{d.prefix}/static/"],
        # "Cross Origin Resource Sharing"
        ["omero", "config", "append", "omero.web.apps", '"corsheaders"'],
        *[["omero", "config", "append", "omero.web.middleware", json.dumps(m)] for m in CORS_MIDDLEWARE],
        ["omero", "config", "set", "omero.web.cors_origin_whitelist", json.dumps(list(d.origins))],
    ]


def nginx_command(d: Deployment) -> list[str]:
    """The page's nginx step: OMERO generates the server block for the web server."""
    return ["omero", "web", "config", "nginx", "--http", str(d.http_port), "--servername", d.server_name]


def script(d: Deployment, nginx_file: str) -> str:
    lines = ["#!/bin/sh", "# The OMERO 5.3 deployment page's commands for the benchmark's answers file.", "set -e"]
    lines += [shlex.join(argv) for argv in commands(d)]
    lines.append(f"{shlex.join(nginx_command(d))} > {shlex.quote(nginx_file)}")
    return "\n".join(lines) + "\n"


def process_count(d: Deployment) -> int:
    return len(commands(d)) + 1
