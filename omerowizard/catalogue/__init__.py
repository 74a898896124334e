"""The catalogue: the features, in the order their questions are asked, and what follows from them.

Adding a feature: write its module (see ``omerowizard.features.base.Feature``) and add it to
``FEATURES``; the questions, the answers model and schema, plan, infer, preflight, the references and
the front ends' steps follow from it. Nothing below this package knows the list of features.
"""

from __future__ import annotations

from omerowizard.features import (
    application_server,
    apps,
    base,
    cors,
    extra,
    https,
    install,
    nodes,
    public,
    servers,
    sessions,
    web_server,
)
from omerowizard.features.base import Feature, Key
from omerowizard.features.conditions import Flat
from omerowizard.model.qtypes import Question

FEATURES: tuple[Feature, ...] = (
    install.FEATURE,
    web_server.FEATURE,
    https.FEATURE,
    application_server.FEATURE,
    sessions.FEATURE,
    cors.FEATURE,
    servers.FEATURE,
    public.FEATURE,
    apps.FEATURE,
    extra.FEATURE,
    nodes.FEATURE,
    install.START,
)

CATALOGUE: tuple[Question, ...] = tuple(q for f in FEATURES for q in f.questions)
BY_KEY: dict[str, Question] = {q.key: q for q in CATALOGUE}
KEYS: dict[str, Key] = {k: spec for f in FEATURES for k, spec in f.keys.items()}
# the front ends' steps, in order (the Advanced step holds every question of the step "advanced")
STEPS: tuple[tuple[str, str], ...] = (*(s for f in FEATURES for s in f.steps), ("advanced", "Advanced settings"))
SECRET_KEYS = {k for k, spec in KEYS.items() if spec.secret}


def owner_of(config_key: str) -> str | None:
    """The answer that sets an OMERO config key a feature owns (None: no feature owns it)."""
    return base.owner_of(KEYS, config_key)


def optional_sections() -> dict[str, str]:
    return {path: key for f in FEATURES for path, key in f.optional_sections}

STEP_IDS: tuple[str, ...] = tuple(step for step, _ in STEPS)


def questions_for(step: str) -> list[Question]:
    return [q for q in CATALOGUE if q.step == step]


def applies(q: Question, flat: Flat) -> bool:
    return q.when(flat)
