"""Secrets are a type, and every text that is shown hides them.

A ``Secret`` holds a password or a key and shows itself as ``****`` wherever it is printed, formatted,
logged or put in a message; only ``reveal()`` gives the value, for the few places that write it
(config.xml, the saved answers, Ansible's vault). The idea is pydantic's ``SecretStr`` (posting keeps its
passwords that way): masking by type, instead of remembering to call a mask function at every site, or a
registry of the values seen so far (which misses a secret from an older backup or from config.xml).

Which values are secret is known by what they are, not because some run saw them: an OMERO config key
whose name says so (``...password``, ``...secret...``, ``...token``; the keys the features mark secret are
named so), and the password of any URL (``redis://:PASSWORD@host:6379/0``). So a secret from an older
backup, from config.xml (the OMERO.web user can write it) or from another run is masked like the current
one: in the plan, the review, rollback, ``--json``, the command log, the Ansible diff and error messages.
The answers' own secret questions are masked by the catalogue (``catalogue/masking.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
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


# the last part of a config key that names a secret (extra_config keys no feature declares)
_SECRET_NAME = re.compile(r"password|passwd|secret|token|credential", re.IGNORECASE)
# an OMERO config key in a text (a properties line, a `config set` command, a JSON member, a log line), then
# what separates it from its value: "=", ": ", or blanks; the value runs to the end of the line
_KEY_IN_TEXT = re.compile(r"(?<![A-Za-z0-9_.-])(omero\.[A-Za-z0-9_.-]+)(['\"]?)(=|:[ \t]*|[ \t]+)(?=\S)([^\n]*)")
EXTRA = "extra_config."


def config_secret(key: str) -> bool:
    """Whether the OMERO config key ``key`` holds a secret: by its name (every key a feature marks secret is
    named so: tests/unit/test_secret_type.py keeps them in step), so an extra_config key no feature knows
    (``omero.web.ldap.password``) is masked too."""
    return bool(_SECRET_NAME.search(key.rsplit(".", 1)[-1]))


def config_value(key: str, value: Any) -> str:
    """An OMERO config value as it may be shown."""
    return shown(value, config_secret(key))


def mask_text(text: str, known: Iterable[str] = ()) -> str:
    """Any text that is shown or logged (a command line, what was fed to omero, omero's output, an error
    message): the value after every secret config key is masked to the end of its line, every URL's
    password, and each of the ``known`` secret values wherever it appears."""
    for value in sorted({k for k in known if isinstance(k, str) and len(k) >= MIN_SECRET}, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    if "omero." in text:
        text = _KEY_IN_TEXT.sub(_mask_match, text)
    return mask_urls(text)


def _mask_match(m: re.Match) -> str:
    if not config_secret(m.group(1)) or m.group(4) in (MASK, ""):
        return m.group(0)
    return m.group(1) + m.group(2) + m.group(3) + MASK


def mask_argv(argv: Iterable[Any]) -> list[str]:
    """A command line as it may be shown: the argument after a secret config key (``config set -- KEY
    VALUE``) masked, and every URL's password."""
    out: list[str] = []
    after_key = False
    for arg in argv:
        text = str(arg) if not isinstance(arg, Secret) else MASK
        out.append(MASK if after_key else mask_urls(text))
        after_key = config_secret(text) and text.startswith("omero.")
    return out
