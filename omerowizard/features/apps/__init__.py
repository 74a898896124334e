"""Web apps: OMERO.figure, OMERO.iviewer, OMERO.mapr, OMERO.parade, OMERO.fpbioimage (the catalogue) and
any other app, installed into the OMERO.web environment with pip and configured as each app's README asks:
its Django app in ``omero.web.apps``, its ``open_with``, ``top_links`` and ``center_plugins`` entries,
iviewer as the default image viewer (``omero.web.viewer.view``), mapr's required ``omero.web.mapr.config``.

The four list keys are JSON lists the administrator may also edit by hand (``omero config append``). The
wizard owns only the entries it added: those its apps want now, and those the apps of the last applied
answers (``ctx.previous``) wanted. On a rerun an app that was removed loses exactly its entries; every
other entry stays, in its order. ``omero.web.viewer.view`` is reset only when it holds what the wizard set.
"""

from __future__ import annotations

import re

from omerowizard.features.application_server import login_url
from omerowizard.features.apps.catalogue import (
    BY_NAME,
    CATALOGUE,
    CUSTOM,
    KEYS,
    LIST_KEYS,
    MAPR_KEY,
    NAMES,
    PROTECTED,
    VIEWER_KEY,
    Pins,
    mapr_config,
    requirement,
)
from omerowizard.features.apps.entries import _base_list, _names, entries_of, infer, merge, previous_entries
from omerowizard.features.apps.packages import _split, find_links, sources_problem
from omerowizard.features.base import Check, Feature, effective_json
from omerowizard.model import validators as v
from omerowizard.model import health as h
from omerowizard.model.errors import ApplyError, WizardError
from omerowizard.model.qtypes import BOOL, MULTI, TEXT, Question
from omerowizard.system.network import http_status
from omerowizard.system.processes import user_exists
from omerowizard.system.pyimport import import_apps
from omerowizard.system.venv import normalise

# ---------------------------------------------------------------------------------------------- catalogue
# Each app's entries exactly as its README (the PyPI long description of the release checked: omero-figure
# 8.0.1, omero-iviewer 0.19.1, omero-mapr 0.5.3, omero-parade 0.2.4, omero-fpbioimage 0.4.1) asks for them
# with `omero config append` / `omero config set`.


VERIFY = "check the web apps"


def _enabled(name: str):
    return lambda a: name in (a.get("apps.enabled") or ())


def _any_app(a) -> bool:
    return bool(a.get("apps.enabled") or a.get("apps.custom"))


def _unix(a) -> bool:
    return a.get("platform", "unix") == "unix"


QUESTIONS = (
    Question("apps.enabled", "Which web apps should OMERO.web have?",
             "Installed with pip and configured as each README asks: "
             + "; ".join(app.help for app in CATALOGUE) + ". Removing one removes only the entries the wizard "
             "added.",
             MULTI, "apps", default=(), choices=NAMES, when=_unix, unused=()),
    Question("apps.iviewer_default_viewer", "Make OMERO.iviewer the default image viewer?",
             "omero.web.viewer.view = omero_iviewer.views.index: double-clicking an image opens OMERO.iviewer "
             "instead of the classic viewer (it is reset only if the wizard set it).",
             BOOL, "apps", default=True, when=lambda a: _unix(a) and _enabled("iviewer")(a)),
    Question("apps.mapr_config", "What should OMERO.mapr search for?",
             "omero.web.mapr.config, required by mapr: presets separated by commas (gene, phenotype, antibody, "
             "anyvalue: the README's and the IDR's), or mapr's own JSON, a list of {\"menu\": NAME, \"config\": "
             "{\"default\": [...], \"all\": [...], \"ns\": [...], \"label\": ...}}.",
             TEXT, "apps", default=None, when=lambda a: _unix(a) and _enabled("mapr")(a), check=mapr_config,
             allowed="gene | phenotype | antibody | anyvalue (comma-separated), or mapr's JSON config",
             placeholder="gene, phenotype  or  [{\"menu\": ..., \"config\": {...}}]"),
    Question("apps.mapr_top_links", "Add a top link for each mapr search?",
             "omero.web.ui.top_links: a link at the top of the webclient to each mapr search page "
             "(maprindex_<menu>), as the README shows.",
             BOOL, "apps", default=True, when=lambda a: _unix(a) and _enabled("mapr")(a)),
    Question("apps.versions", "Version of each app (empty: the newest compatible)",
             "A pip version specifier per app, e.g. figure==8.0.1, iviewer>=0.19; an app without one gets the "
             "newest release pip can install next to this omero-web. The review shows the version pip would "
             "install.",
             Pins(), "apps", default={}, when=lambda a: _unix(a) and bool(a.get("apps.enabled")), unused={},
             placeholder="e.g. figure==8.0.1, iviewer>=0.19"),
    Question("apps.custom", "Other web apps",
             "Any other OMERO.web app: its package requirement (name with an optional version specifier), its "
             "Django app name, and optionally its open_with and top_links entries as JSON, as its README gives "
             "them. One app per line or separated by ';', as requirement=... app=...",
             CUSTOM, "apps", default=(), when=_unix, unused=(),
             placeholder="requirement=omero-gallery app=idr_gallery"),
    Question("apps.uninstall_removed", "Uninstall the package of an app you remove?",
             "No (the default) keeps the package installed and only removes the app from the config; yes "
             "uninstalls it with pip too (never a package omero-web needs).",
             BOOL, "apps", default=False, when=_unix),
    Question("apps.find_links", "A directory of wheels for pip (--find-links)",
             "Empty: pip installs the apps from the package index it is configured with. A directory (or URL) of "
             "wheels for hosts without access to the index.",
             TEXT, "apps", default=None, nullable=True, when=_unix, allowed="an absolute path or an https:// URL"),
)


class Apps(Feature):
    name = "apps"
    steps = (("apps", "Web apps"),)
    keys = KEYS
    questions = QUESTIONS

    def wanted(self, a, ctx, w):
        if a.platform != "unix":
            return
        now = entries_of(a)
        before = previous_entries(a, ctx)
        for key in LIST_KEYS:
            base = _base_list(key, a, ctx, w)
            merged = merge(base, before.lists[key], now.lists[key])
            gone = [e for e in before.lists[key] if e not in now.lists[key] and e in base]
            parts = []
            if now.who[key]:
                parts.append(f"the entries of {_names(now.who[key])}")
            if gone:
                parts.append(f"without the entries of removed apps ({_names([x for x in before.who[key] if x not in now.who[key]]) or 'changed'})")
            if key in (a.extra_config or {}):
                parts.insert(0, "extra_config")
            w.want(key, merged, "; ".join(parts) or "no web app entries")
        extra = a.extra_config or {}
        current_view = ctx.current.get(VIEWER_KEY)
        if now.viewer:
            w.want(VIEWER_KEY, now.viewer, "OMERO.iviewer is the default viewer (apps.iviewer_default_viewer)")
        elif VIEWER_KEY in extra:
            w.want(VIEWER_KEY, extra[VIEWER_KEY], "extra_config")
        elif before.viewer and current_view == before.viewer:
            w.want(VIEWER_KEY, None, "the wizard had made OMERO.iviewer the default viewer: back to OMERO's")
        elif ctx.previous is not None and VIEWER_KEY in ctx.previous.extra_config:
            w.want(VIEWER_KEY, None, "removed from extra_config")
        else:
            w.values[VIEWER_KEY], w.why[VIEWER_KEY] = current_view, "kept"
        if now.mapr is not None:
            w.want(MAPR_KEY, now.mapr, "apps.mapr_config")
        elif before.mapr is not None:
            w.want(MAPR_KEY, None, "OMERO.mapr removed")
        else:
            w.values[MAPR_KEY], w.why[MAPR_KEY] = ctx.current.get(MAPR_KEY), "kept"

    def infer(self, config, out, keys):
        infer(config, out, keys)

    def cross_checks(self, flat, given, bad, problem, keys):
        if not _unix(flat):
            return
        enabled = flat.get("apps.enabled") or ()
        if "mapr" in enabled and "apps.enabled" not in bad and not flat.get("apps.mapr_config") \
                and "apps.mapr_config" not in bad:
            problem("apps.mapr_config", "is missing: OMERO.mapr needs omero.web.mapr.config to work",
                    QUESTIONS[2].allowed_text())
        versions = flat.get("apps.versions") or {}
        if isinstance(versions, dict) and "apps.versions" not in bad:
            for name in versions:
                if name in BY_NAME and name not in enabled:
                    problem(f"apps.versions.{name}", f"pins {name}, which apps.enabled does not choose",
                            "versions of the apps in apps.enabled")
        custom = flat.get("apps.custom") or ()
        if isinstance(custom, (list, tuple)) and "apps.custom" not in bad:
            catalogue = {app.django_app: app.name for app in CATALOGUE}
            packages = {app.package: app.name for app in CATALOGUE}
            seen: dict[str, int] = {}
            for i, rec in enumerate(custom):
                if not isinstance(rec, dict):
                    continue
                app = rec.get("app")
                if app in catalogue:
                    problem(f"apps.custom[{i}].app", f"{app!r} is the catalogue's {catalogue[app]}",
                            f"add {catalogue[app]} to apps.enabled instead")
                elif app == "corsheaders":
                    problem(f"apps.custom[{i}].app", "'corsheaders' is added by cors.mode", "answer cors.mode")
                elif app in seen:
                    problem(f"apps.custom[{i}].app", f"{app!r} is already apps.custom[{seen[app]}]", "each app once")
                if isinstance(app, str):
                    seen.setdefault(app, i)
                req = rec.get("requirement")
                if isinstance(req, str) and not requirement(req):

                    dist = normalise(_split(req)[0])
                    for name, app_name in packages.items():
                        if normalise(name) == dist:
                            problem(f"apps.custom[{i}].requirement", f"{req!r} is the catalogue's {app_name}",
                                    f"add {app_name} to apps.enabled (and its version to apps.versions)")
                    if dist in PROTECTED:
                        problem(f"apps.custom[{i}].requirement", f"{req!r} is part of OMERO.web, not a web app",
                                "the package of a web app")
        link = flat.get("apps.find_links")
        if isinstance(link, str) and link and "apps.find_links" not in bad:

            if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", link) and not link.startswith("https://"):
                problem("apps.find_links", f"{link!r} is not https: pip would take packages over a channel anyone "
                                           "between here and there can change")
            elif link.startswith("https://"):
                if not re.fullmatch(r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/+@%-]*)?", link):
                    problem("apps.find_links", f"{link!r} is not a URL of letters, digits and . _ ~ / + @ % -")
            else:
                msg = v.unix_path(link)
                if msg:
                    problem("apps.find_links", f"{link!r} {msg}")

    def verify_steps(self, plan):
        a = plan.answers
        if a.platform != "unix" or not a.apps.enabled:
            return []
        if not (plan.packages or any(c.key in LIST_KEYS or c.key == MAPR_KEY for c in plan.config)):
            return []
        return [VERIFY]

    def verify(self, run):
        """Each catalogue app of the answers answers at its URL on the application server (its login redirect, or
        its page): a web app that does not load fails the run, which restores everything."""
        plan = run.plan
        if not self.verify_steps(plan):
            return
        base = login_url(plan.answers).rsplit("/webclient/login/", 1)[0] + "/"
        with run.step(VERIFY) as s:
            seen = []
            for name in plan.answers.apps.enabled:
                app = BY_NAME[name]
                url = base + app.url
                status = http_status(url)
                if not (isinstance(status, int) and 200 <= status < 400):  # its page, or a redirect (to log in)
                    raise ApplyError(f"{app.title} does not answer at {url} ({status}): the app is not loaded")
                seen.append(f"{name} {status}")
            s.detail = ", ".join(seen)
        run.checked.append("the web apps " + ", ".join(seen) + " on the application server")

    def health(self, ctx):
        """``doctor``: every app of the live omero.web.apps imports (its URLs, as omeroweb/urls.py imports them at the
        first request) under the installed omero-web and Django, in the environment's Python as the OMERO.web user."""
        if not ctx.deep:
            return []
        apps = app_entries(ctx.config)
        if not apps:
            return [h.skipped("apps", "omero.web.apps names no web app")]
        if not user_exists(ctx.user):
            return [h.skipped("apps", f"the OMERO.web user {ctx.user} does not exist: the apps were not imported")]
        try:
            got = import_apps(ctx.venv, ctx.user, ctx.omerodir, apps)
        except WizardError as exc:
            return [h.skipped("apps", f"the apps could not be imported: {exc}")]
        under = f"omero-web {ctx.packages.get('omero-web', '?')} and Django {got.django or ctx.packages.get('django', '?')}"
        if got.settings:
            return [h.problem("apps", f"omero-web's settings do not load under {under} (OMERO.web cannot start): "
                                      f"{got.settings.splitlines()[-1]}",
                              "the app whose settings fail is in the error: remove it from the answers (apps.enabled, "
                              "apps.custom) or install a release made for this Django, then apply the answers",
                              ctx.repair, details=tuple(got.settings.splitlines()[-5:]))]
        bad = {app: err for app, err in got.apps.items() if err}
        if not bad:
            return [h.ok("apps", f"the web apps {', '.join(apps)} import under {under}", apps=apps)]
        return [h.problem("apps", f"the web app{'s' if len(bad) > 1 else ''} {', '.join(bad)} "
                                  f"do{'es' if len(bad) == 1 else ''} not import under {under}: "
                                  + "; ".join(f"{app}: {err.splitlines()[-1]}" for app, err in bad.items())
                                  + " (every page of OMERO.web fails while it is in omero.web.apps)",
                          "install a release of the app made for this omero-web and Django (apps.versions), upgrade "
                          "omero-web (omero.web_version), or remove the app from the answers (apps.enabled, "
                          "apps.custom); then apply them", ctx.repair,
                          details=tuple(line for err in bad.values() for line in err.splitlines()[-3:]),
                          failing=sorted(bad))]

    def preflight(self, plan):
        if not (plan.packages or plan.upgrade):
            return []
        why = sources_problem(find_links(plan.answers), plan.answers.omero.venv)
        if why is None or any(why in refusal for refusal in plan.refusals):  # the plan says it already
            return []
        return [Check("web apps", False, why)]


def app_entries(config) -> list[str]:
    """The Django apps of the live omero.web.apps (its entries that are names)."""
    value = effective_json(KEYS, config, "omero.web.apps") or []
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


FEATURE = Apps()
