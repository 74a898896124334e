"""From answers to OMERO config keys, following the OMERO 5.3 deployment page and what the
installed omero-web (5.33, Django 5.2) actually accepts.

``DEFAULTS`` are omero-web's own defaults for every key the wizard manages (from
``omeroweb/settings.py``; an e2e test checks them against the installed package). A key
whose wanted value equals its default is left unset, so a deployment made by the wizard
stores only what differs from OMERO's defaults.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from omerowizard.answers import Answers

DEFAULT_MIDDLEWARE = [
    {"index": 1, "class": "django.middleware.common.BrokenLinkEmailsMiddleware"},
    {"index": 2, "class": "django.middleware.common.CommonMiddleware"},
    {"index": 3, "class": "django.contrib.sessions.middleware.SessionMiddleware"},
    {"index": 4, "class": "django.middleware.csrf.CsrfViewMiddleware"},
    {"index": 5, "class": "django.contrib.messages.middleware.MessageMiddleware"},
    {"index": 6, "class": "django.middleware.clickjacking.XFrameOptionsMiddleware"},
]
CORS_MIDDLEWARE = [
    {"index": 0.5, "class": "corsheaders.middleware.CorsMiddleware"},
    {"index": 10, "class": "corsheaders.middleware.CorsPostCsrfMiddleware"},
]
FILE_ENGINE = "django.contrib.sessions.backends.file"
CACHE_ENGINE = "django.contrib.sessions.backends.cache"
REDIS_BACKEND = "django_redis.cache.RedisCache"
PYMEMCACHE_BACKEND = "django.core.cache.backends.memcached.PyMemcacheCache"
OLD_MEMCACHED_BACKEND = "django.core.cache.backends.memcached.MemcachedCache"
DUMMY_CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}

DEFAULTS: dict[str, str | None] = {
    "omero.web.application_server": "wsgi-tcp",
    "omero.web.application_server.host": "127.0.0.1",
    "omero.web.application_server.port": "4080",
    "omero.web.wsgi_workers": "5",
    "omero.web.wsgi_timeout": "60",
    "omero.web.prefix": None,
    "omero.web.static_url": "/static/",
    "omero.web.session_engine": FILE_ENGINE,
    "omero.web.caches": json.dumps(DUMMY_CACHES),
    "omero.web.session_expire_at_browser_close": "true",
    "omero.web.session_cookie_age": "86400",
    "omero.web.apps": "[]",
    "omero.web.middleware": json.dumps(DEFAULT_MIDDLEWARE),
    "omero.web.cors_origin_whitelist": "[]",
    "omero.web.cors_origin_allow_all": "false",
    "omero.web.secure_proxy_ssl_header": "[]",
    "omero.web.session_cookie_secure": "false",
    "omero.web.csrf_cookie_secure": "false",
}
JSON_KEYS = {"omero.web.caches", "omero.web.apps", "omero.web.middleware", "omero.web.cors_origin_whitelist",
             "omero.web.secure_proxy_ssl_header"}
BOOL_KEYS = {"omero.web.session_expire_at_browser_close", "omero.web.cors_origin_allow_all",
             "omero.web.session_cookie_secure", "omero.web.csrf_cookie_secure"}
INT_KEYS = {"omero.web.application_server.port", "omero.web.wsgi_workers", "omero.web.wsgi_timeout",
            "omero.web.session_cookie_age"}


def canonical(key: str, value: str | None) -> Any:
    """A value as OMERO.web understands it, for comparing (``True`` equals ``true``)."""
    if value is None:
        value = DEFAULTS.get(key)
    if value is None:
        return None
    if key in BOOL_KEYS:
        return value.strip().lower() == "true"
    if key in INT_KEYS:
        try:
            return int(value)
        except ValueError:
            return value
    try:
        return json.loads(value) if key in JSON_KEYS or value[:1] in "[{" else value
    except ValueError:
        return value


def same(key: str, a: str | None, b: str | None) -> bool:
    return canonical(key, a) == canonical(key, b)


@dataclass
class Wanted:
    """The value every managed key should have (None: OMERO's default, i.e. unset), and why."""

    values: dict[str, str | None] = field(default_factory=dict)
    why: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def want(self, key: str, value: Any, why: str) -> None:
        if isinstance(value, bool):
            text: str | None = "true" if value else "false"
        elif isinstance(value, (dict, list)):
            text = json.dumps(value)
        elif value is None:
            text = None
        else:
            text = str(value)
        if text is not None and same(key, text, None):
            text = None  # equals OMERO's default: keep the key unset
        self.values[key] = text
        self.why[key] = why


def effective(config: Mapping[str, str], key: str) -> str | None:
    """The value OMERO.web uses: the stored one, else its default."""
    return config.get(key, DEFAULTS.get(key))


def effective_json(config: Mapping[str, str], key: str) -> Any:
    value = effective(config, key)
    try:
        return json.loads(value) if value else None
    except ValueError:
        return None


def wanted_config(a: Answers, current: Mapping[str, str], django: tuple[int, ...] = (5, 2),
                  previous_extra: Mapping[str, Any] | None = None) -> Wanted:
    w = Wanted()
    kind = a.web_server.kind
    w.want("omero.web.application_server", "development" if kind == "development" else "wsgi-tcp",
           "Django's development server, for testing only" if kind == "development"
           else "gunicorn behind the web server")
    w.want("omero.web.application_server.host", a.application_server.host, "application_server.host")
    w.want("omero.web.application_server.port", a.application_server.port, "application_server.port")
    w.want("omero.web.wsgi_workers", a.application_server.workers, "application_server.workers")
    w.want("omero.web.wsgi_timeout", a.application_server.timeout, "application_server.timeout")
    w.want("omero.web.prefix", None if a.prefix == "/" else a.prefix, "prefix")
    w.want("omero.web.static_url", a.effective_static_url,
           "static_url" if a.static_url else "static_url follows the prefix")

    s = a.sessions
    w.want("omero.web.session_expire_at_browser_close", s.expire_at_browser_close, "sessions.expire_at_browser_close")
    w.want("omero.web.session_cookie_age", s.cookie_age, "sessions.cookie_age")
    if s.backend == "file":
        w.want("omero.web.session_engine", FILE_ENGINE, "file sessions (OMERO's default)")
        w.want("omero.web.caches", None, "no cache backend with file sessions")
    elif s.backend == "redis":
        w.want("omero.web.session_engine", CACHE_ENGINE, "sessions in the cache (Redis)")
        w.want("omero.web.caches", {"default": {"BACKEND": REDIS_BACKEND, "LOCATION": s.location}},
               "Redis as the cache, through django-redis")
    else:
        if django >= (3, 2):
            backend = PYMEMCACHE_BACKEND
            if django >= (4, 1):
                w.notes.append(f"Memcached: the seed's {OLD_MEMCACHED_BACKEND} was removed in Django 4.1 "
                               f"(this OMERO.web has Django {'.'.join(map(str, django))}); using "
                               f"{PYMEMCACHE_BACKEND} with pymemcache instead.")
        else:
            backend = OLD_MEMCACHED_BACKEND
        w.want("omero.web.session_engine", CACHE_ENGINE, "sessions in the cache (Memcached)")
        w.want("omero.web.caches", {"default": {"BACKEND": backend, "LOCATION": s.location, "TIMEOUT": s.cookie_age}},
               "Memcached as the cache")
        w.notes.append("Memcached session storage is DEPRECATED upstream; Redis is the supported cache backend.")

    # CORS: keep every app and middleware someone else added; add or remove only ours.
    apps = [x for x in (effective_json(current, "omero.web.apps") or []) if x != "corsheaders"]
    middleware = [m for m in (effective_json(current, "omero.web.middleware") or DEFAULT_MIDDLEWARE)
                  if not (isinstance(m, dict) and str(m.get("class", "")).startswith("corsheaders."))]
    on = a.cors.mode != "off"
    w.want("omero.web.apps", apps + ["corsheaders"] if on else apps,
           "django-cors-headers app" if on else "CORS off: without the corsheaders app")
    w.want("omero.web.middleware", (middleware + CORS_MIDDLEWARE) if on else middleware,
           "CORS middleware first (0.5) and last (10)" if on else "CORS off: without the CORS middleware")
    w.want("omero.web.cors_origin_whitelist", list(a.cors.origins) if a.cors.mode == "origins" else None,
           "cors.origins" if a.cors.mode == "origins" else "no origin list")
    w.want("omero.web.cors_origin_allow_all", a.cors.mode == "all",
           "cors.mode all" if a.cors.mode == "all" else "not every origin")

    https = a.web_server.https is not None and kind != "development"
    w.want("omero.web.secure_proxy_ssl_header", ["HTTP_X_FORWARDED_PROTO", "https"] if https else None,
           "behind an HTTPS proxy: trust X-Forwarded-Proto" if https else "no HTTPS proxy")
    w.want("omero.web.session_cookie_secure", https, "HTTPS: session cookie only over HTTPS" if https else "HTTP")
    w.want("omero.web.csrf_cookie_secure", https, "HTTPS: CSRF cookie only over HTTPS" if https else "HTTP")

    for key, value in a.extra_config.items():
        w.want(key, value, "extra_config")
    for key in (previous_extra or {}):
        if key not in a.extra_config:
            w.values[key] = None
            w.why[key] = "removed from extra_config"
    if kind == "development":
        w.notes.append("The development server is for testing only: never use it in production.")
    return w
