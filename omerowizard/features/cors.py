"""Cross-origin requests (django-cors-headers): the app and middleware entries it owns, its origins."""

from __future__ import annotations

import json

from omerowizard.features.base import Feature, Key, effective, effective_json
from omerowizard.model import validators as v
from omerowizard.model.qtypes import CHOICE, LIST, Question

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
PACKAGE = "django-cors-headers"


class Cors(Feature):
    name = "cors"
    steps = (("cors", "Cross-origin requests (CORS)"),)
    keys = {
        # list entries: only the corsheaders app and the two middleware entries are ours (omero.web.apps is
        # declared by the apps feature, which adds the web apps)
        "omero.web.middleware": Key(json.dumps(DEFAULT_MIDDLEWARE), "json", "cors.mode (WhiteNoise: nodes.static)"),
        "omero.web.cors_origin_whitelist": Key("[]", "json", "cors.origins"),
        "omero.web.cors_origin_allow_all": Key("false", "bool", "cors.mode"),
    }
    questions = (
        Question("cors.mode", "Allow web applications on other origins (CORS)?",
                 "Cross Origin Resource Sharing through django-cors-headers: off, only listed origins, or all "
                 "origins.",
                 CHOICE, "cors", default="off", choices=("off", "origins", "all")),
        Question("cors.origins", "Origins allowed to use OMERO.web",
                 "Each as scheme://host[:port], e.g. https://hostname.example.com (django-cors-headers needs the "
                 "scheme).",
                 LIST, "cors", default=(), item_check=v.origin, allowed="a list of scheme://host[:port]",
                 when=lambda a: a.get("cors.mode", "off") == "origins", unused=(),
                 placeholder="comma-separated, e.g. https://hostname.example.com"),
    )

    def wanted(self, a, ctx, w):
        # keep every app and middleware someone else added; add or remove only ours
        current = ctx.current
        apps = list(effective_json(w.keys, current, "omero.web.apps") or [])
        middleware = [m for m in (effective_json(w.keys, current, "omero.web.middleware") or DEFAULT_MIDDLEWARE)
                      if not (isinstance(m, dict) and str(m.get("class", "")).startswith("corsheaders."))]
        on = a.cors.mode != "off"
        # corsheaders keeps its place (the web apps' entries stay where they are)
        w.want("omero.web.apps", (apps if "corsheaders" in apps else apps + ["corsheaders"]) if on
               else [x for x in apps if x != "corsheaders"],
               "django-cors-headers app" if on else "CORS off: without the corsheaders app")
        w.want("omero.web.middleware", (middleware + CORS_MIDDLEWARE) if on else middleware,
               "CORS middleware first (0.5) and last (10)" if on else "CORS off: without the CORS middleware")
        w.want("omero.web.cors_origin_whitelist", list(a.cors.origins) if a.cors.mode == "origins" else None,
               "cors.origins" if a.cors.mode == "origins" else "no origin list")
        w.want("omero.web.cors_origin_allow_all", a.cors.mode == "all",
               "cors.mode all" if a.cors.mode == "all" else "not every origin")

    def packages(self, a):
        return [(PACKAGE, "needed for CORS")] if a.cors.mode != "off" else []

    def infer(self, config, out, keys):
        apps = effective_json(keys, config, "omero.web.apps") or []
        cors = out.setdefault("cors", {})
        whitelist = effective_json(keys, config, "omero.web.cors_origin_whitelist")
        if "corsheaders" in apps and (effective(keys, config, "omero.web.cors_origin_allow_all") or "").lower() == "true":
            cors["mode"], cors["origins"] = "all", []
        elif "corsheaders" in apps and whitelist:
            cors["mode"], cors["origins"] = "origins", list(whitelist)
        else:
            cors["mode"], cors["origins"] = "off", []

    def cross_checks(self, flat, given, bad, problem, keys):
        if flat["cors.mode"] == "origins" and "cors.origins" not in bad and not flat.get("cors.origins"):
            problem("cors.origins", "is empty but cors.mode is origins", "at least one scheme://host[:port]")


FEATURE = Cors()
