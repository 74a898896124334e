"""The catalogue: every question the wizard asks, gathered from the feature modules
(``omerowizard.features``), which declare them. The answers-file loader, the JSON Schema, the
Textual app and the plain prompts all read it, so a question is added in its feature's module.
"""

from __future__ import annotations

from omerowizard.features import BY_KEY, CATALOGUE
from omerowizard.features import STEPS as STEP_TITLES
from omerowizard.features.conditions import LOOPBACK_NAMES, Flat, host_name
from omerowizard.model.qtypes import Question

__all__ = ["BY_KEY", "CATALOGUE", "LOOPBACK_NAMES", "STEPS", "STEP_TITLES", "Question", "applies", "host_name",
           "questions_for"]

STEPS: tuple[str, ...] = tuple(step for step, _ in STEP_TITLES)


def questions_for(step: str) -> list[Question]:
    return [q for q in CATALOGUE if q.step == step]


def applies(q: Question, flat: Flat) -> bool:
    return q.when(flat)
