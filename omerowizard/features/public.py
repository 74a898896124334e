"""Public access: OMERO.web logs anonymous visitors in as one OMERO user, for the URLs a filter
allows (``omero.web.public.*``). Off by default; the password is a secret."""

from __future__ import annotations

import re

from omerowizard.features.base import Feature, Key
from omerowizard.model.qtypes import BOOL, SECRET, TEXT, Question
from omerowizard.model.secrets import MIN_SECRET

# the OMERO docs' common filters (sysadmins/public.html)
PRESETS = {
    # the full webclient for browsing, without scripts, OME-TIFF export or downloads
    "webclient": r"^/(webadmin/myphoto/|webclient/(?!(script_ui|ome_tiff|figure_script))"
                 r"|webgateway/(?!(archived_files|download_as)))",
    # the image viewers: webgateway's and OMERO.iviewer (which reads the JSON API), without downloads
    "viewer": r"^/(webgateway/(?!(archived_files|download_as))|iviewer/|api/)",
    # webgateway only: everything the full image viewer needs
    "webgateway": r"^/webgateway",
}


def _enabled(a) -> bool:
    return bool(a.get("public.enabled"))


def _url_filter(value: str) -> str | None:
    if value in PRESETS:
        return None
    try:
        re.compile(value)
    except re.error as exc:
        return f"is neither a preset nor a regular expression Python compiles ({exc})"
    return None


def _server_default(a) -> str | None:
    servers = a.get("servers") or ()
    first = servers[0] if servers else None
    return (first.get("name") or first.get("host")) if isinstance(first, dict) else None


class Public(Feature):
    name = "public"
    steps = (("public", "Public access"),)
    keys = {
        "omero.web.public.enabled": Key("false", "bool", "public.enabled"),
        "omero.web.public.user": Key(None, "str", "public.user"),
        "omero.web.public.password": Key(None, "str", "public.password", secret=True),
        "omero.web.public.url_filter": Key(r"(?#This regular expression matches nothing)a^", "str",
                                           "public.url_filter"),
        "omero.web.public.server_id": Key("1", "int", "public.server"),
        "omero.web.public.get_only": Key("true", "bool", "public.get_only"),
        "omero.web.public.cache.enabled": Key("false", "bool", "public.cache"),
    }
    questions = (
        Question("public.enabled", "Let visitors browse without logging in (public access)?",
                 "OMERO.web logs anonymous visitors in as one OMERO user (create it in a read-only group first) "
                 "for the URLs the filter allows.",
                 BOOL, "public", default=False),
        Question("public.user", "OMERO user that public visitors are logged in as",
                 "omero.web.public.user: an OMERO user (e.g. public), member of the groups to publish.",
                 TEXT, "public", default=None, when=_enabled, allowed="an OMERO user name"),
        Question("public.password", "Password of that OMERO user",
                 "omero.web.public.password: kept secret (masked in plans, reviews and logs; answers files "
                 "holding it are written 0600).",
                 SECRET, "public", default=None, when=_enabled, secret=True,
                 allowed=f"the password, at least {MIN_SECRET} characters"),
        Question("public.url_filter", "Which URLs may public visitors open?",
                 "omero.web.public.url_filter: webclient (browse data in the full webclient, without scripts, "
                 "OME-TIFF export or downloads), viewer (the image viewers, webgateway and OMERO.iviewer, without "
                 "downloads), webgateway (webgateway only), or your own regular expression of URLs.",
                 TEXT, "public", default="webclient", when=_enabled, check=_url_filter,
                 allowed="webclient | viewer | webgateway | a regular expression"),
        Question("public.server", "Which OMERO.server do public visitors use?",
                 "omero.web.public.server_id: the name of one of the servers (empty: the first).",
                 TEXT, "public", default=_server_default, when=_enabled, nullable=True,
                 allowed="the name of one of servers"),
        Question("public.get_only", "Allow public visitors only to read (GET requests)?",
                 "omero.web.public.get_only (default yes): attempts to change data are refused.",
                 BOOL, "public", default=True, when=_enabled),
        Question("public.cache", "Cache the pages public visitors see?",
                 "omero.web.public.cache.enabled (default no).",
                 BOOL, "public", default=False, when=_enabled),
    )

    def wanted(self, a, ctx, w):
        p = a.public
        on = bool(p.enabled)
        why = "public access" if on else "public access off"
        w.want("omero.web.public.enabled", on, why)
        w.want("omero.web.public.user", p.user if on else None, "public.user" if on else why)
        w.want("omero.web.public.password", p.password if on else None, "public.password" if on else why)
        w.want("omero.web.public.url_filter", PRESETS.get(p.url_filter, p.url_filter) if on else None,
               f"public.url_filter {p.url_filter}" if on and p.url_filter in PRESETS else
               ("public.url_filter" if on else why))
        w.want("omero.web.public.server_id", server_id(a) if on else None, "public.server" if on else why)
        w.want("omero.web.public.get_only", p.get_only if on else None, "public.get_only" if on else why)
        w.want("omero.web.public.cache.enabled", p.cache if on else None, "public.cache" if on else why)

    def infer(self, config, out, keys):
        public = out.setdefault("public", {})
        on = config.get("omero.web.public.enabled", "false").strip().lower() == "true"
        public["enabled"] = on
        if not on:
            for k in ("user", "password", "url_filter", "server", "get_only", "cache"):
                public.pop(k, None)
            return
        public["user"] = config.get("omero.web.public.user")
        public["password"] = config.get("omero.web.public.password")
        url = config.get("omero.web.public.url_filter")
        public["url_filter"] = next((name for name, rx in PRESETS.items() if rx == url), url)
        try:
            index = int(config.get("omero.web.public.server_id", "1"))
        except ValueError:
            index = 1
        servers = out.get("servers") or []
        public["server"] = servers[index - 1]["name"] if 0 < index <= len(servers) else None
        public["get_only"] = config.get("omero.web.public.get_only", "true").strip().lower() == "true"
        public["cache"] = config.get("omero.web.public.cache.enabled", "false").strip().lower() == "true"

    def cross_checks(self, flat, given, bad, problem, keys):
        if not flat.get("public.enabled") or "public.enabled" in bad:
            return
        for key in ("public.user", "public.password"):
            if not flat.get(key) and key not in bad:
                problem(key, "is missing: public access needs an OMERO user and its password")
        password = flat.get("public.password")
        if isinstance(password, str) and password and len(password) < MIN_SECRET and "public.password" not in bad:
            problem("public.password", f"is shorter than {MIN_SECRET} characters")
        server = flat.get("public.server")
        names = [s.get("name") or s.get("host") for s in flat.get("servers") or () if isinstance(s, dict)]
        if server is not None and "public.server" not in bad and server not in names:
            allowed = " | ".join(map(str, names)) or "none: set servers first, or leave public.server empty"
            problem("public.server", f"{server!r} is not the name of one of servers", allowed)


def server_id(a) -> int:
    """omero.web.public.server_id: the 1-based index of the chosen server in the server list."""
    names = [s["name"] for s in a.servers]
    return names.index(a.public.server) + 1 if a.public.server in names else 1


FEATURE = Public()
