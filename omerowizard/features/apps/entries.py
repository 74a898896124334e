"""What the apps want in OMERO.web's config, and which entries of its lists are the wizard's: those the apps of the
last applied answers asked for. On a rerun an app that was removed loses exactly its entries; every other
entry stays, in its order."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from omerowizard.features.apps.catalogue import (
    BY_NAME,
    CATALOGUE,
    KEYS,
    LIST_KEYS,
    MAPR_KEY,
    MAPR_PRESETS,
    VIEWER_KEY,
    django_app,
    mapr_entries,
    mapr_top_links,
)
from omerowizard.features.apps.packages import Wanted, distribution_of, wanted_packages
from omerowizard.features.base import Key, effective, effective_json


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
    infer(config, inferred, KEYS)
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


def infer(config: Mapping[str, str], out: dict[str, Any], keys: Mapping[str, Key]) -> None:
    """Read the apps back from a live config into the nested answers ``out`` (the feature's ``infer``)."""
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
