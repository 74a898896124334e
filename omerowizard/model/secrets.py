"""Secrets: masked wherever they are shown (plans, reviews, the command log, omero's output)."""

from __future__ import annotations

import re

# the authority of a URL: after "://", up to the path, query, fragment, a blank, a quote or a backslash
_AUTHORITY = re.compile(r"://([^/?#\s\"'\\]*)")


_SECRETS: set[str] = set()
MIN_SECRET = 4  # shorter values would mask unrelated text: answers refuse shorter secrets


def register_secret(value: str) -> None:
    """A secret answer (a public user's password): masked from now on wherever mask_secrets is used
    (plans, reviews, the command log, omero's output). A URL is masked by its password only."""
    if value and "://" not in value and len(value) >= MIN_SECRET:
        _SECRETS.add(value)


def mask_secrets(text: str) -> str:
    """Hide passwords in URLs such as ``redis://:secret@host:6379/0``, and every registered secret.

    The password is everything between ``://user:`` and the last ``@`` of the authority (a
    password may hold ``@``, as it does for urllib and redis-py). One pass: linear in the text."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "****")
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
        out.append("****")
        last = m.start(1) + at
    out.append(text[last:])
    return "".join(out)
