"""From answers to OMERO config keys: each feature module says the keys it owns (with omero-web's
default and type) and the values it wants; this module gathers them.

``DEFAULTS`` are omero-web's own defaults for every key the wizard manages (from
``omeroweb/settings.py``; an e2e test checks them against the installed package). A key
whose wanted value equals its default is left unset, so a deployment made by the wizard
stores only what differs from OMERO's defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omerowizard.catalogue import FEATURES, KEYS
from omerowizard.features import base
from omerowizard.features.base import Context, Wanted
from omerowizard.features.cors import CORS_MIDDLEWARE, DEFAULT_MIDDLEWARE  # noqa: F401 (re-exported)
from omerowizard.features.sessions import (  # noqa: F401 (re-exported)
    CACHE_ENGINE,
    DUMMY_CACHES,
    FILE_ENGINE,
    OLD_MEMCACHED_BACKEND,
    PYMEMCACHE_BACKEND,
    REDIS_BACKEND,
)

DEFAULTS: dict[str, str | None] = {k: spec.default for k, spec in KEYS.items()}
JSON_KEYS = {k for k, spec in KEYS.items() if spec.type == "json"}
BOOL_KEYS = {k for k, spec in KEYS.items() if spec.type == "bool"}
INT_KEYS = {k for k, spec in KEYS.items() if spec.type == "int"}


def canonical(key: str, value: str | None) -> Any:
    """A value as OMERO.web understands it, for comparing (``True`` equals ``true``)."""
    return base.canonical(KEYS, key, value)


def same(key: str, a: str | None, b: str | None) -> bool:
    return base.same(KEYS, key, a, b)


def effective(config: Mapping[str, str], key: str) -> str | None:
    """The value OMERO.web uses: the stored one, else its default."""
    return base.effective(KEYS, config, key)


def effective_json(config: Mapping[str, str], key: str) -> Any:
    return base.effective_json(KEYS, config, key)


def wanted_config(a, current: Mapping[str, str], django: tuple[int, ...] = (5, 2), previous=None) -> Wanted:
    """What every feature wants, given the answers, the stored config and the last applied answers."""
    w = Wanted(KEYS)
    ctx = Context(current, django, previous)
    for feature in FEATURES:
        feature.wanted(a, ctx, w)
    return w


def packages(a) -> list[tuple[str, str]]:
    """(distribution, why) of every package the answers need in the OMERO.web environment."""
    out: list[tuple[str, str]] = []
    for feature in FEATURES:
        out += feature.packages(a)
    return out
