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

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from omerowizard.features.application_server import login_url
from omerowizard.features.base import Check, Feature, Key, effective, effective_json
from omerowizard.model import validators as v
from omerowizard.model.errors import ApplyError, InstallError
from omerowizard.model.qtypes import BOOL, MULTI, TEXT, Field, Mapping_, Question, Records
from omerowizard.system import distributions, safefs
from omerowizard.system import venv as venv_mod
from omerowizard.system.network import http_status
from omerowizard.system.venv import normalise

# ---------------------------------------------------------------------------------------------- catalogue
# Each app's entries exactly as its README (the PyPI long description of the release checked: omero-figure
# 8.0.1, omero-iviewer 0.19.1, omero-mapr 0.5.3, omero-parade 0.2.4, omero-fpbioimage 0.4.1) asks for them
# with `omero config append` / `omero config set`.


@dataclass(frozen=True)
class App:
    name: str  # the answers' name (apps.enabled)
    title: str
    package: str  # the distribution pip installs
    django_app: str  # its entry in omero.web.apps
    open_with: tuple[Any, ...] = ()  # entries of omero.web.open_with
    top_links: tuple[Any, ...] = ()  # entries of omero.web.ui.top_links
    center_plugins: tuple[Any, ...] = ()  # entries of omero.web.ui.center_plugins
    viewer_view: str | None = None  # the value of omero.web.viewer.view that makes it the default viewer
    url: str = ""  # its pages' root below the prefix (the app's Django label): 302 to the login page, or 200
    static: str = ""  # one static file of the app (below the static URL)
    help: str = ""


CATALOGUE: tuple[App, ...] = (
    App("figure", "OMERO.figure", "omero-figure", "omero_figure",
        open_with=(["omero_figure", "new_figure",
                    {"supported_objects": ["images"], "target": "_blank", "label": "OMERO.figure"}],),
        top_links=(["Figure", "figure_index", {"title": "Open Figure in new tab", "target": "_blank"}],),
        url="figure/", static="omero_figure/bootstrap-icons.css",
        help="figure: publication figures from OMERO images (an 'Open with' entry and a 'Figure' top link)"),
    App("iviewer", "OMERO.iviewer", "omero-iviewer", "omero_iviewer",
        open_with=(["omero_iviewer", "omero_iviewer_index",
                    {"supported_objects": ["images", "dataset", "well"], "script_url": "omero_iviewer/openwith.js",
                     "label": "OMERO.iviewer"}],),
        viewer_view="omero_iviewer.views.index",
        url="iviewer/", static="omero_iviewer/openwith.js",
        help="iviewer: the image viewer of OMERO.web's ROI and rendering tools (an 'Open with' entry; optionally "
             "the default viewer)"),
    App("mapr", "OMERO.mapr", "omero-mapr", "omero_mapr",
        url="mapr/", static="mapr/css/ome.mapr.css",
        help="mapr: browse data by key-value annotations such as genes or phenotypes (needs omero.web.mapr.config)"),
    App("parade", "OMERO.parade", "omero-parade", "omero_parade",
        center_plugins=(["Parade", "omero_parade/init.js.html", "omero_parade"],),
        url="parade/", static="omero_parade/css/parade.css",
        help="parade: filter and plot images by their data in the centre panel of the webclient"),
    App("fpbioimage", "OMERO.fpbioimage", "omero-fpbioimage", "omero_fpbioimage",
        open_with=(["omero_fpbioimage", "fpbioimage_index",
                    {"script_url": "fpbioimage/openwith.js", "supported_objects": ["image"],
                     "label": "FPBioimage"}],),
        url="fpbioimage/", static="fpbioimage/openwith.js",
        help="fpbioimage: a 3D volume viewer in the browser (an 'Open with' entry)"),
)
BY_NAME: dict[str, App] = {app.name: app for app in CATALOGUE}
NAMES: tuple[str, ...] = tuple(BY_NAME)

# mapr's configurations from its README (gene, antibody, anyvalue) and the IDR's (phenotype), each with the top
# link the README pairs with it
MAPR_PRESETS: dict[str, tuple[dict[str, Any], list[Any]]] = {
    "gene": ({"menu": "gene", "config": {"default": ["Gene Symbol"], "all": ["Gene Symbol", "Gene Identifier"],
                                         "ns": ["openmicroscopy.org/mapr/gene"], "label": "Gene"}},
             ["Genes", {"viewname": "maprindex_gene", "query_string": {"experimenter": -1}},
              {"title": "Find Gene annotations"}]),
    "phenotype": ({"menu": "phenotype", "config": {"default": ["Phenotype"],
                                                   "all": ["Phenotype", "Phenotype Term Accession"],
                                                   "ns": ["openmicroscopy.org/mapr/phenotype"],
                                                   "wildcard": {"enabled": True}, "label": "Phenotype"}},
                  ["Phenotypes", {"viewname": "maprindex_phenotype", "query_string": {"experimenter": -1}},
                   {"title": "Find Phenotype annotations"}]),
    "antibody": ({"menu": "antibody", "config": {"default": ["Primary Antibody"],
                                                 "all": ["Primary Antibody", "Secondary Antibody"],
                                                 "ns": ["openmicroscopy.org/omero/client/mapAnnotation"],
                                                 "label": "Antibody"}},
                 ["Antibodies", {"viewname": "maprindex_antibody"}, {"title": "Find Antibody values"}]),
    "anyvalue": ({"menu": "anyvalue", "config": {"default": ["Any Value"], "all": [],
                                                 "ns": ["openmicroscopy.org/omero/client/mapAnnotation"],
                                                 "label": "Any"}},
                 ["Any Value", {"viewname": "maprindex_anyvalue"}, {"title": "Find Any Value"}]),
}

# what extra_config's refusal of omero.web.apps says to do instead
APPS_HINT = ("remove it from extra_config: a web app is installed and added by the apps section, apps.enabled for "
             + " | ".join(NAMES) + ", apps.custom for any other app (its requirement and Django app name)")
VERIFY = "check the web apps"
LIST_KEYS = ("omero.web.apps", "omero.web.open_with", "omero.web.ui.top_links", "omero.web.ui.center_plugins")
VIEWER_KEY = "omero.web.viewer.view"
MAPR_KEY = "omero.web.mapr.config"
DEFAULT_VIEWER = "omeroweb.webclient.views.image_viewer"
DEFAULT_OPEN_WITH = ('[["Image viewer", "webgateway", {"supported_objects": ["image"],'
                     '"script_url": "webclient/javascript/ome.openwith_viewer.js"}]]')
DEFAULT_TOP_LINKS = ('[["Data", "webindex", {"title": "Browse Data via Projects, Tags etc"}],'
                     '["History", "history", {"title": "History"}],'
                     '["Help", "https://help.openmicroscopy.org/",'
                     '{"title":"Open OMERO user guide in a new tab", "target":"new"}]]')

# packages the wizard never uninstalls (omero-web and what it is built on)
PROTECTED = {"omero-web", "omero-py", "django", "zeroc-ice", "pip", "setuptools", "wheel", "gunicorn",
             "django-redis", "pymemcache", "django-cors-headers"}


# ---------------------------------------------------------------------------------------------- validators
REQUIREMENT = re.compile(r"([A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?)\s*((===?|~=|!=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+"
                         r"(\s*,\s*(===?|~=|!=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+)*)?")
SPECIFIER = re.compile(r"(===?|~=|!=|<=|>=|<|>)\s*[0-9][A-Za-z0-9.*+!_-]*(\s*,\s*(===?|~=|!=|<=|>=|<|>)\s*"
                       r"[0-9][A-Za-z0-9.*+!_-]*)*")
DJANGO_APP = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def requirement(value: Any) -> str | None:
    if not isinstance(value, str) or not REQUIREMENT.fullmatch(value):
        return ("is not a package requirement: a name from the package index with an optional version specifier, "
                "such as omero-gallery or omero-gallery>=3.4")
    if len(value) > 200:
        return "is longer than 200 characters"
    return None


def specifier(value: Any) -> str | None:
    if not isinstance(value, str) or not SPECIFIER.fullmatch(value):
        return "is not a version specifier such as ==8.0.1, >=0.19 or >=8,<9"
    return None


def django_app(value: Any) -> str | None:
    if not isinstance(value, str) or not DJANGO_APP.fullmatch(value) or len(value) > 200:
        return "is not a Django app name (a Python module path such as omero_gallery)"
    return None


def _json_entry(value: Any, what: str) -> str | None:
    """An open_with / top_links entry: a JSON list whose first item is a string."""
    if not isinstance(value, str):
        return f"is not JSON text of a {what} entry"
    try:
        data = json.loads(value)
    except ValueError as exc:
        return f"is not JSON ({exc.msg} at column {exc.colno})"
    if not (isinstance(data, list) and len(data) >= 2 and isinstance(data[0], str)):
        return f"is not a {what} entry: a JSON list such as [\"label\", \"url name\", {{...}}]"
    return None


def open_with_entry(value: Any) -> str | None:
    return _json_entry(value, "omero.web.open_with")


def top_link_entry(value: Any) -> str | None:
    return _json_entry(value, "omero.web.ui.top_links")


def mapr_config(value: str) -> str | None:
    """A preset, several separated by commas, or JSON: a list (or one mapping) of {"menu", "config"}."""
    if value != value.strip():
        return "has blanks around it (values are taken exactly)"
    try:
        mapr_entries(value)
    except ValueError as exc:
        return str(exc)
    return None


def mapr_entries(value: str) -> list[dict[str, Any]]:
    """The omero.web.mapr.config list of a preset list or JSON (raises ValueError with what is wrong)."""
    text = value.strip()
    if not text.startswith(("[", "{")):
        names = [n[1:] if n.startswith(" ") else n for n in text.split(",")]  # "gene, phenotype" or "gene,phenotype"
        wrong = [n for n in names if n not in MAPR_PRESETS]
        if wrong or not names:
            raise ValueError(f"names no preset ({', '.join(map(repr, wrong))}): give presets among "
                             f"{' | '.join(MAPR_PRESETS)} separated by commas, or mapr's JSON")
        return [MAPR_PRESETS[n][0] for n in dict.fromkeys(names)]
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"is not JSON ({exc.msg} at column {exc.colno})") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not data:
        raise ValueError("is not a JSON list of {\"menu\": ..., \"config\": {...}} entries")
    menus = set()
    for i, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("menu"), str) or not item["menu"] \
                or not isinstance(item.get("config"), dict):
            raise ValueError(f"entry {i} is not {{\"menu\": NAME, \"config\": {{...}}}} (mapr ignores it)")
        if not re.fullmatch(r"[A-Za-z0-9_]+", item["menu"]):
            raise ValueError(f"entry {i}: menu {item['menu']!r} is not letters, digits and _ (it names the URL "
                             "maprindex_<menu>)")
        if item["menu"] in menus:
            raise ValueError(f"entry {i}: menu {item['menu']!r} is given twice")
        menus.add(item["menu"])
        config = item["config"]
        for k in ("default", "all", "ns"):
            if k in config and not (isinstance(config[k], list) and all(isinstance(x, str) for x in config[k])):
                raise ValueError(f"entry {i}: config.{k} is not a list of strings")
        if not config.get("ns"):
            raise ValueError(f"entry {i}: config.ns is missing (the namespaces mapr searches)")
    return data


def mapr_top_links(value: str) -> list[Any]:
    """The top links of a mapr configuration: the README's for a preset, else one per menu."""
    text = value.strip()
    if not text.startswith(("[", "{")):
        return [MAPR_PRESETS[n.strip()][1] for n in dict.fromkeys(n.strip() for n in text.split(","))]
    out = []
    for item in mapr_entries(text):
        label = item["config"].get("label") or item["menu"]
        out.append([label, {"viewname": f"maprindex_{item['menu']}", "query_string": {"experimenter": -1}},
                    {"title": f"Find {label} annotations"}])
    return out


class Pins(Mapping_):
    """apps.versions: {app name: pip version specifier}; typed as figure==8.0.1, iviewer>=0.19."""

    name = "pins"
    widget = "text"

    def __init__(self):
        super().__init__("|".join(NAMES))

    def schema(self, q):
        return {"type": "object", "propertyNames": {"enum": list(NAMES)},
                "additionalProperties": {"type": "string", "maxLength": 100}, "maxProperties": len(NAMES)}

    def parse(self, q, text):
        out: dict[str, str] = {}
        for part in text.replace("\n", ",").replace(";", ",").split(","):
            part = part.strip()
            if not part:
                continue
            m = re.fullmatch(r"([a-z]+)\s*(.*)", part)
            if not m or m.group(1) not in NAMES:
                raise ValueError(f"{part!r} does not start with an app of {' | '.join(NAMES)}")
            msg = specifier(m.group(2))
            if msg:
                raise ValueError(f"{part!r}: {m.group(2)!r} {msg}")
            out[m.group(1)] = m.group(2)
        return out

    def allowed(self, q):
        return "a mapping of " + " | ".join(NAMES) + " to a version specifier such as ==8.0.1 or >=0.19"

    def as_text(self, q, value):
        return ", ".join(f"{k}{v}" for k, v in (value or {}).items())

    def item_problems(self, value):
        if not isinstance(value, dict):
            return []
        return [(f".{k}", f"{v!r} {specifier(v)}") for k, v in value.items() if isinstance(v, str) and specifier(v)]


CUSTOM = Records(
    Field("requirement", "Package (requirement)", check=requirement),
    Field("app", "Django app name", check=django_app),
    Field("open_with", "open_with entry (JSON)", required=False, check=open_with_entry),
    Field("top_links", "top_links entry (JSON)", required=False, check=top_link_entry),
    max_items=20,
)


def _enabled(name: str):
    return lambda a: name in (a.get("apps.enabled") or ())


def _any_app(a) -> bool:
    return bool(a.get("apps.enabled") or a.get("apps.custom"))


def _unix(a) -> bool:
    return a.get("platform", "unix") == "unix"


QUESTIONS = (
    Question("apps.enabled", "Which web apps should OMERO.web have?",
             "Installed into the OMERO.web environment with pip and configured as each README asks: "
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


# ---------------------------------------------------------------------------------------------- entries
@dataclass
class Entries:
    """What a set of answers wants in OMERO.web's config: the entries of each list key, the viewer, mapr's config."""

    lists: dict[str, list[Any]] = field(default_factory=lambda: {k: [] for k in LIST_KEYS})
    viewer: str | None = None
    mapr: list[Any] | None = None
    who: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in LIST_KEYS})  # the apps behind them

    def add(self, key: str, entry: Any, app: str) -> None:
        if entry not in self.lists[key]:
            self.lists[key].append(entry)
        if app not in self.who[key]:
            self.who[key].append(app)


def _json(text: Any) -> Any:
    if not isinstance(text, str) or not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def entries_of(a: Any) -> Entries:
    """The config the apps section of answers ``a`` asks for (the catalogue's entries, then the custom apps')."""
    out = Entries()
    if a is None or getattr(a, "platform", "unix") != "unix":
        return out
    apps = a.apps
    for name in apps.enabled:
        app = BY_NAME[name]
        out.add("omero.web.apps", app.django_app, name)
        for e in app.open_with:
            out.add("omero.web.open_with", e, name)
        for e in app.top_links:
            out.add("omero.web.ui.top_links", e, name)
        for e in app.center_plugins:
            out.add("omero.web.ui.center_plugins", e, name)
        if app.viewer_view and apps.iviewer_default_viewer:
            out.viewer = app.viewer_view
        if name == "mapr" and apps.mapr_config:
            try:
                out.mapr = mapr_entries(apps.mapr_config)
                if apps.mapr_top_links:
                    for e in mapr_top_links(apps.mapr_config):
                        out.add("omero.web.ui.top_links", e, "mapr")
            except ValueError:
                pass  # refused by validation
    for rec in apps.custom:
        app = rec.get("app")
        if not app:
            continue
        out.add("omero.web.apps", app, app)
        for key, field_ in (("omero.web.open_with", "open_with"), ("omero.web.ui.top_links", "top_links")):
            entry = _json(rec.get(field_))
            if entry is not None:
                out.add(key, entry, app)
    return out


def merge(current: list[Any], owned: list[Any], wanted: list[Any]) -> list[Any]:
    """The list ``current`` with the wizard's entries brought up to date: an entry it owned (``owned``) that is
    no longer wanted goes, a wanted entry that is missing is appended; every other entry stays, in its order
    (and an owned entry still wanted keeps its place)."""
    out = [x for x in current if x in wanted or x not in owned]
    out += [x for x in wanted if x not in out]
    return out


def adopts(a: Any, previous: Any) -> bool:
    """Whether the apps read back from the live config count as the wizard's: only on a deployment without
    saved answers whose answers say which apps they want (apps.enabled given, as `omerowizard answers` prints
    it and the interactive front ends always do). Answers that do not mention the apps leave apps added by hand
    alone."""
    return previous is None and "apps.enabled" in getattr(a, "given", ())


def previous_entries(a: Any, ctx: Any) -> Entries:
    """The entries the wizard owns before this run: those the last applied answers asked for. A deployment
    without saved answers (its apps added by hand) is read back as ``omerowizard answers`` reads it, and the
    entries the wizard would have written for the catalogue apps it finds count as its own when the answers
    say which apps they want (``adopts``); else it owns nothing yet."""
    if ctx.previous is not None:
        return entries_of(ctx.previous)
    if not adopts(a, ctx.previous):
        return Entries()
    return entries_of(_AppsView(inferred_apps(ctx.current)))


def inferred_apps(config: Mapping[str, str]) -> dict[str, Any]:
    """The catalogue apps of a live config as answers (the apps a deployment made by hand has)."""
    inferred: dict[str, Any] = {}
    FEATURE.infer(config, inferred, FEATURE.keys)
    apps = inferred.get("apps", {})
    apps["custom"] = []  # an app outside the catalogue: which entries are its own cannot be told
    return apps


class _AppsView:
    """Inferred apps answers (a plain mapping) read as the answers model reads them."""

    platform = "unix"

    def __init__(self, apps: Mapping[str, Any]):

        self.apps = SimpleNamespace(
            enabled=tuple(apps.get("enabled") or ()), iviewer_default_viewer=bool(apps.get("iviewer_default_viewer")),
            mapr_config=apps.get("mapr_config"), mapr_top_links=bool(apps.get("mapr_top_links", True)),
            custom=tuple(apps.get("custom") or ()))


def _base_list(key: str, a: Any, ctx: Any, w: Any) -> list[Any]:
    """The list the wizard's entries are merged into: extra_config's value when it gives the key (it then says
    what the administrator's entries are), OMERO's default when extra_config gave it last time and no longer
    does, else the value OMERO.web uses now (which is what `omero config append` appends to)."""
    extra = a.extra_config or {}
    if key in extra:
        value = extra[key]
        value = _json(value) if isinstance(value, str) else value
        return list(value) if isinstance(value, list) else []
    prev_extra = ctx.previous.extra_config if ctx.previous is not None else {}
    if key in prev_extra:
        return list(_json(w.keys[key].default) or [])
    if key in w.values:  # another feature (cors: corsheaders) already decided the value
        value = _json(w.values[key]) if w.values[key] is not None else _json(w.keys[key].default)
        return list(value) if isinstance(value, list) else []
    value = effective_json(w.keys, ctx.current, key)
    return list(value) if isinstance(value, list) else []


def _names(apps: list[str]) -> str:
    return ", ".join(apps)


# ---------------------------------------------------------------------------------------------- packages
@dataclass(frozen=True)
class Wanted:
    """One app's package as the answers want it."""

    name: str  # catalogue name, or the custom app's Django app name
    package: str  # distribution name (normalised)
    requirement: str  # what pip is given


def _split(req: str) -> tuple[str, str]:
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*)", req)
    return (m.group(1), m.group(2).strip()) if m else (req, "")


def distribution(requirement: str) -> str:
    """The distribution a requirement names, PEP 503-normalised (``omero._Figure>=8`` is ``omero-figure``)."""
    return venv_mod.normalise(_split(requirement)[0])


def wanted_packages(a: Any) -> list[Wanted]:

    if a is None or getattr(a, "platform", "unix") != "unix":
        return []
    out = []
    for name in a.apps.enabled:
        app = BY_NAME[name]
        spec = (a.apps.versions or {}).get(name, "")
        out.append(Wanted(name, normalise(app.package), app.package + spec))
    for rec in a.apps.custom:
        if rec.get("requirement") and rec.get("app"):
            dist, _ = _split(rec["requirement"])
            out.append(Wanted(rec["app"], normalise(dist), rec["requirement"].replace(" ", "")))
    return out


def satisfied(requirement: str, installed: str | None) -> bool | None:
    """Whether an installed version satisfies the requirement (None: cannot tell without pip)."""
    if installed is None:
        return False
    _, spec = _split(requirement)
    if not spec:
        return True
    try:
        return Version(installed) in SpecifierSet(spec, prereleases=True)
    except (InvalidSpecifier, InvalidVersion):
        return None


PINNED = ("omero-web", "omero-py", "django")  # kept at their installed versions while apps are installed


def pins(packages: Mapping[str, str]) -> list[str]:
    """Requirements that keep omero-web and its core at the installed versions: pip then chooses the newest
    release of each app that works with them, and never upgrades OMERO.web to install an app."""
    return [f"{n}=={packages[n]}" for n in PINNED if n in packages]


@dataclass(frozen=True)
class Measured:
    """pip's dry run for the apps to install: {distribution: version} it would install, or why it cannot."""

    requirements: tuple[str, ...]
    install: dict[str, str] = field(default_factory=dict)
    error: str | None = None


def to_install(a: Any, packages: Mapping[str, str]) -> list[Wanted]:
    return [p for p in wanted_packages(a) if satisfied(p.requirement, packages.get(p.package)) is not True]


def find_links(a: Any) -> str | None:
    """apps.find_links of the answers: the same sources for every pip run about the apps (the dry run, the
    install, an upgrade that reinstalls them, a rollback's reinstall). Wheels only (``venv.pip_args``)."""
    if a is None or getattr(a, "platform", "unix") != "unix":
        return None
    return a.apps.find_links or None


def sources_problem(link: str | None, venv: Any) -> str | None:
    """Why pip must not read packages from ``link`` for ``venv`` (before any pip runs, dry runs included):
    a local path that is not a directory, or, when root runs pip, a link, directory or package another user
    can write (what root's pip installs, root later runs). None when fine."""
    if not link or not link.startswith("/"):
        return None
    if not os.path.isdir(link):
        return f"apps.find_links {link} is not a directory"
    try:
        root = os.geteuid() == 0 and venv_mod.pip_user(Path(venv)) is None
    except InstallError as exc:
        return str(exc)
    why = venv_mod.source_problem(link) if root else None
    if why:
        return (f"apps.find_links {link} is not safe for root's pip: {why}. Make the directory and its wheels "
                "root's and not writable by others (chown -R root: and chmod 755/644)")
    return None


def measure(a: Any, venv: Any, packages: Mapping[str, str], log: Any = None) -> Measured | None:
    """pip's dry run for the apps the answers want and the environment lacks (I/O: runs while probing).
    Nothing is run when every app is installed at a version its requirement accepts."""

    todo = to_install(a, packages)
    if not todo:
        return None
    reqs = tuple(p.requirement for p in todo)
    why = sources_problem(find_links(a), venv)
    if why:  # refused before pip runs: a dry run builds what it cannot take as a wheel
        return Measured(reqs, error=why)
    try:
        found = venv_mod.dry_run(venv, [*reqs, *pins(packages)], log=log, find_links=find_links(a))
    except InstallError as exc:
        return Measured(reqs, error=str(exc))
    return Measured(reqs, found)


def removed_apps(a: Any, ctx_previous: Any, current: Mapping[str, str]) -> list[Wanted]:
    """The apps the wizard installed before (the last applied answers, else those read back from the config)
    that the answers no longer want."""
    if ctx_previous is not None:
        before = wanted_packages(ctx_previous)
    elif adopts(a, ctx_previous):
        before = wanted_packages(_AppsVersions(inferred_apps(current)))
    else:
        before = []
    now = {p.package for p in wanted_packages(a)}
    return [p for p in before if p.package not in now]


class _AppsVersions(_AppsView):
    def __init__(self, apps):
        super().__init__(apps)
        self.apps.versions = {}


def required_by(venv: Any, package: str) -> list[str]:
    """The installed distributions that require ``package`` (read from their metadata in this process, through
    safefs: the environment may belong to the OMERO.web user)."""

    out = []
    for dist in distributions.read(venv).distributions:
        for req in dist.requires:
            if ";" in req and "extra ==" in req:
                continue
            if normalise(_split(req)[0]) == package:
                out.append(normalise(dist.name))
                break
    return sorted(set(out))


class Apps(Feature):
    name = "apps"
    steps = (("apps", "Web apps"),)
    keys = {
        # web apps are added by the apps section only (corsheaders by cors.mode)
        "omero.web.apps": Key("[]", "json", "apps.enabled or apps.custom",
                              static="an added app brings its own static files"),
        # lists an administrator may set in extra_config too: the wizard adds and removes only its own entries
        "omero.web.open_with": Key(DEFAULT_OPEN_WITH, "json", "apps.enabled", shared=True),
        "omero.web.ui.top_links": Key(DEFAULT_TOP_LINKS, "json", "apps.enabled", shared=True),
        "omero.web.ui.center_plugins": Key("[]", "json", "apps.enabled", shared=True),
        VIEWER_KEY: Key(DEFAULT_VIEWER, "str", "apps.iviewer_default_viewer", shared=True),
        MAPR_KEY: Key("[]", "json", "apps.mapr_config"),
    }
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
        apps_list = effective_json(keys, config, "omero.web.apps") or []
        apps_list = [x for x in apps_list if isinstance(x, str)]
        section = out.setdefault("apps", {})
        enabled = [app.name for app in CATALOGUE if app.django_app in apps_list]
        section["enabled"] = enabled
        if "iviewer" in enabled:
            section["iviewer_default_viewer"] = effective(keys, config, VIEWER_KEY) == BY_NAME["iviewer"].viewer_view
        else:
            section.pop("iviewer_default_viewer", None)
        if "mapr" in enabled:
            mapr = effective_json(keys, config, MAPR_KEY)
            if isinstance(mapr, list) and mapr:
                names = [n for n, (entry, _) in MAPR_PRESETS.items() for m in mapr if m == entry]
                text = ", ".join(names) if len(names) == len(mapr) else json.dumps(mapr)
                section["mapr_config"] = text
                links = effective_json(keys, config, "omero.web.ui.top_links")
                links = links if isinstance(links, list) else []  # config.xml may hold anything: not a list, none
                try:
                    section["mapr_top_links"] = all(e in links for e in mapr_top_links(text))
                except ValueError:
                    pass
        else:
            section.pop("mapr_config", None)
            section.pop("mapr_top_links", None)
        known = {app.django_app for app in CATALOGUE} | {"corsheaders"}
        open_with = effective_json(keys, config, "omero.web.open_with") or []
        venv = (out.get("omero") or {}).get("venv")
        custom = []
        for name in apps_list:
            if name in known or django_app(name):
                continue
            rec: dict[str, Any] = {"requirement": distribution_of(venv, name), "app": name}
            own = [e for e in open_with if isinstance(e, list) and e and e[0] == name]
            if own:
                rec["open_with"] = json.dumps(own[0])
            custom.append(rec)
        section["custom"] = custom

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

    def preflight(self, plan):
        if not (plan.packages or plan.upgrade):
            return []
        why = sources_problem(find_links(plan.answers), plan.answers.omero.venv)
        if why is None or any(why in refusal for refusal in plan.refusals):  # the plan says it already
            return []
        return [Check("web apps", False, why)]


def distribution_of(venv: str | None, module: str) -> str:
    """The distribution that installs the top-level module ``module`` in ``venv`` (its top_level.txt or RECORD),
    else the module's name with '-' for '_' (what OME's apps use: omero_figure is omero-figure)."""

    guess = module.split(".")[0].replace("_", "-")
    if not venv:
        return guess
    top = module.split(".")[0]
    # the environment may belong to the OMERO.web user: never follow a link or block on a FIFO there
    for dist in distributions.read(venv).distributions:
        try:
            top_level = dist.text("top_level.txt")
            record = dist.text("RECORD") if top_level is None else None
        except (OSError, safefs.UnsafePath):
            continue
        names = top_level.split() if top_level is not None else \
            {line.split("/", 1)[0] for line in (record or "").splitlines() if "/" in line}
        if top in names:
            return dist.info.rsplit("/", 1)[-1].removesuffix(".dist-info").rsplit("-", 1)[0].replace("_", "-")
    return guess


def not_enabled(packages: Mapping[str, str], config: Mapping[str, str], sites=()) -> dict[str, str]:
    """Web apps installed in the environment whose Django app is not in omero.web.apps, by their catalogue name:
    {name: installed version}."""

    apps = effective_json(FEATURE.keys, config, "omero.web.apps") or []
    out: dict[str, str] = {}
    for app in CATALOGUE:
        version = packages.get(normalise(app.package))
        if version is not None and app.django_app not in apps:
            out[app.name] = version
    return out


FEATURE = Apps()
