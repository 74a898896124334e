"""Other omero.web.* settings, given as a mapping in an answers file (``extra_config``)."""

from __future__ import annotations

import ast
import difflib
import json
import os
import stat
from pathlib import Path

from omerowizard.features.apps.catalogue import APPS_HINT
from omerowizard.features.base import Feature, owner_of
from omerowizard.model import validators as v
from omerowizard.model.qtypes import Mapping_, Question
from omerowizard.system import distributions, locations, safefs

MAPPINGS = ("CUSTOM_SETTINGS_MAPPINGS", "DEPRECATED_SETTINGS_MAPPINGS", "DEVELOPMENT_SETTINGS_MAPPINGS")
PARSER_TYPES = {"parse_boolean": "bool", "int": "int", "leave_none_unset_int": "int", "json.loads": "json"}
CACHE_FORMAT = 1


def _settings_of(text: str) -> dict[str, str]:
    """{key: type} of the settings a settings.py declares in its *_SETTINGS_MAPPINGS (read with ast, never run):
    a mapping's value is [NAME, default, parser, help]; the parser says the type (bool, int, json, else str)."""
    out: dict[str, str] = {}
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return out
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
                and any(isinstance(t, ast.Name) and t.id in MAPPINGS for t in node.targets)):
            continue
        for k, val in zip(node.value.keys, node.value.values):
            if isinstance(k, ast.Constant) and isinstance(k.value, str):
                parser = ast.unparse(val.elts[2]) if isinstance(val, ast.List) and len(val.elts) > 2 else ""
                out[k.value] = PARSER_TYPES.get(parser, "str")
    return out


def declared_settings(venv: str) -> tuple[str, dict[str, str], set[str]] | None:
    """(omero-web version, {key: type} of every setting omero-web and its installed apps declare, the apps'
    key prefixes) read from the packages installed in the OMERO.web environment; None when omero-web is not
    installed there. Cached per omero-web version (and set of installed apps) in omerowizard's cache."""
    # the environment may belong to the OMERO.web user: list it without following a link it planted
    found = next((f for f in map(_packages_with_settings, distributions.site_packages(venv)) if "omeroweb" in f[1]),
                 None)
    if found is None:
        return None
    site_dir, packages, names = found
    site = Path(site_dir)
    version = next((n.removesuffix(".dist-info").split("-")[1] for n in names
                    if n.startswith("omero_web-") and n.endswith(".dist-info")), "?")
    apps = sorted(p for p in packages if p != "omeroweb")
    cache = locations.cache_dir() / f"omero-web-settings-{version}.json"
    try:
        data = json.loads(cache.read_text())
        if data.get("format") == CACHE_FORMAT and data.get("apps") == apps and data.get("venv") == str(venv):
            return version, data["settings"], set(data["prefixes"])
    except (OSError, ValueError, KeyError, AttributeError):
        pass
    settings: dict[str, str] = {}
    prefixes: set[str] = set()
    for name in ["omeroweb", *apps]:
        try:
            raw = safefs.read_bytes(str(site / name / "settings.py"), limit=2 * 1024 * 1024)
        except (OSError, safefs.UnsafePath):
            raw = None
        text = raw.decode("utf-8", "replace") if raw else ""
        if name != "omeroweb" and "SETTINGS_MAPPINGS" not in text:
            continue
        settings.update(_settings_of(text))
        if name != "omeroweb":  # a web app's own settings: omero.web.<app>.* (omero_figure -> omero.web.figure.)
            prefixes.add(f"omero.web.{name.removeprefix('omero_')}.")
    try:
        cache.write_text(json.dumps({"format": CACHE_FORMAT, "venv": str(venv), "apps": apps, "settings": settings,
                                     "prefixes": sorted(prefixes)}))
    except OSError:
        pass
    return version, settings, prefixes


def _packages_with_settings(site: str) -> tuple[str, list[str], list[str]]:
    """(site, the packages in ``site`` that have a settings.py, every name in ``site``), listed through directory
    descriptors: a link or a FIFO there is passed over, never followed or opened."""
    with_settings: list[str] = []
    try:
        with safefs.directory(site) as d:
            names = sorted(os.listdir(d))
            for name in names:
                try:
                    sub = safefs.open_directory_at(d, name, f"{site}/{name}")
                except (OSError, safefs.UnsafePath):
                    continue
                try:
                    st = os.stat("settings.py", dir_fd=sub, follow_symlinks=False)
                except OSError:
                    continue
                finally:
                    os.close(sub)
                if stat.S_ISREG(st.st_mode):
                    with_settings.append(name)
    except (OSError, safefs.UnsafePath):
        return site, [], []
    return site, with_settings, names


def type_problem(kind: str, value: object) -> str | None:
    """Why ``value`` is not of the type omero-web parses the setting with (None: it is)."""
    if kind == "bool":
        if isinstance(value, bool) or (isinstance(value, str) and value.strip().lower() in {"true", "false"}):
            return None
        return f"{_short(value)} is not a boolean"
    if kind == "int":
        if (isinstance(value, int) and not isinstance(value, bool)) or \
                (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
            return None
        return f"{_short(value)} is not an integer"
    if kind == "json" and isinstance(value, str):
        try:
            json.loads(value)
        except ValueError as exc:
            return f"{_short(value)} is not JSON ({exc.msg})"
    return None


ALLOWED_TYPE = {"bool": "true | false", "int": "an integer", "json": "a list, a mapping or JSON text"}


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Extra(Feature):
    name = "extra"
    questions = (
        Question("extra_config", "Other omero.web.* settings",
                 "Any other OMERO.web configuration key and its value; lists and mappings are stored as JSON.",
                 Mapping_(v.EXTRA_KEY.pattern), "advanced", default=()),
    )

    def wanted(self, a, ctx, w):
        shared = {k for k, spec in w.keys.items() if spec.shared}  # their feature merges extra_config's value itself
        for key, value in a.extra_config.items():
            if key not in shared:
                w.want(key, value, "extra_config")
        previous = ctx.previous.extra_config if ctx.previous is not None else {}
        for key in previous:
            if key not in a.extra_config and key not in shared:
                w.values[key] = None
                w.why[key] = "removed from extra_config"

    def cross_checks(self, flat, given, bad, problem, keys):
        value = given.get("extra_config")
        if not isinstance(value, dict) or "extra_config" in bad:
            return
        for k, item in value.items():
            key = f"extra_config.{k}"
            if key in bad:
                continue
            if v.extra_key(k):  # the schema's pattern lets a final line break through
                problem(key, f"{_short(k)} is not an omero.web.* key", "keys such as omero.web.login_logo")
                continue
            msg = v.config_value(item)
            if msg:
                problem(key, msg)
            question = owner_of(keys, k)
            if question:
                problem(key, f"is set by the answer {question}, not by extra_config",
                        APPS_HINT if k == "omero.web.apps" else f"remove it from extra_config and answer {question}")
                continue
            self._check_declared(flat, key, k, item, problem)

    @staticmethod
    def _check_declared(flat, key, k, item, problem) -> None:
        if flat.get("platform") != "unix" or not flat.get("omero.venv"):
            return
        found = declared_settings(flat["omero.venv"])
        if found is None:  # not installed yet: checked by the run after the installation
            return
        version, settings, prefixes = found
        if k not in settings and not any(k.startswith(p) for p in prefixes):
            close = difflib.get_close_matches(k, sorted(settings), n=1, cutoff=0.8)
            hint = f"; did you mean {close[0]}?" if close else ""
            problem(key, f"is not a setting of omero-web {version} or of an installed web app{hint}",
                    "a key `omero config` documents for this omero-web (omero.web.*), or an installed app's own "
                    "omero.web.<app>.* settings")
            return
        msg = type_problem(settings.get(k, "str"), item)
        if msg:
            problem(key, f"{msg}: omero-web {version} reads {k} as {settings[k]}", ALLOWED_TYPE[settings[k]])


FEATURE = Extra()
