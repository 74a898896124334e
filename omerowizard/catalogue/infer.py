"""Answers that describe an existing deployment, read back from its OMERO config.

Used when there are no saved answers (a deployment made by hand), so the wizard
prefills from what is really there and a rerun changes only what the user changes.
Each feature reads back its own answers (``Feature.infer``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from omerowizard.catalogue import FEATURES, KEYS


def answers_from_config(config: Mapping[str, str], base: Mapping[str, Any]) -> dict[str, Any]:
    """Nested answers: ``base`` (saved answers or defaults) overlaid with what the config says."""
    out: dict[str, Any] = json.loads(json.dumps(base))
    for feature in FEATURES:
        feature.infer(config, out, KEYS)
    return out
