"""Answers that describe an existing deployment, read back from its OMERO config.

Used when there are no saved answers (a deployment made by hand), so the wizard
prefills from what is really there and a rerun changes only what the user changes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from omerowizard.omeroconfig import CACHE_ENGINE, OLD_MEMCACHED_BACKEND, PYMEMCACHE_BACKEND, REDIS_BACKEND
from omerowizard.omeroconfig import effective as _get
from omerowizard.omeroconfig import effective_json as _json


def answers_from_config(config: Mapping[str, str], base: Mapping[str, Any]) -> dict[str, Any]:
    """Nested answers: ``base`` (saved answers or defaults) overlaid with what the config says."""
    out: dict[str, Any] = json.loads(json.dumps(base))
    app = out.setdefault("application_server", {})
    if _get(config, "omero.web.application_server") == "development":
        out.setdefault("web_server", {})["kind"] = "development"
    elif out.get("web_server", {}).get("kind") == "development":
        out["web_server"]["kind"] = "nginx"
    for key, field in (("omero.web.application_server.port", "port"), ("omero.web.wsgi_workers", "workers"),
                       ("omero.web.wsgi_timeout", "timeout")):
        try:
            app[field] = int(_get(config, key) or "")
        except ValueError:
            pass
    app["host"] = _get(config, "omero.web.application_server.host") or "127.0.0.1"
    prefix = (_get(config, "omero.web.prefix") or "/").rstrip("/") or "/"
    out["prefix"] = prefix
    static = _get(config, "omero.web.static_url") or "/static/"
    follows = "/static/" if prefix == "/" else f"{prefix}/static/"
    out["static_url"] = None if static == follows else static

    sessions = out.setdefault("sessions", {})
    engine = _get(config, "omero.web.session_engine")
    caches = _json(config, "omero.web.caches") or {}
    default = caches.get("default", {}) if isinstance(caches, dict) else {}
    backend = default.get("BACKEND") if isinstance(default, dict) else None
    if engine == CACHE_ENGINE and backend == REDIS_BACKEND:
        sessions["backend"], sessions["location"] = "redis", default.get("LOCATION")
    elif engine == CACHE_ENGINE and backend in {PYMEMCACHE_BACKEND, OLD_MEMCACHED_BACKEND}:
        sessions["backend"], sessions["location"] = "memcached", default.get("LOCATION")
    else:
        sessions["backend"] = "file"
        sessions.pop("location", None)
    sessions["expire_at_browser_close"] = (_get(config, "omero.web.session_expire_at_browser_close") or "true").lower() == "true"
    try:
        sessions["cookie_age"] = int(_get(config, "omero.web.session_cookie_age") or "86400")
    except ValueError:
        pass

    apps = _json(config, "omero.web.apps") or []
    cors = out.setdefault("cors", {})
    if "corsheaders" in apps and (_get(config, "omero.web.cors_origin_allow_all") or "").lower() == "true":
        cors["mode"], cors["origins"] = "all", []
    elif "corsheaders" in apps and _json(config, "omero.web.cors_origin_whitelist"):
        cors["mode"], cors["origins"] = "origins", list(_json(config, "omero.web.cors_origin_whitelist"))
    else:
        cors["mode"], cors["origins"] = "off", []
    return out
