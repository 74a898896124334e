"""The web apps the wizard knows (omero-figure, omero-iviewer, omero-mapr, omero-parade, omero-fpbioimage), each with
the entries its README asks for, and the checks of the answers that name apps."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from omerowizard.features.base import Key
from omerowizard.model.qtypes import Field, Mapping_, Records


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


KEYS: dict[str, Key] = {
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
