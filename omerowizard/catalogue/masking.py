"""The answers as they may be shown: a secret question's value masked as its type shows it."""

from __future__ import annotations

from typing import Any

from omerowizard.catalogue import BY_KEY
from omerowizard.model.secrets import config_value, shown

EXTRA = "extra_config."


def answer_value(key: str, value: Any) -> str:
    """An answer (its dotted key in the answers file) as it may be shown: a secret question's value masked
    as its type shows it (a Redis URL by its password only), an extra_config key by its config key."""
    q = BY_KEY.get(key)
    if q is not None and q.secret and value not in (None, ""):
        return q.display(value)
    if key.startswith(EXTRA):
        return config_value(key[len(EXTRA):], value)
    return shown(value)
