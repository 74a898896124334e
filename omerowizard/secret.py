"""Secrets are a type: a ``Secret`` holds a password or a key and shows itself as ``****`` wherever it is
printed, formatted, logged or put in a message; only ``reveal()`` gives the value, for the few places that
write it (config.xml, the saved answers, Ansible's vault). The idea is pydantic's ``SecretStr`` (posting
keeps its passwords that way): masking by type, instead of remembering to call a mask function at every
site, or a registry of the values seen so far (which misses a secret from an older backup or from
config.xml).

A URL is secret only by its password (``redis://:PASSWORD@host:6379/0``): ``mask_urls`` hides it in any
text. This module imports nothing of omerowizard's, so the question types and the features use it; which
keys are secret (the features say) is ``masking``'s business.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "****"
MIN_SECRET = 4  # a shorter password is refused by the answers (it would be guessed, and masks nothing)

# the authority of a URL: after "://", up to the path, query, fragment, a blank, a quote or a backslash
_AUTHORITY = re.compile(r"://([^/?#\s\"'\\]*)")


class Secret:
    """A secret value. ``str()``, ``repr()``, f-strings and ``%`` show ``****``; equality and hashing use the
    value, so answers that hold the same secret compare equal. Not a ``str``: code that needs the value says
    so with ``reveal()``, and code that forgets shows ``****`` instead of the secret."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError(f"a Secret holds text, not {type(value).__name__}")
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """The value itself: only for writing it where it belongs."""
        return self._value

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a Secret is read-only")

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __format__(self, spec: str) -> str:
        return format(MASK, spec)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self):  # pickling (multiprocessing, copy) keeps the type
        return (Secret, (self._value,))


def reveal(value: Any) -> Any:
    """``value`` with every Secret in it (at any depth of lists, tuples and mappings) replaced by its value."""
    if isinstance(value, Secret):
        return value.reveal()
    if isinstance(value, (list, tuple)):
        return type(value)(reveal(v) for v in value)
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    return value


def mask_urls(text: str) -> str:
    """Hide the password of every URL in ``text``, such as ``redis://:secret@host:6379/0``.

    The password is everything between ``://user:`` and the last ``@`` of the authority (a password may
    hold ``@``, as it does for urllib and redis-py). One pass: linear in the text."""
    if "://" not in text:
        return text
    out: list[str] = []
    last = 0
    for m in _AUTHORITY.finditer(text):
        auth = m.group(1)
        at = auth.rfind("@")
        colon = auth.find(":", 0, at) if at > 0 else -1
        if colon < 0:
            continue
        start = m.start(1) + colon + 1
        out.append(text[last:start])
        out.append(MASK)
        last = m.start(1) + at
    out.append(text[last:])
    return "".join(out)


def has_url_password(text: str) -> bool:
    return "://" in text and mask_urls(text) != text


def shown(value: Any, secret: bool = False) -> str:
    """A value as it may be shown: a secret (``secret``, or a Secret) as ``****``; any other value with the
    passwords of its URLs hidden."""
    if secret or isinstance(value, Secret):
        return MASK
    return mask_urls(str(value))
