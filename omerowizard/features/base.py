"""What a feature module declares, and the small types they share.

A feature (sessions, CORS, HTTPS, ...) is one module under ``omerowizard.features`` holding one
``Feature``: its questions, the OMERO config keys it owns (with omero-web's default and type),
the config it wants given the answers and the current config, the Python packages it needs,
how its answers are read back from a live config, the rules that join its answers, and its
preflight checks. Plan, infer, the answers model and schema, the reference table and the
front ends iterate ``omerowizard.features.FEATURES``; nothing else knows a feature's keys.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from omerowizard.model.health import Finding, HealthContext
from omerowizard.model.qtypes import Question
from omerowizard.model.secrets import Secret

Flat = Mapping[str, Any]
ProblemSink = Callable[..., None]  # problem(key, message, allowed="", at=None): at, the answer whose line to name


@dataclass(frozen=True)
class Key:
    """One OMERO config key a feature owns: omero-web's default and how values compare."""

    default: str | None
    type: str = "str"  # str | bool | int | json
    question: str = ""  # the answer that sets it (named when extra_config tries to)
    secret: bool = False  # its value is masked wherever it is shown
    shared: bool = False  # extra_config may set it too: the feature then adds its own entries to that value
    # the effect of a change on a running OMERO.web: every key is read by omeroweb.settings when a worker imports
    # Django (gunicorn runs without --preload), so replacing the workers applies it without dropping a request;
    # ``restart`` says why a key needs a new gunicorn master instead (its command line is built from it)
    restart: str = ""
    static: str = ""  # why a change needs the static files collected before new workers serve pages


@dataclass
class Check:
    """One preflight check. A warning is shown (review, dry run) but does not stop the apply."""

    name: str
    ok: bool
    message: str = ""
    warning: bool = False


@dataclass
class Context:
    """What a feature may read while planning (measured by the probe; no I/O here)."""

    current: Mapping[str, str]  # the stored OMERO config
    django: tuple[int, ...] = (5, 2)
    previous: Any = None  # the answers of the last applied run of this deployment, or None


class Wanted:
    """The value every owned key should have (None: OMERO's default, i.e. unset), and why."""

    def __init__(self, keys: Mapping[str, Key]):
        self.keys = keys
        self.values: dict[str, str | None] = {}
        self.why: dict[str, str] = {}
        self.notes: list[str] = []

    def want(self, key: str, value: Any, why: str) -> None:
        text = to_text(value)
        if text is not None and same(self.keys, key, text, None):
            text = None  # equals OMERO's default: keep the key unset
        self.values[key] = text
        self.why[key] = why


def to_text(value: Any) -> str | None:
    """A value as config.xml holds it (a Secret: its value; this is where it is written)."""
    if isinstance(value, Secret):
        return value.reveal()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(list(value) if isinstance(value, tuple) else value)
    if value is None:
        return None
    return str(value)


def canonical(keys: Mapping[str, Key], key: str, value: str | None) -> Any:
    """A value as OMERO.web understands it, for comparing (``True`` equals ``true``)."""
    k = keys.get(key)
    if value is None:
        value = k.default if k else None
    if value is None:
        return None
    kind = k.type if k else "str"
    if kind == "bool":
        return value.strip().lower() == "true"
    if kind == "int":
        try:
            return int(value)
        except ValueError:
            return value
    try:
        return json.loads(value) if kind == "json" or value[:1] in "[{" else value
    except ValueError:
        return value


def same(keys: Mapping[str, Key], key: str, a: str | None, b: str | None) -> bool:
    return canonical(keys, key, a) == canonical(keys, key, b)


def effective(keys: Mapping[str, Key], config: Mapping[str, str], key: str) -> str | None:
    """The value OMERO.web uses: the stored one, else its default."""
    k = keys.get(key)
    return config.get(key, k.default if k else None)


def effective_json(keys: Mapping[str, Key], config: Mapping[str, str], key: str) -> Any:
    value = effective(keys, config, key)
    try:
        return json.loads(value) if value else None
    except ValueError:
        return None


def owner_of(keys: Mapping[str, Key], config_key: str) -> str | None:
    """The answer that sets an OMERO config key a feature owns (None: no feature owns it, or extra_config may
    set it too)."""
    spec = keys.get(config_key)
    return spec.question if spec and not spec.shared else None


class Feature:
    """A feature module subclasses this and overrides the hooks it needs; the defaults do nothing."""

    name: str = ""
    questions: tuple[Question, ...] = ()
    keys: dict[str, Key] = {}
    # (step id, title) of the front ends' steps this feature adds, in order
    steps: tuple[tuple[str, str], ...] = ()
    # (section path, the key that must have a value for the section to exist): ``web_server.https``
    # is None in the answers model when no certificate is given
    optional_sections: tuple[tuple[str, str], ...] = ()

    def wanted(self, a: Any, ctx: Context, w: Wanted) -> None:
        """Say (``w.want``) the value of each key this feature owns."""

    def packages(self, a: Any) -> list[tuple[str, str]]:
        """(distribution, why) of each package the answers need in the OMERO.web environment."""
        return []

    def infer(self, config: Mapping[str, str], out: dict[str, Any], keys: Mapping[str, Key]) -> None:
        """Overlay the nested answers ``out`` with what the live config says."""

    def cross_checks(self, flat: Flat, given: Flat, bad: set[str], problem: ProblemSink,
                     keys: Mapping[str, Key]) -> None:
        """Rules that join several answers (each problem names one key); ``keys``: every feature's config keys."""

    def preflight(self, plan: Any) -> list[Check]:
        """Checks before anything changes (cheap; a warning does not stop the apply)."""
        return []

    def verify_steps(self, plan: Any) -> list[str]:
        """The steps of ``verify`` for this plan (its checklist shows them); none by default."""
        return []

    def verify(self, run: Any) -> None:
        """Check, once OMERO.web runs with the changes, that what this feature configured works (raise ApplyError:
        the run restores everything); ``run`` is the running apply (model.change.Run)."""

    def health(self, ctx: HealthContext) -> list[Finding]:
        """Day two (``omerowizard status`` and ``doctor``): check that what this feature configured still works on
        the running deployment, reading the machine through ``omerowizard.system`` and changing nothing; each
        problem with its fix. ``ctx.deep`` is ``doctor``: the slower diagnoses too. None by default."""
        return []
