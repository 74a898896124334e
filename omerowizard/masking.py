"""Which values are secret, by key, and how every text that is shown hides them.

A value is secret because of what it is, not because some run saw it: a config key the features mark
secret (``Key(secret=True)``: ``omero.web.public.password``, ``omero.web.secret_key``) or whose name says
so (``...password``, ``...secret...``, ``...token``: an ``extra_config`` key no feature knows), an answer
whose question is secret, and the password of any URL. So a secret from an older backup, from config.xml
(the OMERO.web user can write it) or from another run's answers is masked like the current one: in the
plan, the review, ``rollback`` (``--list``, ``--dry-run``), ``--json``, the command log, the Ansible
module's diff and error messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from omerowizard import features  # the package: features -> apps -> venv -> omero -> here
from omerowizard.secret import MASK, MIN_SECRET, Secret, mask_urls, shown

# the last part of a config key that names a secret (extra_config keys no feature declares)
_SECRET_NAME = re.compile(r"password|passwd|secret|token|credential", re.IGNORECASE)
# an OMERO config key in a text (a properties line, a `config set` command, a JSON member, a log line), then
# what separates it from its value: "=", ": ", or blanks; the value runs to the end of the line
_KEY_IN_TEXT = re.compile(r"(?<![A-Za-z0-9_.-])(omero\.[A-Za-z0-9_.-]+)(['\"]?)(=|:[ \t]*|[ \t]+)(?=\S)([^\n]*)")
EXTRA = "extra_config."


def config_secret(key: str) -> bool:
    """Whether the OMERO config key ``key`` holds a secret."""
    return key in features.SECRET_KEYS or bool(_SECRET_NAME.search(key.rsplit(".", 1)[-1]))


def config_value(key: str, value: Any) -> str:
    """An OMERO config value as it may be shown."""
    return shown(value, config_secret(key))


def answer_value(key: str, value: Any) -> str:
    """An answer (its dotted key in the answers file) as it may be shown: a secret question's value masked
    as its type shows it (a Redis URL by its password only), an extra_config key by its config key."""
    q = features.BY_KEY.get(key)
    if q is not None and q.secret and value not in (None, ""):
        return q.display(value)
    if key.startswith(EXTRA):
        return config_value(key[len(EXTRA):], value)
    return shown(value)


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
